"""The COCO 2017 instances stand-in (``data.coco.synthetic``)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np

from components.data.coco import instances_json
from components.data.schema import DENSE_CROWD, SPLITS, DatasetMeta, write_meta
from components.data.synthetic.base import (
    _STREAMS,
    COLOURS,
    IGNORE_INDEX,
    _check,
    _count,
    _digits,
    _least,
    _log_uniform,
    _rngs,
    _splittable,
    _train_val,
    class_names,
)
from components.data.synthetic.captions import scene_captions
from components.data.synthetic.dense import _scenes, _Style, _write_dense
from components.io import atomic_directory, atomic_write_text

COCO_TRAIN_IMAGES = 118_287  # train2017: capped by max_train_images, then split into train/val
COCO_TEST_IMAGES = 5_000  # val2017: the test split, capped by max_test_images
COCO_OBJECTS_PER_IMAGE = 860_001 / 118_287  # train2017's instances per image: ~7.27
COCO_REFERENCE_AREA = 640 * 480  # COCO's typical image, on which its object sizes are defined
COCO_SIZES = (  # (share of objects, mask area range in px of COCO_REFERENCE_AREA); log-uniform within
    (0.41, (4**2, 32**2)),  # small
    (0.34, (32**2, 96**2)),  # medium
    (0.24, (96**2, 0.6 * COCO_REFERENCE_AREA)),  # large (the shares are COCO's, rounded: normalised)
)
COCO_COLOURS = 8  # 80 classes, as COCO's
COCO_MAX_BOX_IOU = 0.5  # placement is redrawn until a box overlaps every earlier one at most this
COCO_DISPERSION = 3  # negative-binomial shape of COCO's object count: variance = mean + mean^2 / 3
CAPTION_STREAM = 1  # the captions' generators: SeedSequence([seed, coco's stream, this]), apart from the images'


def _coco_areas(rng: np.random.Generator, k: int) -> np.ndarray:
    shares = np.array([share for share, _ in COCO_SIZES])
    low, high = np.array([bounds for _, bounds in COCO_SIZES]).T
    bins = rng.choice(len(COCO_SIZES), size=k, p=shares / shares.sum())
    return _log_uniform(rng, low[bins], high[bins]) / COCO_REFERENCE_AREA


COCO_STYLE = _Style(
    colours=COCO_COLOURS, max_box_iou=COCO_MAX_BOX_IOU, boundary=0.0,
    objects=lambda rng: int(rng.negative_binomial(
        COCO_DISPERSION, COCO_DISPERSION / (COCO_DISPERSION + COCO_OBJECTS_PER_IMAGE))),
    areas=_coco_areas,
)  # fmt: skip


def _captions(rng: np.random.Generator, size: int, colours: list[str], scene) -> list[str]:
    return scene_captions(rng, scene.boxes, scene.labels, scene.masks, size, colours)


def coco_counts(
    fraction: float, val_fraction: float, max_train_images: int | None, max_test_images: int | None
) -> dict[str, int]:
    """Images per split: COCO_TRAIN_IMAGES * fraction capped by ``max_train_images`` then split into
    train/val (an empty split is a UserError, as in the real loader), COCO_TEST_IMAGES * fraction
    capped by ``max_test_images`` test."""
    pool = _count(COCO_TRAIN_IMAGES, fraction, least=_least(_splittable(val_fraction)), cap=max_train_images)
    return _train_val("coco", pool, val_fraction) | {"test": _count(COCO_TEST_IMAGES, fraction, cap=max_test_images)}


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
    ``{train,val,test}.parquet`` (``DENSE_CROWD``, no crowd regions, five English captions per image
    from its objects: :mod:`.captions`), ``meta.json`` (81 classes, 3 channels, ignore index 255)
    and ``instances_{val,test}.json`` (image ids = row ids, RLE masks). Sizes: :func:`coco_counts`.
    The captions have their own generators, so the images and annotations are those drawn without
    them. ``out_dir`` is replaced whole on success."""
    _check("coco", val_fraction, fraction)
    counts = coco_counts(fraction, val_fraction, max_train_images, max_test_images)
    digits, rngs, names = _digits(seed), _rngs(seed, "coco"), class_names(COCO_COLOURS)
    streams = np.random.SeedSequence([seed, _STREAMS["coco"], CAPTION_STREAM]).spawn(len(SPLITS))
    colours = list(COLOURS)[:COCO_COLOURS]
    with atomic_directory(out_dir) as tmp:
        for split, stream in zip(SPLITS, streams, strict=True):
            scenes = _scenes(rngs[split], counts[split], image_size, COCO_STYLE, digits, digits.pools[split])
            annotations = None if split == "train" else []
            caption_rng = np.random.default_rng(stream)
            captions = partial(_captions, caption_rng, image_size, colours)
            _write_dense(tmp / f"{split}.parquet", scenes, DENSE_CROWD, annotations, captions=captions)
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
