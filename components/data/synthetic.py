"""Synthetic stand-ins for PASCAL VOC 2012 segmentation, COCO 2017 instances and MNIST.

``data.<name>.synthetic: true`` makes the prepare stage generate (seeded, nothing downloaded) a
dataset with the real one's split sizes, classes, image shape and objects per image, written as
the real loader writes it: the same folder, schema, ``meta.json`` fields and side files. A family
reads it unchanged (``segmentation.dataset: voc``, ``detection.dataset: coco``,
``generative.dataset: mnist``), so a GPU profile measures throughput and memory at real scale
without the real data. ``synthetic_fraction`` draws ``round(real count * fraction)`` images per
split instead (at least what non-empty splits need), so CI runs the same code at tiny scale.

The images are learnable, not noise: every object is one of scikit-learn's real handwritten
digits (``digits.py``), and the train, val and test splits draw on disjoint digits
(``split_digit_ids``), so val and test digits are unseen.

- VOC and COCO: a class is a (digit, colour) pair named like ``"3-red"``: 10 digits x
  VOC_COLOURS = 20 classes, x COCO_COLOURS = 80, plus background. An object is its digit resized
  bilinearly (aspect ratio jittered), tinted in its class colour and alpha-blended over a
  textured background (a smooth random colour field half-way to grey, so the saturated colours
  belong to objects), with pixel noise over all; telling classes apart needs colour and shape.
  Objects are drawn largest first and may overlap, a later one occluding an earlier one. An
  object's instance mask is the visible part of its pixels above MASK_THRESHOLD of its peak
  intensity, its box the tight box of that mask; an object left with no visible pixel is dropped.
- VOC: 1 + Poisson objects per image (mean VOC_OBJECTS_PER_IMAGE), mask areas log-uniform in
  VOC_AREA_RANGE. As in VOC, the semantic mask is IGNORE_INDEX (255) on a band along every object
  outline (VOC_BOUNDARY of the image side wide) and the instance masks leave the band out (as
  ``SegmentationObject`` does). Written as :func:`components.data.voc.load_voc_segmentation` writes
  it (``DENSE``, no side files); ``meta.name`` is ``voc2012`` whatever ``data.voc.year`` says.
- COCO: negative-binomial objects per image (mean COCO_OBJECTS_PER_IMAGE, some images empty),
  mask areas drawn from COCO_SIZES (COCO's small / medium / large shares, areas scaled from
  640x480 to the image). Written as :func:`components.data.coco.load_coco_instances` writes it
  (``DENSE_CROWD``, every ``iscrowd`` 0, and ``instances_{val,test}.json``).
- MNIST: one digit per 28x28 grey image, its 8x8 box scaled to MNIST's 20x20 and jittered by a
  random affine map (scale, rotation, shift), so no two samples are the same picture; labels
  cycle through 0..9 (balanced). Written as :func:`components.data.mnist.load_mnist` writes it
  (``CLASSIFICATION``; train/val split stratified and seeded; row ids index the 60,000 "source").

Splits are sized as the real loaders size them (see each builder). Every split has its own
generator, spawned from ``seed`` and the dataset's stream, so the same seed gives byte-identical
files. Dense splits are streamed to Parquet ROW_GROUP rows at a time: COCO at 512 px is far
larger than memory.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter, minimum_filter
from sklearn.model_selection import train_test_split

from components.data.coco import coco_annotation, instances_json
from components.data.digits import NATIVE_SIZE, load_digit_images, resize_float, split_digit_ids, to_uint8
from components.data.scenes import box_iou
from components.data.schema import (
    CLASSIFICATION,
    CROWD_COLUMN,
    DENSE,
    DENSE_CROWD,
    SPLITS,
    DatasetMeta,
    classification_columns,
    dense_columns,
    dense_row,
    mask_box,
    write_meta,
    write_split,
    write_split_batches,
)
from components.errors import UserError
from components.io import atomic_directory, atomic_write_text

# --- the real datasets' figures the stand-ins reproduce (at synthetic_fraction 1.0) -------------

VOC_TRAIN_IDS = 1_464  # VOC2012 ImageSets/Segmentation/train.txt: split into train/val by val_fraction
VOC_TEST_IDS = 1_449  # VOC2012 ImageSets/Segmentation/val.txt: the test split
VOC_OBJECTS_PER_IMAGE = 3_507 / 1_464  # objects in VOC2012's segmentation train images: ~2.40
COCO_TRAIN_IMAGES = 118_287  # train2017: capped by max_train_images, then split into train/val
COCO_TEST_IMAGES = 5_000  # val2017: the test split, capped by max_test_images
COCO_OBJECTS_PER_IMAGE = 860_001 / 118_287  # train2017's instances per image: ~7.27
COCO_REFERENCE_AREA = 640 * 480  # COCO's typical image, on which its object sizes are defined
COCO_SIZES = (  # (share of objects, mask area range in px of COCO_REFERENCE_AREA); log-uniform within
    (0.41, (4**2, 32**2)),  # small
    (0.34, (32**2, 96**2)),  # medium
    (0.24, (96**2, 0.6 * COCO_REFERENCE_AREA)),  # large (the shares are COCO's, rounded: normalised)
)
MNIST_TRAIN_IMAGES = 60_000  # train-images-idx3-ubyte: split into train/val by val_fraction
MNIST_TEST_IMAGES = 10_000  # t10k-images-idx3-ubyte: the test split
MNIST_SIZE = 28  # px a side, grey
MNIST_CLASSES = 10
IGNORE_INDEX = 255  # VOC's boundary / COCO's crowd value in the semantic mask (as voc.py and coco.py)

# --- how the stand-ins are drawn -----------------------------------------------------------------

COLOURS = {  # name -> RGB in [0, 1]; VOC uses the first VOC_COLOURS, COCO the first COCO_COLOURS
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.75, 0.15), "blue": (0.15, 0.3, 0.95), "yellow": (0.95, 0.85, 0.1),
    "cyan": (0.1, 0.85, 0.85), "magenta": (0.85, 0.15, 0.8), "white": (1.0, 1.0, 1.0), "black": (0.02, 0.02, 0.02),
}  # fmt: skip
VOC_COLOURS = 2  # colours per digit: 20 classes, as VOC's
COCO_COLOURS = 8  # 80 classes, as COCO's
VOC_AREA_RANGE = (0.01, 0.5)  # an object's mask area / the image's, log-uniform (VOC's objects are mostly large)
VOC_BOUNDARY = 5 / 500  # width of VOC's 255 band (~5 px on ~500 px images) / the image side; at least 1 px
VOC_MAX_BOX_IOU = 0.3  # placement is redrawn until a box overlaps every earlier one at most this ...
COCO_MAX_BOX_IOU = 0.5
PLACEMENT_TRIES = 20  # ... at most this many times; then the last position stays (the objects overlap)
COCO_DISPERSION = 3  # negative-binomial shape of COCO's object count: variance = mean + mean^2 / 3
ASPECT_RANGE = (2 / 3, 3 / 2)  # an object's width / height, log-uniform
TINT_RANGE = (0.8, 1.0)  # an object's brightness: its class colour times a uniform draw in this range
MIN_SIDE = 3  # px: the smallest width or height an object is drawn at
MASK_THRESHOLD = 0.3  # an object's mask: its pixels above this fraction of its peak intensity
BACKGROUND_GRID = 4  # the background upsamples a random grid of this many colours a side
NOISE = 0.03  # std of the uniform pixel noise over the whole image (intensities in [0, 1])
MNIST_DIGIT_BOX = 20  # MNIST fits each digit into a 20x20 box centred in the 28x28 image
MNIST_SCALE = (0.85, 1.15)  # jitter: scale factor on the 20x20 box
MNIST_ROTATION = 15.0  # jitter: degrees, either way
MNIST_SHIFT = 2.0  # jitter: px along each axis, either way
DIGIT_VAL_FRACTION = DIGIT_TEST_FRACTION = 0.15  # of the 1,797 digits: the ones val / test images draw on
ROW_GROUP = 64  # dense rows per Parquet row group (a 512 px COCO row is ~3 MB before compression)
MNIST_BATCH = 4096  # digits resampled at once
_STREAMS = {"voc": 1, "coco": 2, "mnist": 3}  # each dataset's generators differ for the same seed


@dataclass(frozen=True)
class _Digits:
    images: np.ndarray  # float32 (N, 8, 8) in [0, 1]
    labels: np.ndarray  # int64 (N,)
    fills: np.ndarray  # float64 (N,): the share of its square a digit's mask covers
    pools: dict[str, np.ndarray]  # split -> the digit ids its images draw on


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


def _log_uniform(rng: np.random.Generator, low, high, size=None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _coco_areas(rng: np.random.Generator, k: int) -> np.ndarray:
    shares = np.array([share for share, _ in COCO_SIZES])
    low, high = np.array([bounds for _, bounds in COCO_SIZES]).T
    bins = rng.choice(len(COCO_SIZES), size=k, p=shares / shares.sum())
    return _log_uniform(rng, low[bins], high[bins]) / COCO_REFERENCE_AREA


VOC_STYLE = _Style(
    colours=VOC_COLOURS, max_box_iou=VOC_MAX_BOX_IOU, boundary=VOC_BOUNDARY,
    objects=lambda rng: 1 + int(rng.poisson(VOC_OBJECTS_PER_IMAGE - 1)),
    areas=lambda rng, k: _log_uniform(rng, *VOC_AREA_RANGE, size=k),
)  # fmt: skip
COCO_STYLE = _Style(
    colours=COCO_COLOURS, max_box_iou=COCO_MAX_BOX_IOU, boundary=0.0,
    objects=lambda rng: int(rng.negative_binomial(
        COCO_DISPERSION, COCO_DISPERSION / (COCO_DISPERSION + COCO_OBJECTS_PER_IMAGE))),
    areas=_coco_areas,
)  # fmt: skip


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


def voc_counts(fraction: float, val_fraction: float) -> dict[str, int]:
    """Images per split: VOC_TRAIN_IDS * fraction split into train/val, VOC_TEST_IDS * fraction test."""
    pool = _count(VOC_TRAIN_IDS, fraction, least=_least(_splittable(val_fraction)))
    return _train_val("voc", pool, val_fraction) | {"test": _count(VOC_TEST_IDS, fraction)}


def coco_counts(
    fraction: float, val_fraction: float, max_train_images: int | None, max_test_images: int | None
) -> dict[str, int]:
    """Images per split: COCO_TRAIN_IMAGES * fraction capped by ``max_train_images`` then split into
    train/val (an empty split is a UserError, as in the real loader), COCO_TEST_IMAGES * fraction
    capped by ``max_test_images`` test."""
    pool = _count(COCO_TRAIN_IMAGES, fraction, least=_least(_splittable(val_fraction)), cap=max_train_images)
    return _train_val("coco", pool, val_fraction) | {"test": _count(COCO_TEST_IMAGES, fraction, cap=max_test_images)}


def mnist_source_count(fraction: float, val_fraction: float) -> int:
    """The stand-in's "train file": MNIST_TRAIN_IMAGES * fraction, at least what a stratified split
    needs (sklearn: ``ceil(n * val_fraction)`` val images, and both splits hold every class)."""
    val = lambda n: math.ceil(n * val_fraction)  # noqa: E731
    least = _least(lambda n: MNIST_CLASSES <= val(n) <= n - MNIST_CLASSES)
    return _count(MNIST_TRAIN_IMAGES, fraction, least=least)


# --- shared pieces -----------------------------------------------------------------------------------


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


# --- dense scenes (VOC, COCO) -----------------------------------------------------------------------


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


def _write_dense(path: Path, scenes: Iterable[_Scene], schema, annotations: list | None = None) -> None:
    """Stream ``scenes`` to one split of ``schema`` (``DENSE``, or ``DENSE_CROWD`` with every flag 0);
    with ``annotations`` (a list), append each object's COCO annotation to it (image id = row id)."""
    crowd = CROWD_COLUMN.name in schema.names

    def rows() -> Iterator[dict]:
        for i, s in enumerate(scenes):
            if annotations is not None:
                annotations.extend(coco_annotation(i, *obj, 0) for obj in zip(s.boxes, s.labels, s.masks, strict=True))
            flags = [0] * len(s.labels) if crowd else None
            yield dense_row(i, s.image, s.semantic, s.boxes, s.labels, s.masks, [], iscrowd=flags)

    write_split_batches((dense_columns(chunk, schema) for chunk in _chunks(rows(), ROW_GROUP)), schema, path)


