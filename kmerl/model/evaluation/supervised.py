"""The upper reference: the encoder's architecture trained from scratch, end to end, on
the labels the full probe sees, and scored on the same test records.

A pretrained encoder with a linear probe should come near it with all labels and beat
it with few; a table without it cannot say how far from a task-specific model the
pretrained features are.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kmerl.model.determinism import deterministic_algorithms
from kmerl.model.network import KmerlModel


def fit_supervised(
    model: KmerlModel,
    signals: np.ndarray,
    lead_masks: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
) -> nn.Linear:
    """Train ``model``'s encoder (fresh weights, changed in place) and a linear head with
    binary cross-entropy on ``labels`` (records, classes); returns the head."""
    device = next(model.parameters()).device
    # Seeded head, dropout and order, deterministic kernels: the same reference every run.
    with deterministic_algorithms(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(model.config.encoder.width, labels.shape[1]).to(device)
        optimiser = torch.optim.AdamW([*model.encoder.parameters(), *head.parameters()], lr=learning_rate)
        order = np.random.default_rng(seed)
        targets = torch.from_numpy(labels.astype(np.float32)).to(device)
        model.train()
        for _ in range(epochs):
            for batch in np.array_split(order.permutation(len(labels)), math.ceil(len(labels) / batch_size)):
                signal, mask = (
                    torch.from_numpy(signals[batch]).to(device),
                    torch.from_numpy(lead_masks[batch]).to(device),
                )
                loss = F.binary_cross_entropy_with_logits(head(model.encode_ecg(signal, mask).features), targets[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    model.eval()
    return head.eval()
