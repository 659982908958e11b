"""The few ``torch.distributed`` collectives that keep codebooks identical across ranks.

Each helper is a no-op (or the identity) when no process group is initialised or the world
has one rank, so quantizers call them unconditionally. Every rank must call them in the same
order; quantizers therefore never skip a collective because their local batch is empty.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "world_size", "rank", "all_reduce_sum_", "broadcast_", "gather_rows"]


def is_distributed() -> bool:
    """True under an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 outside distributed training)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 outside distributed training)."""
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over ranks, in place; returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` with rank ``src``'s copy, in place; returns it."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor


def gather_rows(x: Tensor) -> Tensor:
    """Concatenate the rows of ``x: (N_r, D)`` from every rank (``N_r`` may differ).

    Returns:
        ``(sum_r N_r, D)``, in rank order, identical on every rank.
    """
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    longest = max(counts)
    padded = x.new_zeros(longest, x.shape[1])
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])