def _scenes(rng, count: int, size: int, style: _Style, digits: _Digits, pool: np.ndarray) -> Iterator[_Scene]:
    return (_draw_scene(rng, size, style, digits, pool) for _ in range(count))


def build_synthetic_voc(
    out_dir: Path, *, seed: int, image_size: int, val_fraction: float, fraction: float
) -> DatasetMeta:
    """Write the VOC 2012 segmentation stand-in to ``out_dir`` as ``load_voc_segmentation`` writes VOC:
    ``{train,val,test}.parquet`` (``DENSE``, captions empty) and ``meta.json`` (21 classes, 3 channels,
    ignore index 255). Sizes: :func:`voc_counts`. ``out_dir`` is replaced whole on success."""
    _check("voc", val_fraction, fraction)
    counts = voc_counts(fraction, val_fraction)
    digits, rngs = _digits(seed), _rngs(seed, "voc")
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            scenes = _scenes(rngs[split], counts[split], image_size, VOC_STYLE, digits, digits.pools[split])
            _write_dense(tmp / f"{split}.parquet", scenes, DENSE)
        meta = DatasetMeta(
            name="voc2012", task="dense", class_names=class_names(VOC_COLOURS), height=image_size,
            width=image_size, channels=3, ignore_index=IGNORE_INDEX,
            source=f"components.data.synthetic (VOC 2012 stand-in, fraction={fraction}, seed={seed})", sizes=counts,
        )  # fmt: skip
        write_meta(meta, tmp)
    return meta


