"""Process-group set-up for ``torchrun``: one process per device, rank 0 reports.

Started without ``torchrun`` (no WORLD_SIZE in the environment) everything runs
in one process and no process group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True, slots=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this process created the group and destroys it at the end

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (a copy; the input is untouched)."""
        total = values.clone()
        if self.enabled:
            dist.all_reduce(total)
        return total

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed() -> Distributed:
    """Join the process group ``torchrun`` describes in the environment (gloo on CPU, NCCL on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Distributed(rank, world_size, local_rank, owns)


def resolve_device(device: str, context: Distributed) -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", context.local_rank)
    return torch.device("cpu")
