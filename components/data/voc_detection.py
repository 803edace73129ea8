"""Real PASCAL VOC detection (boxes and labels) from a local copy, written as ``DENSE``.

Expected layout (``root`` is the folder holding ``VOC<year>``, e.g. ``VOCdevkit``, or its parent)::

    VOC<year>/JPEGImages/<id>.jpg
    VOC<year>/Annotations/<id>.xml          one <object> per box: <name>, <difficult>, <bndbox>
    VOC<year>/ImageSets/Main/{train,val}.txt

Nothing is downloaded. The official val list becomes the test split; train is split (seeded) into
train/val, exactly as for VOC segmentation (:mod:`components.data.voc`).

Conversions:

- images become ``uint8`` (image_size, image_size, 3), resized bilinearly;
- ``<bndbox>`` is 1-based and inclusive (``xmin=1, xmax=width`` spans the whole image); it becomes
  the 0-based ``[xmin - 1, ymin - 1, xmax, ymax)`` of the ``DENSE`` schema, scaled to the new size;
- labels are indices in :data:`components.data.voc.CLASS_NAMES` (0 = background);
- ``difficult=1`` objects are dropped (VOC's evaluator ignores them and ``DENSE`` cannot mark
  them); ``truncated``/``occluded`` are ignored; an image left without objects keeps empty lists;
- VOC detection has no masks: ``instance_masks`` is an empty list (as in VOC segmentation without
  ``SegmentationObject``) and the semantic mask is all ``IGNORE_INDEX`` (255, "unlabelled", so a
  segmentation loss or metric on it counts nothing); captions are empty.

Beside the Parquet splits, ``instances_{val,test}.json`` hold the val/test boxes in COCO form
(:func:`components.data.coco.instances_json`, no segmentation): image ids are the Parquet row ids,
coordinates those of the resized images, ``category_id`` the label; difficult objects are back as
``iscrowd=1`` so ``COCOeval`` ignores detections on them, as VOC's evaluator does.

Every listed annotation is parsed and checked before anything is written; an unknown class name,
a box outside its image or malformed XML is a UserError naming the file. Row ids are positions in
the split.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.coco import coco_annotation, instances_json
from components.data.schema import DENSE, DatasetMeta, dense_columns, dense_row, write_meta, write_split
from components.data.voc import CLASS_NAMES, IGNORE_INDEX, find_voc_dir, voc_splits
from components.errors import UserError
from components.io import atomic_directory, atomic_write_text

BOX_TOLERANCE = 1.0  # pixels a box may stick out of its image before it is an error (it is clipped)


@dataclass
class VocObject:
    label: int  # index in CLASS_NAMES
    box: list[float]  # [x0, y0, x1, y1) in the original image's pixels, 0-based
    difficult: bool


@dataclass
class VocAnnotation:
    width: int
    height: int
    objects: list[VocObject]


def load_voc_detection(
    root: Path, out_dir: Path, *, year: str = "2007", image_size: int, val_fraction: float, seed: int
) -> DatasetMeta:
    """Write VOC detection to ``out_dir`` as ``{train,val,test}.parquet`` and ``meta.json``.

    ``ImageSets/Main/train.txt`` ids are split (seeded) into train and val by ``val_fraction``;
    ``val.txt`` ids are the test split, in file order. ``out_dir`` is replaced whole on success
    and left untouched on error.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"voc_detection: val_fraction ({val_fraction}) must be in (0, 1); fix it in params.yaml")
    voc = find_voc_dir(Path(root), year)
    sets = voc / "ImageSets" / "Main"
    for required in (voc / "JPEGImages", voc / "Annotations", sets / "train.txt", sets / "val.txt"):
        if not required.exists():
            raise UserError(f"VOC path not found: {required} (extract the full VOC{year} trainval archive)")
    splits = voc_splits(sets, val_fraction, seed)
    annotations = {}
    for ids in splits.values():
        for image_id in ids:
            annotations[image_id] = read_voc_annotation(voc / "Annotations" / f"{image_id}.xml")
            image = voc / "JPEGImages" / f"{image_id}.jpg"
            if not image.is_file():
                raise UserError(f"VOC file not found: {image} (the id is listed in ImageSets but the file is missing)")
    with atomic_directory(out_dir) as tmp:
        for split, ids in splits.items():
            rows = [_load_row(i, voc, image_id, annotations[image_id], image_size) for i, image_id in enumerate(ids)]
            write_split(dense_columns(rows), DENSE, tmp / f"{split}.parquet")
            if split != "train":
                images = [
                    {"id": i, "file_name": f"{image_id}.jpg", "height": image_size, "width": image_size}
                    for i, image_id in enumerate(ids)
                ]
                gt = [
                    coco_annotation(
                        i, _scale(obj.box, annotations[image_id], image_size), obj.label, None, obj.difficult
                    )
                    for i, image_id in enumerate(ids)
                    for obj in annotations[image_id].objects
                ]
                description = f"courselab voc{year} detection {split} from {voc} (seed={seed})"
                instances = instances_json(images, gt, CLASS_NAMES, description)
                atomic_write_text(tmp / f"instances_{split}.json", json.dumps(instances) + "\n")
        meta = DatasetMeta(
            name=f"voc{year}_detection",
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


def read_voc_annotation(path: Path) -> VocAnnotation:
    """Parse one ``Annotations/<id>.xml``: image size and every object (difficult ones included).

    Boxes are converted to 0-based ``[x0, y0, x1, y1)`` and clipped to the image; a missing file,
    malformed XML, an unknown class name or a box outside the image is a UserError naming ``path``.
    """
    if not path.is_file():
        raise UserError(f"VOC file not found: {path} (the id is listed in ImageSets but the file is missing)")
    try:
        tree = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise UserError(f"malformed VOC annotation {path}: {err}") from None
    if tree.tag != "annotation":
        raise UserError(f"malformed VOC annotation {path}: root element <{tree.tag}>, expected <annotation>")
    width = _number(tree, "size/width", path, int)
    height = _number(tree, "size/height", path, int)
    if width <= 0 or height <= 0:
        raise UserError(f"malformed VOC annotation {path}: size {width}x{height} is not positive")
    objects = []
    for k, element in enumerate(tree.iter("object")):
        where = f"{path}: object {k}"
        name = (element.findtext("name") or "").strip()
        if name not in CLASS_NAMES[1:]:
            raise UserError(f"{where}: class name {name!r} is not a VOC class ({', '.join(CLASS_NAMES[1:])})")
        xmin, ymin, xmax, ymax = (_number(element, f"bndbox/{key}", path, float) for key in _BOX_KEYS)
        box = [xmin - 1, ymin - 1, xmax, ymax]  # 1-based inclusive -> 0-based, end exclusive
        tol = BOX_TOLERANCE
        if not (-tol <= box[0] < box[2] <= width + tol and -tol <= box[1] < box[3] <= height + tol):
            raise UserError(
                f"{where}: bndbox (xmin {xmin:g}, ymin {ymin:g}, xmax {xmax:g}, ymax {ymax:g}) "
                f"is empty or lies outside its {width}x{height} image"
            )
        box = [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height), min(box[2], width), min(box[3], height)]
        difficult = (element.findtext("difficult") or "0").strip()
        if difficult not in ("0", "1"):
            raise UserError(f"{where}: difficult {difficult!r} must be 0 or 1")
        objects.append(VocObject(label=CLASS_NAMES.index(name), box=box, difficult=difficult == "1"))
    return VocAnnotation(width=width, height=height, objects=objects)


_BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")


def _number(element: ET.Element, key: str, path: Path, kind: type) -> float:
    text = element.findtext(key)
    try:
        value = float(text)  # VOC2012 has a few decimal coordinates
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"malformed VOC annotation {path}: <{key}> is {text!r}, expected a number")
    if kind is int and value != int(value):
        raise UserError(f"malformed VOC annotation {path}: <{key}> is {text!r}, expected an integer")
    return kind(value)


def _read_image(path: Path, annotation: VocAnnotation, xml: Path) -> Image.Image:
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")  # decodes now, so a broken file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read VOC image {path}: {err}") from None
    if (image.width, image.height) != (annotation.width, annotation.height):
        raise UserError(
            f"VOC image {path} is {image.width}x{image.height} but {xml} says {annotation.width}x{annotation.height}"
        )
    return image


def _scale(box: list[float], annotation: VocAnnotation, size: int) -> list[float]:
    sx, sy = size / annotation.width, size / annotation.height
    return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]


def _load_row(row_id: int, voc: Path, image_id: str, annotation: VocAnnotation, size: int) -> dict:
    xml = voc / "Annotations" / f"{image_id}.xml"
    image = _read_image(voc / "JPEGImages" / f"{image_id}.jpg", annotation, xml)
    kept = [obj for obj in annotation.objects if not obj.difficult]
    return dense_row(
        id=row_id,
        image=np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)),
        semantic_mask=np.full((size, size), IGNORE_INDEX, np.uint8),
        boxes=[_scale(obj.box, annotation, size) for obj in kept],
        labels=[obj.label for obj in kept],
        instance_masks=[],
        captions=[],
    )
