"""The pretraining losses (method section 5), computed in float32 whatever the autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contrastive_loss(ecg: Tensor, text: Tensor, logit_scale: Tensor) -> Tensor:
    """CLIP/InfoNCE in both directions: the i-th ECG and the i-th report are the positive pair."""
    ecg = F.normalize(ecg.float(), dim=-1)
    text = F.normalize(text.float(), dim=-1)
    logits = logit_scale.float().exp() * ecg @ text.T
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def knowledge_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-entity binary cross-entropy against the multi-hot vector of asserted entities."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())
