"""The training data order: a fresh shuffle each epoch from (seed, epoch), sharded across ranks, that can
start mid-epoch (a resumed run continues with the very batch it would have trained next)."""

from __future__ import annotations

import math

import numpy as np
import torch

POOL_BATCHES = 50  # batches per length-sorted pool (`--length-bucket-pool`)


class EpochSampler(torch.utils.data.Sampler):
    """A fresh shuffled order each epoch from (seed, epoch), sharded across ranks, that can start mid-epoch.

    Like DistributedSampler (drop_last=False): the order is padded by repeating its first indices so every
    rank gets the same count; `set_epoch(epoch, skip)` skips the first `skip` samples of this rank's share.

    With `lengths` and `batch_size` the share is length-bucketed: cut into pools of `pool_batches`
    batches, each pool sorted by length and cut into batches, and the batches shuffled. A batch's
    explanations then have similar lengths, so the decoder runs about as many steps as they have words
    (batches are trimmed to their longest explanation) instead of nearly the longest of the split.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 lengths=None, batch_size: int = 0, pool_batches: int = POOL_BATCHES):
        self.size, self.seed, self.rank, self.world_size, self.shuffle = size, seed, rank, world_size, shuffle
        self.per_rank = math.ceil(size / world_size)
        self.epoch, self.skip = 0, 0
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size, self.pool_batches = batch_size, pool_batches

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        padding = self.per_rank * self.world_size - self.size
        order += (order * (padding // max(self.size, 1) + 1))[:padding]
        share = order[self.rank :: self.world_size]
        if self.lengths is None or self.batch_size < 1 or not self.shuffle:
            return share
        return self._bucketed(share)

    def _bucketed(self, share: list[int]) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(share), pool):
            members = sorted(share[start : start + pool], key=lambda index: int(self.lengths[index]))
            batches += [members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        # The one short batch (the share's remainder) stays last, so every other batch is full.
        full = [batch for batch in batches if len(batch) == self.batch_size]
        short = [batch for batch in batches if len(batch) < self.batch_size]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()] + short
        return [index for batch in shuffled for index in batch]

    def __iter__(self):
        return iter(self.order()[self.skip :])

    def __len__(self) -> int:
        return self.per_rank - self.skip
