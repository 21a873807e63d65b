"""The whole pipeline's configuration: where data lives and how each stage runs.

Values come from, highest priority first: keyword arguments, ``KMERL_*``
environment variables (nested with ``__``, e.g. ``KMERL_INGEST__WORKERS=4``), the
TOML file named by ``KMERL_CONFIG``, and the embedded defaults, which run the
pipeline on the sample archives in ``../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from kmerl.ingest.config import IngestConfig
from kmerl.model.config import ModelConfig
from kmerl.sources import ChallengeSource, PtbXlSource, SourceConfig, WfdbFolderSource

CONFIG_ENV = "KMERL_CONFIG"
SAMPLE_DATA = Path("../shared/data")


def sample_sources() -> list[SourceConfig]:
    """The bundled sample archives: 500 PTB-XL, 105 Challenge and 2 WFDB records."""
    return [
        PtbXlSource(name="ptbxl", root=SAMPLE_DATA / "ptbxl"),
        ChallengeSource(name="cinc2021", root=SAMPLE_DATA / "cinc2021"),
        WfdbFolderSource(name="wfdb_samples", root=SAMPLE_DATA / "wfdb-samples"),
    ]


class KmerlConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KMERL_", env_nested_delimiter="__", extra="forbid", frozen=True)

    home: Path = Field(Path(".kmerl"), description="Folder for stores, caches, converted models and the Dagster instance.")
    sources: list[SourceConfig] = Field(default_factory=sample_sources, description="Archives to ingest.")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [source.name for source in sources]
        if duplicated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"source names must be unique; repeated: {duplicated}")
        return [source.model_copy(update={"root": source.root.expanduser().resolve()}) for source in sources]

    @property
    def signal_store(self) -> Path:
        return self.home / "store" / "ecg_signals"

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}; configured: {[s.name for s in self.sources]}")

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
