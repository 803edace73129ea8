"""The MNIST stand-in (``data.mnist.synthetic``): jittered handwritten digits at 28x28."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from components.data.digits import NATIVE_SIZE, to_uint8
from components.data.schema import CLASSIFICATION, SPLITS, DatasetMeta, classification_columns, write_meta, write_split
from components.data.synthetic.base import _check, _chunks, _count, _Digits, _digits, _rngs, _stratified_count
from components.io import atomic_directory

MNIST_TRAIN_IMAGES = 60_000  # train-images-idx3-ubyte: split into train/val by val_fraction
MNIST_TEST_IMAGES = 10_000  # t10k-images-idx3-ubyte: the test split
MNIST_SIZE = 28  # px a side, grey
MNIST_CLASSES = 10
MNIST_DIGIT_BOX = 20  # MNIST fits each digit into a 20x20 box centred in the 28x28 image
MNIST_SCALE = (0.85, 1.15)  # jitter: scale factor on the 20x20 box
MNIST_ROTATION = 15.0  # jitter: degrees, either way
MNIST_SHIFT = 2.0  # jitter: px along each axis, either way
MNIST_BATCH = 4096  # digits resampled at once


def mnist_source_count(fraction: float, val_fraction: float) -> int:
    """The stand-in's "train file": MNIST_TRAIN_IMAGES * fraction, at least what a stratified split needs."""
    return _stratified_count(MNIST_TRAIN_IMAGES, MNIST_CLASSES, fraction, val_fraction)


def _bilinear(images: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``images`` (n, h, w) at index coordinates ``x``, ``y`` (n, H, W) bilinearly, zero outside."""
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    rows = np.arange(n)[:, None, None]

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return padded[rows, np.clip(yi + 1, 0, h + 1).astype(np.intp), np.clip(xi + 1, 0, w + 1).astype(np.intp)]

    top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    return (1 - fy) * top + fy * bottom


def _jittered(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """``uint8`` (n, 28, 28) from (n, 8, 8) digits: each 8x8 box scaled to MNIST_DIGIT_BOX px times a
    factor in MNIST_SCALE, rotated up to MNIST_ROTATION degrees and shifted up to MNIST_SHIFT px about
    the image centre (uniform draws), sampled bilinearly."""
    n = len(digits)
    zoom = MNIST_DIGIT_BOX / NATIVE_SIZE * rng.uniform(*MNIST_SCALE, size=(n, 1, 1)).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-MNIST_ROTATION, MNIST_ROTATION, size=(n, 1, 1))).astype(np.float32)
    dx, dy = rng.uniform(-MNIST_SHIFT, MNIST_SHIFT, size=(2, n, 1, 1)).astype(np.float32)
    ys, xs = np.mgrid[:MNIST_SIZE, :MNIST_SIZE].astype(np.float32) + 0.5 - MNIST_SIZE / 2  # about the centre
    u, v = xs - dx, ys - dy
    cos, sin = np.cos(angle), np.sin(angle)
    x = (cos * u + sin * v) / zoom + NATIVE_SIZE / 2 - 0.5  # index coordinates in the 8x8 digit
    y = (cos * v - sin * u) / zoom + NATIVE_SIZE / 2 - 0.5
    return to_uint8(_bilinear(digits, x, y))


def _mnist_images(rng: np.random.Generator, digits: _Digits, pool: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``uint8`` (n, 28, 28, 1): for each label a random digit of that class from ``pool``, jittered."""
    chosen = np.empty(len(labels), np.int64)
    for c in range(MNIST_CLASSES):
        members, where = pool[digits.labels[pool] == c], labels == c
        chosen[where] = members[rng.integers(len(members), size=int(where.sum()))]
    batches = [_jittered(rng, digits.images[ids]) for ids in _chunks(chosen, MNIST_BATCH)]
    return np.concatenate(batches)[..., None]


def build_synthetic_mnist(out_dir: Path, *, seed: int, val_fraction: float, fraction: float) -> DatasetMeta:
    """Write the MNIST stand-in to ``out_dir`` as ``load_mnist`` writes MNIST: ``{train,val,test}.parquet``
    (``CLASSIFICATION``, ``uint8`` (28, 28, 1)) and ``meta.json`` (10 classes). A "train file" of
    :func:`mnist_source_count` images (label = index mod 10) is split stratified and seeded by
    ``val_fraction`` as ``load_mnist`` splits (row ids index it); MNIST_TEST_IMAGES * fraction are the
    test split. ``out_dir`` is replaced whole on success."""
    _check("mnist", val_fraction, fraction)
    source = np.arange(mnist_source_count(fraction, val_fraction))
    train_ids, val_ids = train_test_split(
        source, test_size=val_fraction, stratify=source % MNIST_CLASSES, random_state=seed
    )
    ids = {"train": train_ids, "val": val_ids, "test": np.arange(_count(MNIST_TEST_IMAGES, fraction))}
    digits, rngs = _digits(seed), _rngs(seed, "mnist")
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            labels = ids[split] % MNIST_CLASSES
            images = _mnist_images(rngs[split], digits, digits.pools[split], labels)
            write_split(classification_columns(ids[split], images, labels), CLASSIFICATION, tmp / f"{split}.parquet")
        meta = DatasetMeta(
            name="mnist", task="classification", class_names=[str(d) for d in range(MNIST_CLASSES)],
            height=MNIST_SIZE, width=MNIST_SIZE, channels=1, sizes={split: len(ids[split]) for split in SPLITS},
            source=f"components.data.synthetic (MNIST stand-in, fraction={fraction}, seed={seed})",
        )  # fmt: skip
        write_meta(meta, tmp)
    return meta
