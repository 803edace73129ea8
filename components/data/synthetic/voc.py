"""The PASCAL VOC 2012 segmentation stand-in (``data.voc.synthetic``)."""

from __future__ import annotations

from pathlib import Path

from components.data.schema import DENSE, SPLITS, DatasetMeta, write_meta
from components.data.synthetic.base import (
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
from components.data.synthetic.dense import _scenes, _Style, _write_dense
from components.io import atomic_directory

VOC_TRAIN_IDS = 1_464  # VOC2012 ImageSets/Segmentation/train.txt: split into train/val by val_fraction
VOC_TEST_IDS = 1_449  # VOC2012 ImageSets/Segmentation/val.txt: the test split
VOC_OBJECTS_PER_IMAGE = 3_507 / 1_464  # objects in VOC2012's segmentation train images: ~2.40
VOC_COLOURS = 2  # colours per digit: 20 classes, as VOC's
VOC_AREA_RANGE = (0.01, 0.5)  # an object's mask area / the image's, log-uniform (VOC's objects are mostly large)
VOC_BOUNDARY = 5 / 500  # width of VOC's 255 band (~5 px on ~500 px images) / the image side; at least 1 px
VOC_MAX_BOX_IOU = 0.3  # placement is redrawn until a box overlaps every earlier one at most this

VOC_STYLE = _Style(
    colours=VOC_COLOURS, max_box_iou=VOC_MAX_BOX_IOU, boundary=VOC_BOUNDARY,
    objects=lambda rng: 1 + int(rng.poisson(VOC_OBJECTS_PER_IMAGE - 1)),
    areas=lambda rng, k: _log_uniform(rng, *VOC_AREA_RANGE, size=k),
)  # fmt: skip


def voc_like_counts(name: str, train_ids: int, test_ids: int, fraction: float, val_fraction: float) -> dict[str, int]:
    """Images per split as ``voc_splits`` sizes them: ``train_ids * fraction`` (at least what a
    non-empty train/val split needs) split into train/val, ``test_ids * fraction`` test."""
    pool = _count(train_ids, fraction, least=_least(_splittable(val_fraction)))
    return _train_val(name, pool, val_fraction) | {"test": _count(test_ids, fraction)}


def voc_counts(fraction: float, val_fraction: float) -> dict[str, int]:
    """Images per split: VOC_TRAIN_IDS * fraction split into train/val, VOC_TEST_IDS * fraction test."""
    return voc_like_counts("voc", VOC_TRAIN_IDS, VOC_TEST_IDS, fraction, val_fraction)


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
