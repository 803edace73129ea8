"""LengthGroupedSampler: every item once per epoch across ranks, batches of similar length."""

from __future__ import annotations

import random

from components.train.samplers import LengthGroupedSampler


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def test_ranks_share_every_index_once_and_batches_group_lengths():
    lengths = [random.Random(0).randint(4, 45) for _ in range(1000)]
    shards = [list(LengthGroupedSampler(lengths, 16, num_replicas=2, rank=r, seed=3, window_batches=10))
              for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 500
    assert sorted(shards[0] + shards[1]) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in _batches(shards[0], 16)]
    # A random batch of 16 spans ~35 lengths; sorted windows of 160 leave batches a few tokens wide.
    assert sum(spread) / len(spread) < 6


def test_epochs_reshuffle_deterministically_and_uneven_sizes_pad():
    lengths = list(range(1, 102))  # 101 items over 2 ranks: one index repeats, like DistributedSampler
    sampler = LengthGroupedSampler(lengths, 8, num_replicas=2, rank=0, seed=0)
    first = list(sampler)
    assert first == list(sampler) and len(first) == len(sampler) == 51
    sampler.set_epoch(1)
    assert list(sampler) != first
    other = LengthGroupedSampler(lengths, 8, num_replicas=2, rank=1, seed=0)
    assert len(set(first) | set(other)) == 101
    # Only the last batch may be short, so DataLoader batches line up with the sampler's.
    sizes = [len(b) for b in _batches(first, 8)]
    assert all(s == 8 for s in sizes[:-1])
