"""Real PASCAL VOC segmentation from a local copy, written as ``DENSE``.

Expected layout (``root`` is the folder holding ``VOC<year>``, e.g. ``VOCdevkit``, or its parent)::

    VOC<year>/JPEGImages/<id>.jpg
    VOC<year>/SegmentationClass/<id>.png     palette PNG: pixel = class index, 255 = boundary/ignore
    VOC<year>/SegmentationObject/<id>.png    optional; pixel = instance id, 255 = boundary
    VOC<year>/ImageSets/Segmentation/{train,val}.txt

Nothing is downloaded. The official val list becomes the test split; train is split into train/val.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.schema import (
    DENSE,
    DatasetMeta,
    dense_columns,
    dense_row,
    mask_box,
    write_meta,
    write_split,
)
from components.errors import UserError
from components.io import atomic_directory

CLASS_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]  # fmt: skip
IGNORE_INDEX = 255
_ID = re.compile(r"[\w.-]+")


def voc_splits(sets: Path, val_fraction: float, seed: int) -> dict[str, list[str]]:
    """Image ids per split from an ``ImageSets/<task>`` folder: ``train.txt`` split (seeded) into
    train and val by ``val_fraction``, ``val.txt`` (file order) as the test split."""
    train_ids = read_ids(sets / "train.txt")
    order = np.random.default_rng(seed).permutation(len(train_ids))
    num_val = round(len(train_ids) * val_fraction)
    if not 0 < num_val < len(train_ids):
        raise UserError(
            f"{sets / 'train.txt'}: val_fraction {val_fraction} of its {len(train_ids)} ids leaves "
            "an empty split; change val_fraction in params.yaml"
        )
    return {
        "train": [train_ids[i] for i in sorted(order[num_val:])],
        "val": [train_ids[i] for i in sorted(order[:num_val])],
        "test": read_ids(sets / "val.txt"),
    }


def load_voc_segmentation(
    root: Path, out_dir: Path, *, year: str = "2012", image_size: int, val_fraction: float, seed: int
) -> DatasetMeta:
    """Write VOC segmentation to ``out_dir`` as ``{train,val,test}.parquet`` and ``meta.json``.

    ``train.txt`` ids are split (seeded) into train and val by ``val_fraction``; ``val.txt`` ids are
    the test split. Images become ``uint8`` (image_size, image_size, 3), resized bilinearly; masks
    are resized nearest, keeping 255 (boundary) as the ignore index. With ``SegmentationObject``,
    each instance gives a box (pixels, ``[x0, y0, x1, y1)``), a {0,1} mask and the majority class
    under it; without it those lists are empty. Row ids are positions in the split.
    ``out_dir`` is replaced whole on success.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"voc: val_fraction ({val_fraction}) must be in (0, 1); fix it in params.yaml")
    voc = find_voc_dir(Path(root), year)
    sets = voc / "ImageSets" / "Segmentation"
    for required in (voc / "JPEGImages", voc / "SegmentationClass", sets / "train.txt", sets / "val.txt"):
        if not required.exists():
            raise UserError(f"VOC path not found: {required} (extract the full VOC{year} trainval archive)")
    splits = voc_splits(sets, val_fraction, seed)
    objects = voc / "SegmentationObject"
    with atomic_directory(out_dir) as tmp:
        for split, ids in splits.items():
            rows = [
                _load_row(i, voc, image_id, image_size, objects.is_dir()) for i, image_id in enumerate(ids)
            ]
            write_split(dense_columns(rows), DENSE, tmp / f"{split}.parquet")
        meta = DatasetMeta(
            name=f"voc{year}",
            task="dense",
            class_names=CLASS_NAMES,
            height=image_size,
            width=image_size,
            channels=3,
            ignore_index=IGNORE_INDEX,
            source=f"{voc} (seed={seed})",
            sizes={split: len(ids) for split, ids in splits.items()},
        )
        write_meta(meta, tmp)
    return meta


def find_voc_dir(root: Path, year: str) -> Path:
    """``root/VOC<year>`` or ``root/VOCdevkit/VOC<year>``; a UserError naming the expected path otherwise."""
    if not root.is_dir():
        raise UserError(
            f"VOC root not found: {root} (set it in params.yaml to the folder holding VOC{year}/)"
        )
    for candidate in (root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"):
        if candidate.is_dir():
            return candidate
    raise UserError(
        f"VOC folder not found: {root / f'VOC{year}'} (point the VOC root at the VOCdevkit folder)"
    )


def read_ids(path: Path) -> list[str]:
    """The image ids of an ImageSets list, one per line, in file order."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read VOC id list {path}: {err}") from None
    bad = next((line for line in lines if not _ID.fullmatch(line)), None)
    if bad is not None or not lines:
        why = f"bad id {bad!r}" if bad is not None else "no ids"
        raise UserError(f"malformed VOC id list {path}: {why} (expected one image id per line)")
    return lines


def _open(path: Path, modes: tuple[str, ...]) -> Image.Image:
    if not path.is_file():
        raise UserError(f"VOC file not found: {path} (the id is listed in ImageSets but the file is missing)")
    try:
        with Image.open(path) as opened:
            image = opened.copy()  # decodes now, so a broken file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read VOC image {path}: {err}") from None
    if image.mode not in modes:
        raise UserError(f"unexpected VOC image {path}: mode {image.mode}, expected one of {', '.join(modes)}")
    return image


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """An index PNG as ``uint8`` (H, W); must match the JPEG's shape."""
    mask = np.asarray(_open(path, ("P", "L")), dtype=np.uint8)
    if mask.shape != shape:
        raise UserError(
            f"VOC mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is {shape[1]}x{shape[0]}"
        )
    return mask


def _resize_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def _load_row(row_id: int, voc: Path, image_id: str, size: int, with_objects: bool) -> dict:
    image = _open(voc / "JPEGImages" / f"{image_id}.jpg", ("RGB", "L", "CMYK")).convert("RGB")
    shape = (image.height, image.width)
    semantic = _read_mask(voc / "SegmentationClass" / f"{image_id}.png", shape)
    invalid = np.setdiff1d(np.unique(semantic), [*range(len(CLASS_NAMES)), IGNORE_INDEX])
    if invalid.size:
        path = voc / "SegmentationClass" / f"{image_id}.png"
        raise UserError(f"malformed VOC mask {path}: class values {invalid.tolist()} are not in 0..20 or 255")
    boxes, labels, masks = [], [], []
    if with_objects:
        objects = _read_mask(voc / "SegmentationObject" / f"{image_id}.png", shape)
        small = _resize_nearest(objects, size)
        for instance in np.setdiff1d(np.unique(objects), [0, IGNORE_INDEX]):
            under = semantic[objects == instance]
            under = under[(under > 0) & (under != IGNORE_INDEX)]
            mask = small == instance
            if under.size == 0 or not mask.any():  # unlabelled, or too small to survive the resize
                continue
            boxes.append(mask_box(mask))
            labels.append(int(np.bincount(under).argmax()))
            masks.append(mask)
    return dense_row(
        id=row_id,
        image=np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)),
        semantic_mask=_resize_nearest(semantic, size),
        boxes=boxes,
        labels=labels,
        instance_masks=masks,
        captions=[],
    )
