"""The Multi30k stand-in (``data.parallel.synthetic``): English->German pairs from the grammar corpus's
generator (:mod:`components.data.translation.generator`), at Multi30k's sizes and sentence lengths."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from components.data.schema import SPLITS, DatasetMeta
from components.data.synthetic.base import _count, _rngs
from components.data.translation.generator import MIN_LENGTH, pairs_of_lengths
from components.data.translation.writer import _write_parallel
from components.errors import UserError

# Multi30k (Elliott et al. 2016, task 1, English-German): train / val / test2016 sentence pairs.
MULTI30K_SIZES = {"train": 29_000, "val": 1_014, "test": 1_000}
MULTI30K_MEAN_TOKENS = 12.5  # English tokens per sentence, punctuation included (Multi30k: ~12-13)
MULTI30K_LENGTH_STD = 4.5  # chosen (not a published figure) so that ~99.9% of lengths fall in the range below
MULTI30K_TOKEN_RANGE = (4, 40)  # the shortest and longest English sentence drawn (tokens)
LANGUAGES = ("en", "de")  # the grammar's source and target languages


def parallel_counts(fraction: float) -> dict[str, int]:
    """Pairs per split: MULTI30K_SIZES * fraction, at least 1 each (Multi30k has val files, so the
    loader's val_fraction never applies)."""
    if not 0 < fraction <= 1:
        raise UserError(
            f"parallel: synthetic_fraction ({fraction}) must be in (0, 1]; fix data.parallel.synthetic_fraction"
        )
    return {split: _count(MULTI30K_SIZES[split], fraction) for split in SPLITS}


def sentence_lengths(rng: np.random.Generator, count: int) -> list[int]:
    """``count`` English lengths (tokens): the range's minimum plus a gamma draw whose mean and std make
    the lengths' mean MULTI30K_MEAN_TOKENS and std MULTI30K_LENGTH_STD (right-skewed, as caption
    lengths are), rounded and clipped to MULTI30K_TOKEN_RANGE."""
    low, high = MULTI30K_TOKEN_RANGE
    excess = MULTI30K_MEAN_TOKENS - low
    shape, scale = (excess / MULTI30K_LENGTH_STD) ** 2, MULTI30K_LENGTH_STD**2 / excess
    return np.clip(np.rint(low + rng.gamma(shape, scale, count)), max(low, MIN_LENGTH), high).astype(int).tolist()


def build_synthetic_parallel(
    out: Path, *, seed: int, source_lang: str, target_lang: str, fraction: float
) -> DatasetMeta:
    """Write the Multi30k stand-in to ``out`` as ``load_parallel_corpus`` writes a corpus with val
    files: ``{train,val,test}.parquet`` (``PARALLEL``, row ids = line numbers 0..n-1) and ``meta.json``
    (name ``parallel``, languages ``[source_lang, target_lang]``). Sizes: :func:`parallel_counts`;
    English lengths: :func:`sentence_lengths`; no English sentence occurs twice. The languages must
    be en and de, either way round (de -> en swaps each pair). ``out`` is replaced whole."""
    if sorted((source_lang, target_lang)) != sorted(LANGUAGES):
        raise UserError(
            f"parallel: the stand-in is English-German, but data.parallel.source_lang/target_lang are "
            f"{source_lang!r}/{target_lang!r}; set them to en/de (or de/en)"
        )
    counts, rngs = parallel_counts(fraction), _rngs(seed, "parallel")
    seen: set[str] = set()
    splits = {}
    for split in SPLITS:
        lengths = sentence_lengths(rngs[split], counts[split])
        pairs = pairs_of_lengths(random.Random(int(rngs[split].integers(2**63))), lengths, seen)
        splits[split] = [(i, *(pair if source_lang == "en" else pair[::-1])) for i, pair in enumerate(pairs)]
    meta = DatasetMeta(
        name="parallel", task="parallel", class_names=[], height=0, width=0, channels=0,
        source=f"components.data.synthetic (Multi30k stand-in, fraction={fraction}, seed={seed})",
        sizes=counts, languages=[source_lang, target_lang],
    )  # fmt: skip
    _write_parallel(out, splits, meta)
    return meta
