"""The CIFAR-10 stand-in (``data.cifar10.synthetic``): one coloured shape per 32x32 RGB image, the
shape (or its texture) telling the class."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from components.data.cifar10 import CLASS_NAMES, NATIVE_SIZE, check_sizes, write_cifar10
from components.data.digits import to_uint8
from components.data.schema import DatasetMeta
from components.data.synthetic.base import _check, _chunks, _count, _rngs, _stratified_count

CIFAR10_TRAIN_IMAGES = 50_000  # data_batch_1..5: split into train/val by val_fraction
CIFAR10_TEST_IMAGES = 10_000  # test_batch: the test split
CIFAR10_CLASSES = 10
CIFAR10_SIZE = NATIVE_SIZE  # 32 px a side, RGB
SHAPE_RADIUS = (8.0, 13.0)  # px: a shape's outer radius, uniform
SHAPE_SHIFT = 4.0  # px: the shape's centre moves up to this far from the image centre along each axis
BACKGROUND_CYCLES = (0.5, 2.0)  # the background's colour wave: cycles per image side
NOISE_STD = 0.04  # Gaussian pixel noise, in [0, 1] intensity
CIFAR10_BATCH = 4096  # images drawn at once

Shape = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _polygon(u: np.ndarray, v: np.ndarray, sides: int, apothem: float) -> np.ndarray:
    """Distance-like field of a regular polygon (negative inside): the largest edge-normal projection."""
    angles = [math.pi / 2 + 2 * math.pi * k / sides for k in range(sides)]
    return np.max([u * math.cos(a) + v * math.sin(a) for a in angles], axis=0) - apothem


def _flat(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return d, np.ones_like(d)


def _stripes(u: np.ndarray) -> np.ndarray:
    """Shade of 3 light and 3 dark bands across the shape, soft-edged."""
    return 0.675 + 0.325 * np.tanh(3 * np.sin(3 * math.pi * u))


def _checker(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shade of a soft-edged checkerboard, about 4 x 4 cells over the square."""
    return 0.675 + 0.325 * np.tanh(3 * np.sin(2.5 * math.pi * u) * np.sin(2.5 * math.pi * v))


# Class k is SHAPES[k]: (u, v) -> (signed distance in radii, negative inside; shade in [0.35, 1]). (u, v) are
# pixel offsets from the centre, rotated by a random angle and divided by the radius.
SHAPES: tuple[Shape, ...] = (
    lambda u, v: _flat(np.hypot(u, v) - 1),  # disc
    lambda u, v: _flat(np.maximum(abs(u), abs(v)) - 0.8),  # square
    lambda u, v: _flat(_polygon(u, v, 3, 0.5)),  # triangle
    lambda u, v: _flat(abs(np.hypot(u, v) - 0.72) - 0.28),  # ring
    lambda u, v: _flat(np.minimum(np.maximum(abs(u) - 0.3, abs(v) - 0.95),
                                  np.maximum(abs(u) - 0.95, abs(v) - 0.3))),  # plus
    lambda u, v: _flat(np.hypot(u, v) - 0.62 - 0.33 * np.cos(5 * np.arctan2(v, u))),  # five-pointed star
    lambda u, v: _flat(np.hypot(u, v / 0.45) - 1),  # bar (an ellipse 2.2:1)
    lambda u, v: (np.hypot(u, v) - 1, _stripes(u)),  # striped disc
    lambda u, v: (np.maximum(abs(u), abs(v)) - 0.8, _checker(u, v)),  # checkered square
    lambda u, v: _flat(abs(np.maximum(abs(u), abs(v)) - 0.68) - 0.17),  # square frame
)  # fmt: skip


def cifar10_source_count(fraction: float, val_fraction: float) -> int:
    """The stand-in's "training batches": CIFAR10_TRAIN_IMAGES * fraction, at least what a stratified split needs."""
    return _stratified_count(CIFAR10_TRAIN_IMAGES, CIFAR10_CLASSES, fraction, val_fraction)


