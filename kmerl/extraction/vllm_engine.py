"""The in-process vLLM engine: whole batches per call, prefix caching, decoding
constrained by structured outputs.

vLLM starts its engine core in a spawned process, so any script that creates
one needs the ``if __name__ == "__main__":`` idiom.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kmerl.extraction.config import EngineConfig
from kmerl.extraction.generation import Generation, GenerationRequest, GenerationStats
from kmerl.home import HomeLayout

log = logging.getLogger(__name__)
_TOKEN_MARGIN = 16


def engine_environment(engine: EngineConfig, home: Path) -> dict[str, str]:
    """Variables vLLM reads at start-up: CPU KV cache, thread binding, caches
    inside the data directory, no hub access, no usage reports."""
    return {
        "VLLM_CPU_KVCACHE_SPACE": f"{engine.kv_cache_gib:g}",
        "VLLM_CPU_OMP_THREADS_BIND": engine.cpu_threads_bind,
        "VLLM_CACHE_ROOT": str(HomeLayout(home).vllm_cache),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "VLLM_NO_USAGE_STATS": os.environ.get("VLLM_NO_USAGE_STATS", "1"),
    }


class VllmEngine:
    """A ``vllm.LLM`` that answers :class:`GenerationRequest` batches."""

    def __init__(self, model_path: str, model_id: str, engine: EngineConfig, home: Path) -> None:
        os.environ.update(engine_environment(engine, home))
        from vllm import LLM  # imported after the environment is set: vLLM reads it at import and start-up

        optional: dict[str, Any] = {"max_num_seqs": engine.max_num_seqs} if engine.max_num_seqs else {}

        self.model_id = model_id
        self.stats = GenerationStats()
        log.info("starting the vLLM engine for %s", model_id)
        self._llm = LLM(
            model_path,
            dtype=engine.dtype,
            max_model_len=engine.max_model_len,
            enforce_eager=engine.enforce_eager,
            enable_prefix_caching=engine.enable_prefix_caching,
            structured_outputs_config={
                "backend": engine.structured_outputs_backend,
                "disable_any_whitespace": engine.disable_any_whitespace,
            },
            generation_config="vllm",  # decoding follows our sampling parameters only, not the model folder's defaults
            scheduler_cls="kmerl.extraction.vllm_scheduler.GrammarsFirstScheduler",
            # Every prompt is read in one step: a request's values then never depend on where
            # a step's token budget cut it, and a seeded retry is never cut (vLLM's CPU sampler
            # fails on a partly read seeded request: "CPU Generator does not use offset").
            enable_chunked_prefill=False,
            **optional,
        )
        self._tokenizer = self._llm.get_tokenizer()
        self._max_model_len = engine.max_model_len

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One batch through the engine; the same batch gives the same answers.

        A request whose prompt fills the context, counted with the model's tokenizer, is
        not sent: it comes back as an error (its report is quarantined, the batch goes
        on); should the engine still refuse the batch, each request is sent alone so only
        the refused ones fail."""
        if not requests:
            return []
        # A cold prefix cache per batch: a cached prefix's values depend on the batch that
        # computed it, so without this a batch's answers would depend on the batches before it
        # (and a resumed run would differ from an uninterrupted one).
        self._llm.reset_prefix_cache()
        generations: list[Generation | None] = [self._over_budget(request) for request in requests]
        sendable = [i for i, generation in enumerate(generations) if generation is None]
        try:
            answered = self._chat([requests[i] for i in sendable])
        except Exception:  # vLLM validates the whole batch at once; find the request it refuses
            answered = [self._chat_alone(requests[i]) for i in sendable]
        for i, generation in zip(sendable, answered, strict=True):
            generations[i] = generation
        done = [generation for generation in generations if generation is not None]
        self.stats.record(done)
        return done

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_chat_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        # Rendered to text, then counted: the templated call returns an encoding, not a list.
        chat = self._tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return self.count_tokens(str(chat))

    def _over_budget(self, request: GenerationRequest) -> Generation | None:
        tokens = self.count_chat_tokens(request.messages)
        # The engine's own rule, with a margin: its count of a chat prompt can exceed the
        # template's by a token or two. An answer cut short by the context is retried.
        if tokens + _TOKEN_MARGIN < self._max_model_len:
            return None
        error = f"prompt of {tokens} tokens leaves no room to answer in the context of {self._max_model_len}"
        return Generation(text="", finish_reason=None, output_tokens=0, error=error)

    def _chat_alone(self, request: GenerationRequest) -> Generation:
        try:
            return self._chat([request])[0]
        except Exception as error:  # the engine refused this request: its report is quarantined with why
            return Generation(text="", finish_reason=None, output_tokens=0, error=f"{type(error).__name__}: {error}")

    def _chat(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        from vllm import RequestOutput, SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                temperature=request.temperature,
                seed=request.seed,
                max_tokens=request.max_tokens,
                structured_outputs=StructuredOutputsParams(
                    json=request.constraint.json_schema,
                    choice=list(request.constraint.choices) if request.constraint.choices else None,
                ),
            )
            for request in requests
        ]
        conversations: Any = [list(r.messages) for r in requests]  # vLLM types messages as OpenAI's TypedDicts
        # The whole batch is queued before the first engine step (vLLM's documented way:
        # pause scheduling, enqueue, resume), so which requests share a step never depends
        # on how fast they arrived; GrammarsFirstScheduler does the same for their grammars.
        self._llm.sleep(level=0)
        try:
            self._llm.enqueue_chat(conversations, params, use_tqdm=False)
        finally:
            self._llm.wake_up(tags=["scheduling"])
        outputs = self._llm.wait_for_completion(RequestOutput, use_tqdm=False)  # in the order enqueued
        return [
            Generation(
                text=o.outputs[0].text,
                finish_reason=o.outputs[0].finish_reason,
                output_tokens=len(o.outputs[0].token_ids),
            )
            for o in outputs
        ]

    def close(self) -> None:
        """Stop the engine core process now rather than at interpreter exit."""
        self._llm.llm_engine.engine_core.shutdown()
