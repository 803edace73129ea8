"""Training samplers the harness can use instead of ``DistributedSampler``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedSampler(Sampler[int]):
    """A distributed sampler that puts items of similar length into the same batch.

    Sequence batches are padded to their longest item; with lengths from 4 to 45 tokens a random
    batch is mostly padding. Each epoch this shuffles every index (seeded by ``seed + epoch``, the
    same on every rank), deals rank ``rank`` every ``num_replicas``-th index (padded so every rank
    gets the same count, like ``DistributedSampler``), then sorts each window of
    ``batch_size * window_batches`` indices by length and shuffles the order of the batches cut
    from it — the grouping of torchvision's ``GroupedBatchSampler`` and Hugging Face's
    ``LengthGroupedSampler``. A ``DataLoader`` with the same ``batch_size`` batches it as laid out.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, window_batches: int = 50):
        self.lengths = torch.as_tensor(lengths)
        self.batch_size = batch_size
        self.num_replicas, self.rank = num_replicas, rank
        self.seed, self.window_batches = seed, window_batches
        self.epoch = 0
        self.num_samples = -(-len(self.lengths) // num_replicas)  # ceil

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator)
        padding = self.num_samples * self.num_replicas - len(order)
        order = torch.cat([order, order[:padding]])[self.rank :: self.num_replicas]
        window = self.batch_size * self.window_batches
        batches = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += list(chunk.split(self.batch_size))
        # Keep a short final batch last, so that every other batch is full.
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator)]
        for batch in shuffled + short:
            yield from batch.tolist()
