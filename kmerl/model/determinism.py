"""PyTorch's deterministic kernels for the span of a training loop, restored after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Deterministic algorithms while inside (a warning where an op has none), the previous
    setting afterwards; deterministic cuBLAS also needs its workspace variable set."""
    before = torch.are_deterministic_algorithms_enabled()
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
