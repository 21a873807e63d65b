"""The K-MERL encoder, its pretraining and its evaluation.

    config        pydantic configuration (ModelConfig: features, training, evaluation)
    encoder       lead-aware ECG encoder (per-lead tokens) and the joint-token baseline
    masking       token validity, dynamic lead masking, segment masking
    query         the cardiac query network
    losses        contrastive and knowledge losses
    network       the pretraining model that ties them together
    train         train() and ``python -m kmerl.model.train`` (torchrun-ready)
    runs          run directories and the run store: finished runs, the current one
    evaluation    zero-shot, linear probe, partial leads, bootstrap intervals
    experiments   K-MERL vs baseline and ablations; ``python -m kmerl.model.experiments``
    plots         loss curves, ROC curves, partial-lead charts (PNG bytes)
    api           load_encoder, embed, zero_shot, probe: a trained encoder from Python

Submodules are imported where used: importing the configuration does not import torch;
the public API is imported from here on first use (``from kmerl.model import embed``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Embedded", "embed", "load_encoder", "probe", "zero_shot"]


def __getattr__(name: str) -> Any:
    # PEP 562: ``from kmerl.model import embed`` loads torch then, not ``import kmerl.model.config``.
    if name in __all__:
        from kmerl.model import api

        return getattr(api, name)
    raise AttributeError(f"module 'kmerl.model' has no attribute {name!r}")
