"""Linear probing: a logistic-regression head per class on frozen encoder features."""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def label_subset(records: int, fraction: float, seed: int) -> np.ndarray:
    """Positions of ``fraction`` of the training records (at least one), drawn without replacement."""
    size = max(1, math.ceil(records * fraction))
    return np.sort(np.random.default_rng(seed).choice(records, size=min(size, records), replace=False))


def probe_scores(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, c: float = 1.0
) -> np.ndarray:
    """(test records, classes) positive-class probabilities, one standardised L2 logistic regression per class.

    A class without both a positive and a negative among the training labels
    cannot be learnt: its score is the training prevalence for every record, which
    scores an AUROC of 0.5, honestly what such a probe knows.
    """
    scores = np.empty((len(test_features), train_labels.shape[1]), dtype=np.float64)
    for column in range(train_labels.shape[1]):
        target = train_labels[:, column].astype(bool)
        if target.all() or not target.any():
            scores[:, column] = target.mean()
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        probe.fit(train_features, target)
        scores[:, column] = probe.predict_proba(test_features)[:, 1]
    return scores


def out_of_fold_scores(
    features: np.ndarray,
    labels: np.ndarray,
    fold_of: np.ndarray,
    fraction: float = 1.0,
    c: float = 1.0,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """Every record scored by a probe fitted on ``fraction`` of the other folds' records,
    never on its own label; returns the most records one probe saw, and the scores."""
    scores = np.empty(labels.shape, dtype=np.float64)
    fitted = 0
    for fold in np.unique(fold_of):
        held_out = fold_of == fold
        others = np.flatnonzero(~held_out)
        if not len(others):  # a single fold: nothing to fit on, a constant score (AUROC 0.5)
            scores[held_out] = labels.mean(axis=0)
            continue
        chosen = others[label_subset(len(others), fraction, seed)]
        scores[held_out] = probe_scores(features[chosen], labels[chosen], features[held_out], c)
        fitted = max(fitted, len(chosen))
    return fitted, scores
