"""Parameters of every preprocessing step, in one validated model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PreprocessConfig(BaseModel):
    """How raw WFDB signals become fixed-shape 12-lead arrays.

    Part of every shard's cache key: changing any field re-ingests.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_fs: int = Field(100, gt=0, description="Output sampling rate in Hz (100 is the CPU default, 500 MERL's).")
    window_seconds: float = Field(10.0, gt=0, description="Output length in seconds.")
    crop_anchor: Literal["start", "center"] = Field("start", description="Which part of a longer record to keep.")
    min_seconds: float = Field(
        5.0, ge=0, description="Records shorter than this are quarantined; shorter than the window are padded."
    )
    max_gap_seconds: float = Field(
        0.2,
        ge=0,
        description="NaN/inf runs up to this long are linearly interpolated; longer ones mark the lead absent.",
    )
    max_missing_fraction: float = Field(
        0.5, ge=0, le=1, description="Quarantine when more than this fraction of the present leads' samples is missing."
    )
    flat_max_peak_to_peak_mv: float = Field(
        0.02, ge=0, description="A lead whose peak-to-peak amplitude is below this (mV) is flat: marked absent."
    )
    saturated_min_fraction: float = Field(
        0.1,
        gt=0,
        le=1,
        description="A lead sitting at its extreme value for this fraction of samples is clipped: marked absent.",
    )
    dtype: Literal["float32", "float16"] = Field("float32", description="Storage type of the signal array.")

    @property
    def target_samples(self) -> int:
        return round(self.window_seconds * self.target_fs)
