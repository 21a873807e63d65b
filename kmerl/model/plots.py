"""Figures of pretraining and evaluation, as PNG bytes (see :mod:`kmerl.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from sklearn.metrics import roc_curve

from kmerl.plots import plt, to_png

Metrics = Mapping[str, object]


def loss_curves(runs: Mapping[str, Sequence[Metrics]]) -> bytes:
    """Training (per step) and validation (per epoch) loss of one or more runs."""
    figure, (steps_axis, epochs_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, metrics), color in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
        steps = [m for m in metrics if m["event"] == "step"]
        epochs = [m for m in metrics if m["event"] == "epoch"]
        steps_axis.plot([m["step"] for m in steps], [m["loss"] for m in steps], color=color, alpha=0.8, label=name)
        epoch_numbers = [m["epoch"] for m in epochs]
        epochs_axis.plot(epoch_numbers, [m["train_loss"] for m in epochs], color=color, label=f"{name} train")
        if epochs and "val_loss" in epochs[0]:
            epochs_axis.plot(
                epoch_numbers, [m["val_loss"] for m in epochs], color=color, linestyle="--", label=f"{name} val"
            )
    steps_axis.set(xlabel="optimiser step", ylabel="loss", title="training loss per logged step")
    epochs_axis.set(xlabel="epoch", ylabel="loss", title="mean loss per epoch")
    for axis in (steps_axis, epochs_axis):
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return to_png(figure)


def roc_curves(scores: pl.DataFrame, title: str) -> bytes:
    """One ROC curve per class from rows of (class, label, score), with each class's AUROC."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for name in scores["class"].unique(maintain_order=True):
        rows = scores.filter(pl.col("class") == name)
        labels, values = rows["label"].to_numpy(), rows["score"].to_numpy()
        if labels.all() or not labels.any():
            continue
        false_positive, true_positive, _ = roc_curve(labels, values)
        area = np.trapezoid(true_positive, false_positive)
        axis.plot(false_positive, true_positive, label=f"{name} ({area:.2f}, {int(labels.sum())}+)")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return to_png(figure)


def partial_lead_chart(results: pl.DataFrame, task: str, method: str) -> bytes:
    """Macro AUROC per lead subset, one bar per model, with the bootstrap intervals."""
    rows = results.filter((pl.col("task") == task) & (pl.col("method") == method))
    subsets = rows["lead_subset"].unique(maintain_order=True).to_list()
    models = rows["model"].unique(maintain_order=True).to_list()
    width = 0.8 / max(len(models), 1)
    figure, axis = plt.subplots(figsize=(max(7.0, 1.5 + len(subsets) * (0.4 + 0.3 * len(models))), 4.5))
    for i, model in enumerate(models):
        values = rows.filter(pl.col("model") == model).select("lead_subset", "macro_auroc", "ci_low", "ci_high")
        by_subset = {r["lead_subset"]: r for r in values.iter_rows(named=True)}
        x = np.arange(len(subsets)) + (i - (len(models) - 1) / 2) * width
        value = np.array([by_subset[s]["macro_auroc"] if s in by_subset else np.nan for s in subsets])
        low = np.array([by_subset[s]["ci_low"] if s in by_subset else np.nan for s in subsets])
        high = np.array([by_subset[s]["ci_high"] if s in by_subset else np.nan for s in subsets])
        axis.bar(x, value, width, label=model, yerr=np.nan_to_num([value - low, high - value]), capsize=2)
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    n_test = int(rows.select(pl.col("n_test").max()).item()) if rows.height else 0
    title = f"{task}, {method}, by lead subset\nn test = {n_test}: a small test set, intervals are wide"
    axis.set(xticks=np.arange(len(subsets)), xticklabels=subsets, ylim=(0, 1), ylabel="macro AUROC", title=title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return to_png(figure)
