"""The PASCAL VOC 2007 detection stand-in (``data.voc_detection.synthetic``): VOC's drawing, boxes only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from components.data.coco import instances_json
from components.data.schema import DENSE, SPLITS, DatasetMeta, write_meta
from components.data.synthetic.base import IGNORE_INDEX, _check, _digits, _rngs, class_names
from components.data.synthetic.dense import _scenes, _write_dense
from components.data.synthetic.voc import VOC_COLOURS, VOC_STYLE, voc_like_counts
from components.io import atomic_directory, atomic_write_text

VOC2007_TRAIN_IDS = 2_501  # VOC2007 ImageSets/Main/train.txt: split into train/val by val_fraction
VOC2007_TEST_IDS = 2_510  # VOC2007 ImageSets/Main/val.txt: the test split
# VOC2007 devkit documentation, statistics of the main image sets: train.txt's 2,501 images hold
# 6,301 objects (val.txt: 6,307 in 2,510; trainval 12,608 in 5,011), "difficult" ones not counted,
# as the loader drops them: ~2.52 per image.
VOC2007_OBJECTS_PER_IMAGE = 6_301 / 2_501
BOXES_ONLY_BOUNDARY = 0.0  # no 255 band: a box is the tight box of the object's whole visible part
VOC_DETECTION_STYLE = replace(
    VOC_STYLE,
    boundary=BOXES_ONLY_BOUNDARY,
    objects=lambda rng: 1 + int(rng.poisson(VOC2007_OBJECTS_PER_IMAGE - 1)),
)


def voc_detection_counts(fraction: float, val_fraction: float) -> dict[str, int]:
    """Images per split: VOC2007_TRAIN_IDS * fraction split into train/val (as ``voc_splits``),
    VOC2007_TEST_IDS * fraction test."""
    return voc_like_counts("voc_detection", VOC2007_TRAIN_IDS, VOC2007_TEST_IDS, fraction, val_fraction)


def build_synthetic_voc_detection(
    out_dir: Path, *, seed: int, image_size: int, val_fraction: float, fraction: float
) -> DatasetMeta:
    """Write the VOC 2007 detection stand-in to ``out_dir`` as ``load_voc_detection`` writes VOC:
    ``{train,val,test}.parquet`` (``DENSE``: boxes and labels, no instance masks, the semantic mask
    all 255, captions empty), ``instances_{val,test}.json`` (image ids = row ids, no segmentation,
    every ``iscrowd`` 0: the stand-in has no difficult objects) and ``meta.json`` (21 classes,
    ``voc2007_detection``). Objects are drawn as the VOC stand-in's (class = digit x colour), 1 +
    Poisson per image (mean VOC2007_OBJECTS_PER_IMAGE); a box is the tight box of the object's
    visible pixels. Sizes: :func:`voc_detection_counts`. ``out_dir`` is replaced whole on success."""
    _check("voc_detection", val_fraction, fraction)
    counts = voc_detection_counts(fraction, val_fraction)
    digits, rngs, names = _digits(seed), _rngs(seed, "voc_detection"), class_names(VOC_COLOURS)
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            scenes = _scenes(rngs[split], counts[split], image_size, VOC_DETECTION_STYLE, digits, digits.pools[split])
            annotations = None if split == "train" else []
            _write_dense(tmp / f"{split}.parquet", scenes, DENSE, annotations, boxes_only=True)
            if annotations is not None:
                _write_instances(tmp / f"instances_{split}.json", split, counts[split], image_size, annotations, seed)
        meta = DatasetMeta(
            name="voc2007_detection", task="dense", class_names=names, height=image_size, width=image_size,
            channels=3, ignore_index=IGNORE_INDEX, sizes=counts,
            source=f"components.data.synthetic (VOC 2007 detection stand-in, fraction={fraction}, seed={seed})",
        )  # fmt: skip
        write_meta(meta, tmp)
    return meta


def _write_instances(path: Path, split: str, count: int, size: int, annotations: list, seed: int) -> None:
    """``instances_<split>.json`` as ``load_voc_detection`` writes it (file names ``<row>.jpg``)."""
    images = [{"id": i, "file_name": f"{i:06d}.jpg", "height": size, "width": size} for i in range(count)]
    description = f"courselab voc2007 detection {split}: synthetic stand-in (seed={seed})"
    atomic_write_text(
        path, json.dumps(instances_json(images, annotations, class_names(VOC_COLOURS), description)) + "\n"
    )
