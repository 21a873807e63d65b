"""Checkpoints, written atomically: a run killed at any point resumes from the last whole one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from kmerl.atomic import atomic_write, remove_stale_temp_files
from kmerl.model.config import TrainConfig
from kmerl.model.network import KmerlModel

_EPOCH_FILE = re.compile(r"epoch-(\d{4})\.pt")


def save(path: Path, state: dict[str, Any]) -> None:
    with atomic_write(path) as handle:
        torch.save(state, handle)


def epoch_file(directory: Path, epoch: int) -> Path:
    return directory / f"epoch-{epoch:04d}.pt"


def epoch_checkpoints(directory: Path) -> list[Path]:
    """Finished epoch checkpoints, oldest first (temporaries of killed writes are removed)."""
    remove_stale_temp_files(directory)
    found = [path for path in directory.glob("epoch-*.pt") if _EPOCH_FILE.fullmatch(path.name)]
    return sorted(found)


def prune(directory: Path, keep: int) -> None:
    for path in epoch_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)


def load_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    # weights_only: a checkpoint is tensors and plain containers; nothing executes on load.
    return torch.load(path, map_location=device, weights_only=True)


def model_state(model: KmerlModel, entity_ids: tuple[str, ...], feature_store_version: str) -> dict[str, Any]:
    """What evaluation needs to rebuild the model without the training run."""
    return {
        "config": model.config.model_dump(mode="json"),
        "input": {"fs": model.shape.fs, "samples": model.shape.samples},
        "text_dim": model.text_projection.in_features,
        "entity_ids": list(entity_ids),
        "feature_store_version": feature_store_version,
        "model": model.state_dict(),
    }


def load_model(path: Path, device: torch.device | str = "cpu") -> KmerlModel:
    """A trained model from ``model.pt`` or any epoch checkpoint, in eval mode."""
    state = load_state(path, device)
    config = TrainConfig.model_validate(state["config"])
    shape = config.encoder.input_shape(**state["input"])
    model = KmerlModel(config, shape, state["text_dim"], state["model"]["entity_embeddings"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()