def build_synthetic_coco(
    out_dir: Path,
    *,
    seed: int,
    image_size: int,
    val_fraction: float,
    max_train_images: int | None,
    max_test_images: int | None,
    fraction: float,
) -> DatasetMeta:
    """Write the COCO 2017 stand-in to ``out_dir`` as ``load_coco_instances`` writes COCO:
    ``{train,val,test}.parquet`` (``DENSE_CROWD``, no crowd regions, captions empty), ``meta.json``
    (81 classes, 3 channels, ignore index 255) and ``instances_{val,test}.json`` (image ids = row
    ids, RLE masks). Sizes: :func:`coco_counts`. ``out_dir`` is replaced whole on success."""
    _check("coco", val_fraction, fraction)
    counts = coco_counts(fraction, val_fraction, max_train_images, max_test_images)
    digits, rngs, names = _digits(seed), _rngs(seed, "coco"), class_names(COCO_COLOURS)
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            scenes = _scenes(rngs[split], counts[split], image_size, COCO_STYLE, digits, digits.pools[split])
            annotations = None if split == "train" else []
            _write_dense(tmp / f"{split}.parquet", scenes, DENSE_CROWD, annotations)
            if annotations is not None:
                images = [
                    {"id": i, "file_name": f"{i:06d}.png", "height": image_size, "width": image_size}
                    for i in range(counts[split])
                ]
                description = f"courselab coco {split}: synthetic stand-in (seed={seed})"
                instances = instances_json(images, annotations, names, description)
                atomic_write_text(tmp / f"instances_{split}.json", json.dumps(instances) + "\n")
        meta = DatasetMeta(
            name="coco", task="dense", class_names=names, height=image_size, width=image_size, channels=3,
            ignore_index=IGNORE_INDEX, sizes=counts,
            source=f"components.data.synthetic (COCO 2017 stand-in, fraction={fraction}, seed={seed})",
        )  # fmt: skip
        write_meta(meta, tmp)
    return meta


# --- MNIST ----------------------------------------------------------------------------------------------


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
