"""Resources the assets use, configurable in the Dagster UI's launchpad."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

from kmerl.extraction import (
    ExtractionConfig,
    Extractor,
    KnowledgeStore,
    Vocabulary,
    build_audit_database,
    open_extractor,
)
from kmerl.storage import store_path


class StorageResource(ConfigurableResource):
    """Where the pipeline's stores live: a local folder or any fsspec URL (s3://...).

    Training runs (checkpoints, resumed in place) need a file system: ``runs`` is a
    local or shared folder.
    """

    root: str
    runs: str

    @property
    def signal_store(self) -> Path:
        return store_path(self.root) / "ecg_signals"

    @property
    def knowledge_store(self) -> Path:
        return store_path(self.root) / "report_knowledge"

    @property
    def feature_store(self) -> Path:
        return store_path(self.root) / "feature_store"

    def run_dir(self, run_key: str) -> Path:
        return Path(self.runs) / run_key


class ExtractorResource(ConfigurableResource):
    """The knowledge extractor: the in-process vLLM engine, a vLLM server, or the lexicon.

    ``settings`` carries the configured :class:`~kmerl.extraction.ExtractionConfig`
    (as JSON); the fields beside it are what a run most often overrides in the
    launchpad, e.g. pointing ``server_url`` at a vLLM server on a GPU node.
    """

    settings: str
    backend: str
    model: str
    server_url: str | None
    prompt: str
    home: str

    @classmethod
    def from_config(cls, config: ExtractionConfig, home: Path) -> ExtractorResource:
        return cls(
            settings=config.model_dump_json(),
            backend=config.backend,
            model=config.model,
            server_url=config.server.url,
            prompt=str(config.prompt),
            home=str(home),
        )

    @property
    def config(self) -> ExtractionConfig:
        base = ExtractionConfig.model_validate_json(self.settings)
        server = base.server.model_copy(update={"url": self.server_url})
        overrides = {"backend": self.backend, "model": self.model, "prompt": self.prompt, "server": server}
        return ExtractionConfig.model_validate(base.model_dump() | overrides)

    @contextmanager
    def open(self, vocabulary: Vocabulary) -> Iterator[Extractor]:
        """The extractor for one materialization; an in-process engine stops afterwards."""
        with open_extractor(self.config, Path(self.home), vocabulary) as extractor:
            yield extractor


class AuditDatabaseResource(ConfigurableResource):
    """The DuckDB file auditors open read-only: views over every knowledge version."""

    path: str

    def rebuild(self, store: KnowledgeStore) -> Path:
        return build_audit_database(store, Path(self.path))
