"""Detecting leads that carry no usable signal: flat or clipped."""

from __future__ import annotations

import numpy as np

from kmerl.preprocess.config import PreprocessConfig


def lead_quality_issue(samples: np.ndarray, config: PreprocessConfig) -> str | None:
    """Why a finite lead should be marked absent, or None when it looks like ECG."""
    low, high = float(samples.min()), float(samples.max())
    if high - low < config.flat_max_peak_to_peak_mv:
        return f"flat: peak-to-peak {high - low:.4f} mV"
    for label, value in (("maximum", high), ("minimum", low)):
        fraction = float(np.count_nonzero(samples == value)) / samples.size
        if fraction >= config.saturated_min_fraction:
            return f"saturated: {fraction:.0%} of samples at the {label} {value:.3f} mV"
    return None
