"""Resources the assets use; the configurable ones can be set in the Dagster UI's launchpad."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetExecutionContext, ConfigurableResource, Failure

from kmerl.extraction import (
    ExtractionConfig,
    Extractor,
    Vocabulary,
    describe_extractor,
    open_extractor,
)
from kmerl.home import HomeLayout
from kmerl.progress import Progress, ProgressCallback


class StorageResource(ConfigurableResource):
    """Where the pipeline's stores live: ``home``, and ``store`` for a folder or fsspec URL
    (s3://...) other than ``<home>/store``. :class:`~kmerl.home.HomeLayout` decides the rest."""

    home: str
    store: str | None = None

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home), self.store)


class ExtractorResource(ConfigurableResource):
    """The knowledge extractor: the in-process vLLM engine, a vLLM server, or the lexicon.

    ``settings`` is the configured :class:`~kmerl.extraction.ExtractionConfig` as JSON: the
    object report_knowledge's code version (the prompt version) is computed from. A run may
    override in it what the prompt version does not hash (a server URL, concurrency, the
    engine's memory and threads); an override that changes the prompt version is refused
    (see :meth:`settings_for`).
    """

    settings: str
    home: str

    @classmethod
    def from_config(cls, config: ExtractionConfig, home: Path) -> ExtractorResource:
        return cls(settings=config.model_dump_json(), home=str(home))

    def settings_for(self, prompt_version: str) -> ExtractionConfig:
        """The run's settings, if they extract under ``prompt_version`` (the asset's code version)."""
        config = ExtractionConfig.model_validate_json(self.settings)
        actual = describe_extractor(config).prompt_version
        if actual != prompt_version:
            raise Failure(
                description=(
                    f"these extraction settings give prompt version {actual}, but report_knowledge's code version "
                    f"is {prompt_version}: a run may override only what the prompt version does not hash (server "
                    "URL, concurrency, timeouts, the engine's memory and threads). Change the prompt, model, "
                    "sampling or engine in the configuration (KMERL_CONFIG or KMERL_EXTRACTION__*) and reload "
                    "the code location instead."
                )
            )
        return config

    @contextmanager
    def open(self, config: ExtractionConfig, vocabulary: Vocabulary) -> Iterator[Extractor]:
        """The extractor for one materialization; an in-process engine stops afterwards."""
        with open_extractor(config, Path(self.home), vocabulary) as extractor:
            yield extractor


class StageProgress:
    """How far a stage is: lines in the run's log, at most every few seconds.

    A plain object rather than a configurable resource (there is nothing to
    configure); the main run hands the assets one that also draws terminal bars.
    """

    def reporter(self, context: AssetExecutionContext, label: str, *, log: bool = True) -> ProgressCallback:
        """Where ``label``'s progress goes; ``log=False`` where the stage logs its own lines."""

        def report(progress: Progress) -> None:
            if log:
                context.log.info(f"{label}: {progress}")

        return report
