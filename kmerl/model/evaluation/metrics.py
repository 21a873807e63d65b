"""AUROC, macro AUROC and bootstrap confidence intervals.

AUROC is computed here from ranks (the Mann-Whitney U statistic) rather than with
``sklearn.metrics.roc_auc_score`` because the bootstrap needs it for a thousand
resamples x every class x every setting: ranked as one array it takes
milliseconds, looped through scikit-learn minutes. The tests check it against
scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def auroc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of (rows, n) binary labels and scores; NaN where a row has one class only.

    Ties get average ranks, which counts a tied positive-negative pair as half,
    exactly as scikit-learn does.
    """
    labels = np.asarray(labels, dtype=bool)
    ranks = rankdata(np.asarray(scores, dtype=np.float64), axis=-1)
    positives = labels.sum(axis=-1)
    negatives = labels.shape[-1] - positives
    rank_sum = np.where(labels, ranks, 0.0).sum(axis=-1)
    u = rank_sum - positives * (positives + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((positives > 0) & (negatives > 0), u / (positives * negatives), np.nan)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(auroc_rows(np.asarray(labels)[None], np.asarray(scores)[None])[0])


def class_aurocs(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-class AUROC of (records, classes) labels and scores."""
    return auroc_rows(np.asarray(labels).T, np.asarray(scores).T)


@dataclass(frozen=True, slots=True)
class MacroAuroc:
    value: float
    low: float
    high: float
    per_class: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def macro_auroc(
    labels: np.ndarray, scores: np.ndarray, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> MacroAuroc:
    """Macro AUROC over classes, with a percentile bootstrap interval over records.

    Each resample draws the test records with replacement; a class that has no
    positive (or no negative) in a resample is left out of that resample's mean,
    the usual convention for small, imbalanced test sets.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    per_class = class_aurocs(labels, scores)
    value = float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan")
    if resamples == 0 or not np.isfinite(value):
        return MacroAuroc(value, float("nan"), float("nan"), tuple(per_class.tolist()))
    means = _resampled_means(labels, scores, _draws(len(labels), resamples, seed))
    low, high = _interval(means[np.isfinite(means)], confidence)
    return MacroAuroc(value, low, high, tuple(per_class.tolist()))


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Macro AUROC of one model minus another's on the same records, with a paired interval."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)


def paired_difference(
    labels: np.ndarray,
    scores: np.ndarray,
    reference_scores: np.ndarray,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Macro AUROC of ``scores`` minus that of ``reference_scores``; each bootstrap
    resample draws the same records for both, so what the records share cancels out."""
    labels = np.asarray(labels, dtype=bool)
    value = macro_auroc(labels, scores, 0).value - macro_auroc(labels, reference_scores, 0).value
    if resamples == 0 or not np.isfinite(value):
        return PairedDifference(value, float("nan"), float("nan"))
    draws = _draws(len(labels), resamples, seed)
    differences = _resampled_means(labels, np.asarray(scores, np.float64), draws) - _resampled_means(
        labels, np.asarray(reference_scores, np.float64), draws
    )
    low, high = _interval(differences[np.isfinite(differences)], confidence)
    return PairedDifference(value, low, high)


def _draws(records: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, records, size=(resamples, records))


def _resampled_means(labels: np.ndarray, scores: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Macro AUROC of each resample (NaN where no class can be scored)."""
    # One class at a time: all its resamples are ranked in one call, memory stays resamples x records.
    resampled = np.stack([auroc_rows(labels[draws, c], scores[draws, c]) for c in range(labels.shape[1])])
    valid = np.isfinite(resampled).any(axis=0)
    means = np.full(len(draws), np.nan)
    means[valid] = np.nanmean(resampled[:, valid], axis=0)
    return means


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
