"""Sampling-rate conversion."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample(samples: np.ndarray, fs: float, target_fs: int) -> np.ndarray:
    """Resample along axis 0 with scipy's polyphase filter (anti-aliased).

    The rational factor is approximated to a denominator of at most 1000, which
    covers every rate in common ECG archives (100, 250, 257, 360, 500, 1000 Hz).
    """
    if fs == target_fs:
        return samples
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    return resample_poly(samples, ratio.numerator, ratio.denominator, axis=0)