def _hsv_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) saturated RGB colours in [0, 1]: any hue, saturation 0.65-1, value 0.7-1."""
    hue, sat, val = rng.uniform(0, 1, n), rng.uniform(0.65, 1, n), rng.uniform(0.7, 1, n)
    k = (np.array([5, 3, 1])[None] + hue[:, None] * 6) % 6
    return val[:, None] * (1 - sat[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1))


def _shape_images(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """``uint8`` (n, 32, 32, 3): shape ``labels[i]`` in a random colour, size, angle and place over a
    colour wave half-way to grey, with pixel noise."""
    n, side = len(labels), CIFAR10_SIZE
    ys, xs = np.mgrid[:side, :side].astype(np.float32) + 0.5
    cx, cy = side / 2 + rng.uniform(-SHAPE_SHIFT, SHAPE_SHIFT, (2, n, 1, 1)).astype(np.float32)
    radius = rng.uniform(*SHAPE_RADIUS, (n, 1, 1)).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi, (n, 1, 1)).astype(np.float32)
    dx, dy = xs - cx, ys - cy
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius
    v = (dy * np.cos(angle) - dx * np.sin(angle)) / radius
    distance, shade = np.empty((n, side, side), np.float32), np.empty((n, side, side), np.float32)
    for c, shape in enumerate(SHAPES):
        where = labels == c
        if where.any():
            distance[where], shade[where] = shape(u[where], v[where])
    alpha = np.clip(0.5 - distance * radius, 0, 1)[..., None]  # anti-aliased edge, one pixel wide
    base = rng.uniform(0.2, 0.8, (n, 1, 1, 3)).astype(np.float32)
    cycles = (rng.uniform(*BACKGROUND_CYCLES, (n, 1, 1, 1)) * 2 * math.pi / side).astype(np.float32)
    heading, phase = rng.uniform(0, 2 * math.pi, (2, n, 1, 1, 1)).astype(np.float32)
    wave = np.sin(cycles * (xs[..., None] * np.cos(heading) + ys[..., None] * np.sin(heading)) + phase)
    background = 0.5 * np.clip(base + 0.2 * wave, 0, 1) + 0.25
    colour = _hsv_colours(rng, n).astype(np.float32)[:, None, None, :] * shade[..., None]
    noise = NOISE_STD * rng.standard_normal((n, side, side, 3), dtype=np.float32)
    image = background * (1 - alpha) + colour * alpha + noise
    return to_uint8(image)


def build_synthetic_cifar10(
    out_dir: Path, *, seed: int, image_size: int, val_fraction: float, fraction: float
) -> DatasetMeta:
    """Write the CIFAR-10 stand-in to ``out_dir`` as ``load_cifar10`` writes CIFAR-10 (through its
    ``write_cifar10``): ``{train,val,test}.parquet`` (``CLASSIFICATION``, ``uint8`` (image_size, image_size, 3),
    drawn at 32 and upsampled bilinearly above) and ``meta.json`` (CIFAR-10's 10 class names). Training
    batches of :func:`cifar10_source_count` images (label = index mod 10) are split stratified and seeded
    by ``val_fraction`` as ``load_cifar10`` splits them (row ids index them); CIFAR10_TEST_IMAGES * fraction
    are the test split. ``out_dir`` is replaced whole on success."""
    _check("cifar10", val_fraction, fraction)
    check_sizes("cifar10", image_size, val_fraction)
    source = np.arange(cifar10_source_count(fraction, val_fraction))
    train_ids, val_ids = train_test_split(
        source, test_size=val_fraction, stratify=source % CIFAR10_CLASSES, random_state=seed
    )
    ids = {"train": train_ids, "val": val_ids, "test": np.arange(_count(CIFAR10_TEST_IMAGES, fraction))}
    rngs = _rngs(seed, "cifar10")
    splits = {}
    for split, split_ids in ids.items():
        labels = split_ids % CIFAR10_CLASSES
        images = np.concatenate([_shape_images(rngs[split], labels[chunk])
                                 for chunk in _chunks(range(len(labels)), CIFAR10_BATCH)])
        splits[split] = (split_ids, images, labels)
    return write_cifar10(
        out_dir, splits, class_names=CLASS_NAMES, image_size=image_size,
        source=f"components.data.synthetic (CIFAR-10 stand-in, fraction={fraction}, seed={seed})",
    )
