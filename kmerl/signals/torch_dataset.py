"""A PyTorch view of the signal store, for training loaders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from kmerl.signals.reader import SignalStore


class SignalDataset(Dataset[dict[str, torch.Tensor]]):
    """Items are ``signal`` (12, samples) with no-data samples set to 0, ``lead_mask``
    (12,) and ``position`` in the store. The mask, not the zeros, says what is absent."""

    def __init__(self, store: SignalStore, positions: Sequence[int] | None = None) -> None:
        self.store = store
        self.positions = np.arange(len(store)) if positions is None else np.asarray(positions)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = int(self.positions[index])
        item = self.store[position]
        return {
            "signal": torch.from_numpy(np.nan_to_num(item.signal, nan=0.0)),
            "lead_mask": torch.from_numpy(item.lead_mask.copy()),
            "position": torch.tensor(position),
        }
