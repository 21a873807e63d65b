"""Extraction configuration: which extractor, which model, how it is run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kmerl.extraction.prompts import DEFAULT_PROMPT
from kmerl.extraction.vocabulary import DEFAULT_VOCABULARY

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"

Backend = Literal["lexicon", "vllm", "server"]


class SamplingConfig(BaseModel):
    """Decoding parameters; all of them are part of the prompt version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0, description="0 decodes greedily: the same report gives the same answer.")
    seed: int = 0
    max_tokens_choice: int = Field(4, gt=0, description="Token budget of one verify answer.")
    max_tokens_json: int = Field(384, gt=0, description="Token budget of one JSON answer.")
    retries: int = Field(2, ge=0, description="Re-asks of an invalid answer before the report is quarantined.")
    retry_temperature: float = Field(0.7, ge=0, description="Retries sample (seeded), or they would repeat the answer.")


class EngineConfig(BaseModel):
    """The in-process vLLM engine (``vllm.LLM``); defaults suit vLLM's CPU build."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # What the engine answers depends on these (measured on the CPU build: 14 of 128
    # checklist answers differ between the eager and the compiled engine), so they are
    # part of the in-process engine's prompt version. The KV cache size and the thread
    # binding are resources of the host, left out so a run may size them to it; the
    # thread count changed 1 of the 128 answers, so like the CPU it is part of the
    # machine kind that same version, same answers holds for.
    RESOURCES: ClassVar[frozenset[str]] = frozenset({"kv_cache_gib", "cpu_threads_bind"})

    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = "bfloat16"
    max_model_len: int = Field(2048, gt=0)
    enforce_eager: bool = Field(True, description="CPU: loads in ~15 s instead of ~60 s at nearly the same speed.")
    enable_prefix_caching: bool = True
    kv_cache_gib: float = Field(
        2.0, gt=0, description="VLLM_CPU_KVCACHE_SPACE; without it the CPU engine asks for 92% of RAM."
    )
    cpu_threads_bind: str = Field(
        default_factory=lambda: f"0-{(os.cpu_count() or 1) - 1}",
        description="VLLM_CPU_OMP_THREADS_BIND; the default binds every core (vLLM's own uses one).",
    )
    structured_outputs_backend: str = "xgrammar"
    disable_any_whitespace: bool = Field(True, description="Fewer tokens per JSON answer; an engine-level setting.")
    max_num_seqs: int | None = Field(None, gt=0, description="Sequences per engine step (vLLM's default when unset).")

    def answer_settings(self) -> dict[str, object]:
        """The settings that shape the engine's answers: every one but its resources."""
        return self.model_dump(exclude=set(self.RESOURCES))


class ServerConfig(BaseModel):
    """A vLLM OpenAI-compatible server, how a cluster runs the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = Field(None, description="Base URL, e.g. http://gpu-node:8000/v1.")
    served_model: str | None = Field(None, description="Model name the server serves (default: the configured model).")
    api_key: str = "EMPTY"
    concurrency: int = Field(16, gt=0, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(
        4, ge=0, description="Retries with exponential back-off on connection errors, 408/429/5xx."
    )


class ExtractionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Backend = Field("vllm", description="lexicon (baseline), vllm (in-process engine) or server (OpenAI API).")
    model: str = Field(EMBEDDED_MODEL, description="The embedded SmolLM2-135M, or a Hugging Face model folder or name.")
    prompt: Path = Field(DEFAULT_PROMPT, description="Prompt folder (see kmerl/extraction/prompts/).")
    vocabulary: Path = DEFAULT_VOCABULARY
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    max_mentions: int = Field(
        12,
        gt=0,
        description="Mentions kept per report: the JSON schema's list bound, "
        "and the candidates a report's checklist holds.",
    )
    max_prompt_tokens: int = Field(
        1600,
        gt=0,
        description="Prompt budget, counted with the model's tokenizer: a report whose prompt is longer is read "
        "in chunks that fit (checklist, json), noted on the report.",
    )
    context_chars: int = Field(200, gt=0, description="Report text around a candidate shown with it (verify prompts).")
    reports_per_part: int = Field(
        64,
        gt=0,
        description="Reports per engine batch and stored part, the unit of restart (about 20 s of work on 2 cores). "
        "Part of the prompt version: a batched engine's answer can depend on the rest of its batch.",
    )
    compare_with_lexicon: bool = Field(
        True, description="Also run the lexicon baseline, for the quality table and audits."
    )
    progress_interval_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _answers_fit_the_context(self) -> ExtractionConfig:
        """A full prompt plus the longest answer must fit the in-process engine's context."""
        needed = self.max_prompt_tokens + self.sampling.max_tokens_json
        if self.backend == "vllm" and needed > self.engine.max_model_len:
            raise ValueError(
                f"max_prompt_tokens ({self.max_prompt_tokens}) + sampling.max_tokens_json "
                f"({self.sampling.max_tokens_json}) = {needed} exceeds "
                f"engine.max_model_len ({self.engine.max_model_len})"
            )
        return self
