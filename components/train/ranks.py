"""What a task's evaluation needs of torch.distributed: this process's rank and the world size, and
sums over every rank (both the identity in a single process)."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def rank_world() -> tuple[int, int]:
    """(this process's rank, the number of ranks): (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sum_over_ranks(values: Tensor) -> Tensor:
    """``values`` summed element-wise over every rank, in place (itself outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(values)
    return values
