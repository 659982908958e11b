"""A seeded, shardable, resumable sampler: the data order of a run is a function of its seed.

Epoch ``e`` is ``torch.randperm(n)`` from a generator seeded with ``seed + e`` (the same rule
as ``torch.utils.data.DistributedSampler``, whose sharding it also follows: the permutation
is padded or cut to a multiple of ``world_size`` and rank ``r`` takes every ``world_size``-th
index from ``r``). On top of that, ``set_epoch(epoch, skip=k)`` drops the first ``k`` indices
of this rank's shard without loading them, which is how a resumed run skips the batches its
checkpoint had already consumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["ResumableSampler"]


class ResumableSampler(Sampler[int]):
    """Shuffled (or ordered) indices of one rank's shard, skippable for exact resume.

    Args:
        num_items: dataset length ``n``.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        shuffle: permute each epoch (False: ``0..n-1``).
        rank: this process's rank.
        world_size: number of processes sharing the data.
        drop_last: cut the tail so every rank has the same number of whole indices
            (``n // world_size``) instead of padding by repeating the head.
    """

    def __init__(
        self,
        num_items: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if num_items < 1:
            raise ValueError("cannot sample from an empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    @property
    def shard_size(self) -> int:
        """Indices per rank and epoch (before skipping)."""
        if self.drop_last:
            return self.num_items // self.world_size
        return -(-self.num_items // self.world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select epoch ``epoch``'s order and drop the first ``skip`` indices of the shard."""
        self.epoch = epoch
        self.skip = max(skip, 0)

    def indices(self) -> list[int]:
        """This rank's full shard of the current epoch, skipped indices included."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        total = self.shard_size * self.world_size
        if total > len(order):  # pad by repeating the head, as DistributedSampler does
            order = (order * (-(-total // len(order))))[:total]
        order = order[:total]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.skip :])

    def __len__(self) -> int:
        return max(self.shard_size - self.skip, 0)
