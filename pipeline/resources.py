"""Resources the assets use, configurable in the Dagster UI's launchpad."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

from kmerl.extraction import ExtractionConfig, Extractor, Vocabulary, open_extractor
from pipeline.config import CONFIG


class StorageResource(ConfigurableResource):
    """Where the pipeline's stores live."""

    root: str = str(CONFIG.home / "store")

    @property
    def signal_store(self) -> Path:
        return Path(self.root) / "ecg_signals"

    @property
    def knowledge_store(self) -> Path:
        return Path(self.root) / "report_knowledge"


class ExtractorResource(ConfigurableResource):
    """The knowledge extractor: the in-process vLLM engine, a vLLM server, or the lexicon baseline.

    Defaults come from ``KmerlConfig.extraction``; the fields here override them per run.
    """

    backend: str = CONFIG.extraction.backend
    model: str = CONFIG.extraction.model
    server_url: str | None = CONFIG.extraction.server.url
    prompt: str = str(CONFIG.extraction.prompt)
    home: str = str(CONFIG.home)

    @property
    def config(self) -> ExtractionConfig:
        return ExtractionConfig.model_validate(
            CONFIG.extraction.model_dump()
            | {"backend": self.backend, "model": self.model, "prompt": self.prompt}
            | {"server": CONFIG.extraction.server.model_dump() | {"url": self.server_url}}
        )

    @contextmanager
    def open(self, vocabulary: Vocabulary) -> Iterator[Extractor]:
        """The extractor for one materialization; an in-process engine stops afterwards."""
        with open_extractor(self.config, Path(self.home), vocabulary) as extractor:
            yield extractor
