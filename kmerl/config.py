"""The whole pipeline's configuration: where data lives and how each stage runs.

Values come from, highest priority first: keyword arguments, ``KMERL_*``
environment variables (nested with ``__``, e.g. ``KMERL_INGEST__WORKERS=4``), the
TOML file named by ``KMERL_CONFIG``, and the embedded defaults, which run the
pipeline on the sample archives in ``../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from kmerl.corpora import PtbXlReports, ReportCorpusConfig, ReportTable
from kmerl.extraction.config import ExtractionConfig
from kmerl.home import HomeLayout
from kmerl.ingest.config import IngestConfig
from kmerl.model.config import ModelConfig
from kmerl.sources import ChallengeSource, PtbXlSource, SourceConfig, WfdbFolderSource
from kmerl.sources.base import SourceAdapter

# Archives a trained encoder is evaluated on: the kinds whose labels define a task.
EvaluationArchive = Annotated[PtbXlSource | ChallengeSource, Field(discriminator="kind")]

_Named = SourceAdapter | PtbXlReports | ReportTable  # a configured source, corpus or evaluation archive

CONFIG_ENV = "KMERL_CONFIG"
SAMPLE_DATA = Path("../shared/data")


def sample_sources() -> list[SourceConfig]:
    """The bundled sample archives: 500 PTB-XL, 105 Challenge and 2 WFDB records."""
    return [
        PtbXlSource(name="ptbxl", root=SAMPLE_DATA / "ptbxl"),
        ChallengeSource(name="cinc2021", root=SAMPLE_DATA / "cinc2021"),
        WfdbFolderSource(name="wfdb_samples", root=SAMPLE_DATA / "wfdb-samples"),
    ]


def sample_corpora() -> list[ReportCorpusConfig]:
    """The bundled report corpus: 4,528 more PTB-XL reports (folds 1-8) with labels, no signals."""
    return [PtbXlReports(name="ptbxl_reports", path=SAMPLE_DATA / "ptbxl-reports")]


class CheckConfig(BaseModel):
    """Thresholds of the asset checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_extraction_validity: float = Field(
        0.95, ge=0, le=1, description="Share of distinct reports that must extract without quarantine."
    )
    min_label_f1: float = Field(
        0.6, ge=0, le=1, description="Micro F1 against cardiologist labels below which the check warns."
    )


class TrainingLaunchConfig(BaseModel):
    """How pretraining is launched: one process, or torchrun across GPUs and nodes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nproc_per_node: int = Field(1, gt=0, description="Processes per node (GPUs); above 1, torchrun launches them.")
    nnodes: int = Field(1, gt=0, description="Nodes taking part; above 1, set rdzv_endpoint.")
    rdzv_endpoint: str | None = Field(None, description="host:port of the torchrun rendezvous for several nodes.")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node * self.nnodes > 1


class OrchestrationConfig(BaseModel):
    """How the orchestrator schedules work on this deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw_archive_poll_seconds: int = Field(300, gt=0, description="How often the sensor re-hashes raw archives.")
    prompt_poll_seconds: int = Field(30, gt=0, description="How often the sensor re-reads the prompt version.")
    evaluation_interval_seconds: int = Field(30, gt=0, description="How often automation conditions are evaluated.")
    refresh_cron: str = Field("0 3 * * *", description="When the nightly refresh catches anything stale.")
    executor: Literal["multiprocess", "kubernetes"] = Field(
        "multiprocess", description="Steps as local processes, or one Kubernetes pod per step (dagster-k8s)."
    )
    max_concurrent_steps: int = Field(2, gt=0, description="Steps a run executes at once.")
    checks: CheckConfig = Field(default_factory=CheckConfig)
    training: TrainingLaunchConfig = Field(default_factory=TrainingLaunchConfig)


class KmerlConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KMERL_", env_nested_delimiter="__", extra="forbid", frozen=True)

    home: Path = Field(
        Path(".kmerl"), description="Local folder for caches, converted models and the Dagster instance."
    )
    store: str | None = Field(
        None, description="Where the stores live: a folder or any fsspec URL (s3://bucket/kmerl); default <home>/store."
    )
    sources: list[SourceConfig] = Field(default_factory=sample_sources, description="Archives to ingest.")
    corpora: list[ReportCorpusConfig] = Field(
        default_factory=sample_corpora,
        description="Report collections without signals: extracted and scored, never ingested or trained on.",
    )
    evaluation_archives: list[EvaluationArchive] = Field(
        default_factory=list,
        description="Archives the trained encoder is evaluated on (external_evaluation) and never trained on: "
        "ingested apart under <home>/evaluation/<name>, never extracted.",
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @field_validator("sources", "corpora", "evaluation_archives")
    @classmethod
    def _named_once_with_absolute_paths(cls, entries: list[_Named], info: ValidationInfo) -> list[_Named]:
        """Entries are found by name, so a name is used once; their files by absolute path."""
        names = [entry.name for entry in entries]
        if duplicated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"{info.field_name} need distinct names; repeated: {duplicated}")
        field = "path" if info.field_name == "corpora" else "root"
        return [entry.model_copy(update={field: getattr(entry, field).expanduser().resolve()}) for entry in entries]

    @model_validator(mode="after")
    def _corpora_apart_from_sources(self) -> KmerlConfig:
        """Both name record files in the knowledge store: one name, one collection."""
        if shared := sorted({c.name for c in self.corpora} & {s.name for s in self.sources}):
            raise ValueError(f"a report corpus and a source share the name(s) {shared}")
        return self

    @model_validator(mode="after")
    def _archives_never_trained_on(self) -> KmerlConfig:
        """An evaluation archive the encoder pretrained on would measure nothing."""
        sources = {source.root: source.name for source in self.sources}
        seen = sorted(f"{a.name} (the source {sources[a.root]})" for a in self.evaluation_archives if a.root in sources)
        if seen:
            raise ValueError(f"evaluation archives the encoder is pretrained on: {', '.join(seen)}")
        return self

    @model_validator(mode="after")
    def _encoder_fits_the_records(self) -> KmerlConfig:
        """The encoder's patches follow from the sampling rate and must tile the window
        ingest writes: refused when the configuration loads, naming the settings."""
        preprocess = self.ingest.preprocess
        self.model.training.encoder.input_shape(preprocess.target_fs, preprocess.target_samples)
        return self

    @property
    def layout(self) -> HomeLayout:
        """Where every store, cache and log lives."""
        return HomeLayout(self.home, self.store)

    def corpus(self, name: str) -> ReportCorpusConfig:
        for corpus in self.corpora:
            if corpus.name == name:
                return corpus
        raise KeyError(f"no report corpus named {name!r}; configured: {[c.name for c in self.corpora]}")

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}; configured: {[s.name for s in self.sources]}")

    def evaluation_archive(self, name: str) -> EvaluationArchive:
        for archive in self.evaluation_archives:
            if archive.name == name:
                return archive
        known = [archive.name for archive in self.evaluation_archives]
        raise KeyError(f"no evaluation archive named {name!r}; configured: {known}")

    @property
    def partition_keys(self) -> list[str]:
        """Every source, or slice of a sliced source: the unit a per-source stage runs on."""
        return [key for source in self.sources for key in source.partition_keys()]

    def source_of(self, partition: str) -> SourceConfig:
        for source in self.sources:
            if partition in source.partition_keys():
                return source
        raise KeyError(f"no source has partition {partition!r}; partitions: {self.partition_keys}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get(CONFIG_ENV)
        toml = (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),) if toml_file else ()
        return (init_settings, env_settings, *toml)
