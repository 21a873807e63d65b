"""Ingest configuration."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from kmerl.hashing import stable_hash
from kmerl.preprocess import PreprocessConfig

# Bump when a code change alters what ingest writes for the same inputs.
INGEST_LOGIC_VERSION = "1"


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    records_per_shard: int = Field(256, gt=0, description="Records per Parquet shard (the unit of restart).")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="Worker processes (1 runs in-process)."
    )
    progress_interval_s: float = Field(5.0, gt=0, description="Seconds between progress log lines.")

    @property
    def code_version(self) -> str:
        """What determines the output: logic version, preprocessing and sharding."""
        return stable_hash(INGEST_LOGIC_VERSION, self.preprocess, self.records_per_shard, length=8)
