"""Interpolating short NaN/inf runs; measuring what cannot be repaired."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RepairResult:
    """A lead after repair; ``issue`` is set when the lead must be marked absent."""

    samples: np.ndarray
    interpolated: int
    missing: int
    issue: str | None


def nonfinite_runs(missing: np.ndarray) -> np.ndarray:
    """(start, stop) pairs of consecutive True values, as an (n, 2) array."""
    edges = np.diff(np.concatenate(([False], missing, [False])).astype(np.int8))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def repair_lead(samples: np.ndarray, max_gap: int) -> RepairResult:
    """Linearly interpolate runs of up to ``max_gap`` non-finite samples.

    A lead with a longer run is reported, not patched: inventing seconds of signal
    would teach the encoder artefacts.
    """
    missing = ~np.isfinite(samples)
    n_missing = int(missing.sum())
    if n_missing == 0:
        return RepairResult(samples, 0, 0, None)
    if n_missing == samples.size:
        return RepairResult(samples, 0, n_missing, "all samples are NaN/inf")
    runs = nonfinite_runs(missing)
    longest = int((runs[:, 1] - runs[:, 0]).max())
    if longest > max_gap:
        return RepairResult(samples, 0, n_missing, f"a run of {longest} NaN/inf samples is too long to interpolate")
    positions = np.arange(samples.size)
    repaired = samples.copy()
    repaired[missing] = np.interp(positions[missing], positions[~missing], samples[~missing])
    return RepairResult(repaired, n_missing, n_missing, None)
