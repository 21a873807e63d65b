"""Building the configured extractor (and knowing its version without building it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kmerl.extraction.config import EMBEDDED_MODEL, ExtractionConfig
from kmerl.extraction.embedded_model import EMBEDDED_MODEL_ID, resolve_model
from kmerl.extraction.extractor import Extractor, LexiconExtractor, Provenance
from kmerl.extraction.generation import Generation, GenerationBackend, GenerationRequest, GenerationStats
from kmerl.extraction.llm import LlmExtractor, llm_provenance
from kmerl.extraction.openai_server import OpenAIServerBackend
from kmerl.extraction.prompts import load_prompt
from kmerl.extraction.schema import KnowledgeSchema
from kmerl.extraction.vllm_engine import VllmEngine
from kmerl.extraction.vocabulary import Vocabulary, load_vocabulary


class StartedOnFirstUse:
    """An in-process engine started by its first request.

    Starting one costs 15-60 s and ~5 GB; a run whose reports are all in the cache
    sends no request, so it never pays that.
    """

    def __init__(self, start: Callable[[], GenerationBackend], model_id: str) -> None:
        self.model_id = model_id
        self._start = start
        self._backend: GenerationBackend | None = None
        self._idle_stats = GenerationStats()

    @property
    def started(self) -> bool:
        return self._backend is not None

    @property
    def stats(self) -> GenerationStats:
        return self._idle_stats if self._backend is None else self._backend.stats

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return self._started().generate(requests)

    def count_tokens(self, text: str) -> int:
        return self._started().count_tokens(text)

    def count_chat_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return self._started().count_chat_tokens(messages)

    def _started(self) -> GenerationBackend:
        if self._backend is None:
            self._backend = self._start()
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def model_id(config: ExtractionConfig) -> str:
    return EMBEDDED_MODEL_ID if config.model == EMBEDDED_MODEL else config.model


def describe_extractor(config: ExtractionConfig, vocabulary: Vocabulary | None = None) -> Provenance:
    """The provenance (and so the knowledge version) of the configured extractor,
    computed from files and configuration only: no model is loaded."""
    vocabulary = vocabulary or load_vocabulary(config.vocabulary)
    if config.backend == "lexicon":
        return LexiconExtractor(vocabulary, config.max_mentions).provenance
    schema = KnowledgeSchema(vocabulary, config.max_mentions)
    return llm_provenance(load_prompt(config.prompt), vocabulary, schema, model_id(config), config)


@contextmanager
def open_backend(config: ExtractionConfig, home: Path) -> Iterator[GenerationBackend]:
    """The configured LLM backend; an in-process engine is shut down on exit."""
    if config.backend == "server":
        if not config.server.url:
            raise ValueError("extraction.backend = 'server' needs extraction.server.url")
        served = config.server.served_model or config.model
        backend: GenerationBackend = OpenAIServerBackend(config.server.url, served, model_id(config), config.server)
    elif config.backend == "vllm":

        def start() -> GenerationBackend:
            model = resolve_model(config.model, home)
            return VllmEngine(model.path, model.model_id, config.engine, home)

        backend = StartedOnFirstUse(start, model_id(config))
    else:
        raise ValueError(f"backend {config.backend!r} uses no LLM")
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def open_extractor(config: ExtractionConfig, home: Path, vocabulary: Vocabulary | None = None) -> Iterator[Extractor]:
    """The configured extractor: the lexicon, or an LLM behind the configured backend."""
    vocabulary = vocabulary or load_vocabulary(config.vocabulary)
    if config.backend == "lexicon":
        yield LexiconExtractor(vocabulary, config.max_mentions, config.reports_per_part)
        return
    prompt = load_prompt(config.prompt)
    with open_backend(config, home) as backend:
        yield LlmExtractor(backend, prompt, vocabulary, config)
