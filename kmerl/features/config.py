"""Feature store configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kmerl.hashing import stable_hash

# Bump when a code change alters what the builder writes for the same inputs.
FEATURES_LOGIC_VERSION = "1"


class FeatureConfig(BaseModel):
    """How the signal store, the extracted knowledge and the text encoder become training rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row_group_rows: int = Field(64, gt=0, description="Rows per Parquet row group (the unit of a partial read).")
    progress_interval_s: float = Field(5.0, gt=0, description="Seconds between progress reports.")

    @property
    def code_version(self) -> str:
        """What determines the output besides the inputs: logic version and layout."""
        return stable_hash(FEATURES_LOGIC_VERSION, self.row_group_rows, length=8)
