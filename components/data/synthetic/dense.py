"""Dense scenes (VOC, COCO, VOC detection): digit objects tinted in their class colour, placed on a
textured background, their visible masks, boxes and semantic mask, streamed to Parquet. The package
docstring states the rules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter, minimum_filter

from components.data.coco import coco_annotation
from components.data.digits import to_uint8
from components.data.scenes import box_iou
from components.data.schema import CROWD_COLUMN, dense_columns, dense_row, mask_box, write_split_batches
from components.data.synthetic.base import COLOURS, IGNORE_INDEX, MASK_THRESHOLD, _chunks, _Digits, _log_uniform

PLACEMENT_TRIES = 20  # placement is redrawn at most this many times; then the last position stays (overlap)
ASPECT_RANGE = (2 / 3, 3 / 2)  # an object's width / height, log-uniform
TINT_RANGE = (0.8, 1.0)  # an object's brightness: its class colour times a uniform draw in this range
MIN_SIDE = 3  # px: the smallest width or height an object is drawn at
BACKGROUND_GRID = 4  # the background upsamples a random grid of this many colours a side
NOISE = 0.03  # std of the uniform pixel noise over the whole image (intensities in [0, 1])
ROW_GROUP = 64  # dense rows per Parquet row group (a 512 px COCO row is ~3 MB before compression)


@dataclass(frozen=True)
class _Style:
    """How one dense stand-in draws its images."""

    colours: int  # colours per digit
    max_box_iou: float
    boundary: float  # 255 band width / image side; 0 = no band
    objects: Callable[[np.random.Generator], int]  # objects drawn in one image
    areas: Callable[[np.random.Generator, int], np.ndarray]  # that many mask areas / image area


@dataclass(frozen=True)
class _Scene:
    image: np.ndarray  # uint8 (S, S, 3)
    semantic: np.ndarray  # uint8 (S, S)
    boxes: list[list[float]]  # tight [x0, y0, x1, y1) of each mask
    labels: list[int]
    masks: list[np.ndarray]  # uint8 {0, 1} (S, S)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``float32`` (size, size, 3): a bilinear upsampling of a BACKGROUND_GRID-square grid of random
    colours in [0.2, 0.8], each mixed half-way to its grey."""
    grid = rng.uniform(0.2, 0.8, (BACKGROUND_GRID, BACKGROUND_GRID, 3))
    grid = (grid + grid.mean(axis=2, keepdims=True)) / 2
    smooth = Image.fromarray(to_uint8(grid)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(smooth, np.float32) / 255


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``float32`` uniform noise of std NOISE, drawn as random bytes (3x faster than Gaussian draws)."""
    half = NOISE * math.sqrt(3)
    return rng.integers(0, 256, shape, dtype=np.uint8).astype(np.float32) * np.float32(2 * half / 255) - half


def _patch(rng: np.random.Generator, digit: np.ndarray, pixels: float, size: int) -> np.ndarray:
    """The digit resized bilinearly to w x h ~ ``pixels`` (w / h log-uniform in ASPECT_RANGE, each side
    in [MIN_SIDE, size]), scaled to peak 1: the object's ``float32`` alpha (h, w)."""
    aspect = _log_uniform(rng, *ASPECT_RANGE)
    w, h = (int(np.clip(round(math.sqrt(pixels * a)), MIN_SIDE, size)) for a in (aspect, 1 / aspect))
    alpha = np.asarray(Image.fromarray(digit).resize((w, h), Image.Resampling.BILINEAR), np.float32)
    return np.clip(alpha / alpha.max(), 0, 1)


def _place(rng: np.random.Generator, size: int, shape: tuple[int, int], boxes: list, max_iou: float) -> tuple:
    """A ``(x0, y0, x1, y1)`` box of ``shape`` (h, w) inside the image, redrawn up to PLACEMENT_TRIES
    times until its IoU with every earlier box is at most ``max_iou``, else the last one drawn."""
    h, w = shape
    for _ in range(PLACEMENT_TRIES):
        x, y = int(rng.integers(size - w + 1)), int(rng.integers(size - h + 1))
        box = (x, y, x + w, y + h)
        if all(box_iou(box, other) <= max_iou for other in boxes):
            break
    return box


def _band(owner: np.ndarray, width: int) -> np.ndarray:
    """``bool`` (S, S): the pixels of a ``width`` px band along every outline in the owner map (where
    an object meets the background or another object)."""
    return maximum_filter(owner, size=width + 1) != minimum_filter(owner, size=width + 1)


def _draw_scene(rng: np.random.Generator, size: int, style: _Style, digits: _Digits, pool: np.ndarray) -> _Scene:
    """One image of ``style`` from the digits ``pool`` (the module docstring states the rules)."""
    image = _background(rng, size)
    owner = np.full((size, size), -1, np.int16)  # which object each pixel shows (-1: background)
    boxes, labels = [], []
    for area in np.sort(style.areas(rng, style.objects(rng)))[::-1]:  # largest first: smaller ones on top
        digit, colour = int(pool[rng.integers(len(pool))]), int(rng.integers(style.colours))
        alpha = _patch(rng, digits.images[digit], area * size * size / digits.fills[digit], size)
        x0, y0, x1, y1 = box = _place(rng, size, alpha.shape, boxes, style.max_box_iou)
        tint = np.array(list(COLOURS.values())[colour], np.float32) * rng.uniform(*TINT_RANGE)
        image[y0:y1, x0:x1] += alpha[..., None] * (tint - image[y0:y1, x0:x1])
        owner[y0:y1, x0:x1][alpha > MASK_THRESHOLD] = len(labels)
        boxes.append(box)
        labels.append(1 + int(digits.labels[digit]) * style.colours + colour)
    image += _noise(rng, image.shape)
    band = _band(owner, max(1, round(style.boundary * size))) if style.boundary else None
    return _annotate(to_uint8(image), owner, boxes, labels, band)


def _annotate(image: np.ndarray, owner: np.ndarray, boxes: list, labels: list[int], band) -> _Scene:
    """The scene's masks: object j's instance mask is ``owner == j`` less the band (dropped when
    empty); the semantic mask shows each pixel's owner's label, IGNORE_INDEX on the band."""
    size = owner.shape[0]
    semantic = np.array([0, *labels], np.uint8)[owner + 1]
    if band is not None:
        semantic[band] = IGNORE_INDEX
    scene = _Scene(image, semantic, [], [], [])
    for j, (x0, y0, x1, y1) in enumerate(boxes):
        visible = owner[y0:y1, x0:x1] == j
        if band is not None:
            visible &= ~band[y0:y1, x0:x1]
        if not visible.any():
            continue
        bx0, by0, bx1, by1 = mask_box(visible)
        mask = np.zeros((size, size), np.uint8)
        mask[y0:y1, x0:x1] = visible
        scene.boxes.append([x0 + bx0, y0 + by0, x0 + bx1, y0 + by1])
        scene.labels.append(labels[j])
        scene.masks.append(mask)
    return scene


def _write_dense(
    path: Path, scenes: Iterable[_Scene], schema, annotations: list | None = None, boxes_only: bool = False,
    captions: Callable[[_Scene], list[str]] | None = None,
) -> None:
    """Stream ``scenes`` to one split of ``schema`` (``DENSE``, or ``DENSE_CROWD`` with every flag 0);
    with ``annotations`` (a list), append each object's COCO annotation to it (image id = row id).
    ``boxes_only`` writes detection rows as ``voc_detection`` does: no instance masks, the semantic
    mask all IGNORE_INDEX, annotations without segmentation (area = box area). ``captions`` writes
    each row's captions (called once per scene, in row order); without it they are empty."""
    crowd = CROWD_COLUMN.name in schema.names

    def rows() -> Iterator[dict]:
        for i, s in enumerate(scenes):
            masks = [None] * len(s.labels) if boxes_only else s.masks
            if annotations is not None:
                annotations.extend(coco_annotation(i, *obj, 0) for obj in zip(s.boxes, s.labels, masks, strict=True))
            flags = [0] * len(s.labels) if crowd else None
            semantic = np.full_like(s.semantic, IGNORE_INDEX) if boxes_only else s.semantic
            texts = captions(s) if captions else []
            yield dense_row(i, s.image, semantic, s.boxes, s.labels, [] if boxes_only else s.masks, texts,
                            iscrowd=flags)

    write_split_batches((dense_columns(chunk, schema) for chunk in _chunks(rows(), ROW_GROUP)), schema, path)


def _scenes(rng, count: int, size: int, style: _Style, digits: _Digits, pool: np.ndarray) -> Iterator[_Scene]:
    return (_draw_scene(rng, size, style, digits, pool) for _ in range(count))
