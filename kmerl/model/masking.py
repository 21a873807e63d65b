"""Which tokens an ECG contributes, and the pretraining masks that remove some of them.

A token is one patch of one lead. It exists only where the lead is present and
every sample of the patch is finite (NaN marks absent leads and padding), so any
subset of leads, and any record shorter than the window, is a valid input.
"""

from __future__ import annotations

import torch
from torch import Tensor

_LAST = 2.0  # a score above every torch.rand draw: ranks absent items last


def patch_validity(signal: Tensor, lead_mask: Tensor, patch_size: int) -> Tensor:
    """(batch, leads, patches) bool: the lead is present and the patch has no NaN/inf."""
    batch, leads, samples = signal.shape
    patches = signal.reshape(batch, leads, samples // patch_size, patch_size)
    return torch.isfinite(patches).all(dim=-1) & lead_mask[..., None]


def drop_leads(lead_mask: Tensor, min_kept: int = 1) -> Tensor:
    """Dynamic lead masking: keep a random subset of each sample's present leads.

    How many leads to keep is drawn once per batch, uniformly from min_kept..12
    (samples with fewer present leads keep all of theirs); which leads is drawn per
    sample. *ours*: a shared count gives every sample of a batch about the same
    number of tokens, so no compute is spent on padding; the subsets still differ.
    """
    batch, leads = lead_mask.shape
    kept = int(torch.randint(min_kept, leads + 1, (1,)).item())
    scores = torch.rand(batch, leads, device=lead_mask.device).masked_fill(~lead_mask, _LAST)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return lead_mask & (ranks < kept)


def mask_segments(valid: Tensor, ratio: float) -> Tensor:
    """Lead-independent segment masking: hide floor(ratio x n) of each lead's n valid patches.

    The hidden patches are drawn independently for every lead of every sample;
    a lead with any valid patch keeps at least one while ratio < 1.
    """
    counts = valid.sum(dim=-1, keepdim=True)
    hidden = torch.floor(counts * ratio)
    scores = torch.rand(valid.shape, device=valid.device).masked_fill(~valid, _LAST)
    ranks = scores.argsort(dim=-1).argsort(dim=-1)
    return valid & (ranks >= hidden)
