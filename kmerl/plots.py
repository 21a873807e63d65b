"""Figures people would rather look at than read, rendered to PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: assets render in worker processes without a display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kmerl.leads import STANDARD_LEADS


def ecg_figure(signal: np.ndarray, lead_mask: np.ndarray, fs: float, title: str) -> Figure:
    """The 12 leads in standard order on a shared time axis; absent leads say so."""
    figure, axes = plt.subplots(len(STANDARD_LEADS), 1, figsize=(10, 12), sharex=True)
    seconds = np.arange(signal.shape[1]) / fs
    for lead, axis, trace, present in zip(STANDARD_LEADS, axes, signal, lead_mask, strict=True):
        axis.set_ylabel(lead, rotation=0, labelpad=18)
        axis.set_yticks([])
        if present:
            axis.plot(seconds, trace, linewidth=0.7, color="black")
        else:
            axis.text(0.5, 0.5, "absent", transform=axis.transAxes, ha="center", va="center", color="grey")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def to_png(figure: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
