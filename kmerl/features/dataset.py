"""A PyTorch view of one feature-store split for training and evaluation loaders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from kmerl.features.reader import FeatureSplit

Batch = dict[str, torch.Tensor]


class FeatureDataset(Dataset[Batch]):
    """Rows of a split (optionally a subset of its positions) as tensors.

    ``signal`` keeps NaN for absent leads and padding: the encoder decides what a
    token is from the values and ``lead_mask``, so nothing can train on fill values.
    ``__getitems__`` reads a whole batch in one gather; pass ``collate_fn=whole_batch``.
    """

    def __init__(self, split: FeatureSplit, positions: Sequence[int] | np.ndarray | None = None) -> None:
        self.split = split
        self.positions = np.arange(len(split)) if positions is None else np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Batch:
        return {name: value[0] for name, value in self.__getitems__([index]).items()}

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        positions = self.positions[np.asarray(indices, dtype=np.int64)]
        rows = self.split.rows(positions)
        return {
            "signal": torch.from_numpy(rows["signal"].astype(np.float32, copy=False)),
            "lead_mask": torch.from_numpy(rows["lead_mask"]),
            "report_embedding": torch.from_numpy(rows["report_embedding"]),
            "entities": torch.from_numpy(rows["entities"].astype(np.float32)),
            "position": torch.from_numpy(positions),
        }


def whole_batch(batch: Any) -> Batch:
    """The DataLoader's collate step: what it is handed is ``__getitems__``' result, already a batch."""
    return cast(Batch, batch)
