"""What every stand-in shares: the colours and class names, split sizes from the real counts,
the digits objects are drawn from, and per-split generators."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from components.data.digits import load_digit_images, resize_float, split_digit_ids
from components.data.schema import SPLITS
from components.errors import UserError

IGNORE_INDEX = 255  # VOC's boundary / COCO's crowd value in the semantic mask (as voc.py and coco.py)
COLOURS = {  # name -> RGB in [0, 1]; VOC uses the first VOC_COLOURS, COCO the first COCO_COLOURS
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.75, 0.15), "blue": (0.15, 0.3, 0.95), "yellow": (0.95, 0.85, 0.1),
    "cyan": (0.1, 0.85, 0.85), "magenta": (0.85, 0.15, 0.8), "white": (1.0, 1.0, 1.0), "black": (0.02, 0.02, 0.02),
}  # fmt: skip
MASK_THRESHOLD = 0.3  # an object's mask: its pixels above this fraction of its peak intensity
DIGIT_VAL_FRACTION = DIGIT_TEST_FRACTION = 0.15  # of the 1,797 digits: the ones val / test images draw on
_STREAMS = {  # generators differ per dataset
    "voc": 1, "coco": 2, "mnist": 3, "voc_detection": 4, "parallel": 5, "cifar10": 6,
}  # fmt: skip


@dataclass(frozen=True)
class _Digits:
    images: np.ndarray  # float32 (N, 8, 8) in [0, 1]
    labels: np.ndarray  # int64 (N,)
    fills: np.ndarray  # float64 (N,): the share of its square a digit's mask covers
    pools: dict[str, np.ndarray]  # split -> the digit ids its images draw on


def _log_uniform(rng: np.random.Generator, low, high, size=None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def class_names(colours: int) -> list[str]:
    """``["background", "0-red", "0-green", ..., "9-<last colour>"]``: label = 1 + digit * colours + colour."""
    return ["background", *(f"{digit}-{name}" for digit in range(10) for name in list(COLOURS)[:colours])]


# --- sizes ------------------------------------------------------------------------------------------


def _check(name: str, val_fraction: float, fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise UserError(f"{name}: val_fraction ({val_fraction}) must be in (0, 1); fix data.{name}.val_fraction")
    if not 0 < fraction <= 1:
        raise UserError(
            f"{name}: synthetic_fraction ({fraction}) must be in (0, 1]; fix data.{name}.synthetic_fraction"
        )


def _least(ok: Callable[[int], bool]) -> int:
    """The smallest image count ``n >= 1`` for which ``ok(n)``."""
    return next(n for n in itertools.count(1) if ok(n))


def _count(real: int, fraction: float, least: int = 1, cap: int | None = None) -> int:
    """``round(real * fraction)`` images, at least ``least``, then at most ``cap`` (None = no cap)."""
    n = max(round(real * fraction), least)
    return n if cap is None else min(n, cap)


def _stratified_count(real: int, classes: int, fraction: float, val_fraction: float) -> int:
    """A classification stand-in's "train file": ``real * fraction`` images, at least what a
    stratified split needs (sklearn: ``ceil(n * val_fraction)`` val images, and both splits hold
    every one of ``classes``)."""
    val = lambda n: math.ceil(n * val_fraction)  # noqa: E731
    return _count(real, fraction, least=_least(lambda n: classes <= val(n) <= n - classes))


def _train_val(name: str, n: int, val_fraction: float) -> dict[str, int]:
    """Split ``n`` images as the VOC and COCO loaders do: ``round(n * val_fraction)`` val, the rest train."""
    num_val = round(n * val_fraction)
    if not 0 < num_val < n:
        raise UserError(
            f"{name}: val_fraction {val_fraction} of the stand-in's {n} train images leaves an empty split; "
            f"change data.{name}.val_fraction (or data.{name}.max_train_images) in params.yaml"
        )
    return {"train": n - num_val, "val": num_val}


def _splittable(val_fraction: float) -> Callable[[int], bool]:
    return lambda n: 0 < round(n * val_fraction) < n


def _digits(seed: int) -> _Digits:
    images, labels = load_digit_images()
    fills = np.array([(p > MASK_THRESHOLD * p.max()).mean() for p in (resize_float(im, 32) for im in images)])
    return _Digits(images, labels, fills, split_digit_ids(seed, DIGIT_VAL_FRACTION, DIGIT_TEST_FRACTION))


def _rngs(seed: int, name: str) -> dict[str, np.random.Generator]:
    streams = np.random.SeedSequence([seed, _STREAMS[name]]).spawn(len(SPLITS))
    return {split: np.random.default_rng(s) for split, s in zip(SPLITS, streams, strict=True)}


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
