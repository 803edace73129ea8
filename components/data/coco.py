"""Real COCO instances (boxes, labels, instance masks) from a local copy, written as ``DENSE``.

Expected layout (``root`` is the COCO folder, e.g. the one holding ``train2017/`` and ``val2017/``)::

    annotations/instances_<train_set>.json   e.g. annotations/instances_train2017.json
    annotations/instances_<test_set>.json    e.g. annotations/instances_val2017.json
    annotations/captions_<train_set>.json    optional: e.g. annotations/captions_train2017.json
    annotations/captions_<test_set>.json     optional: e.g. annotations/captions_val2017.json
    <train_set>/<file_name>                  each image the train json lists, e.g. train2017/000000000009.jpg
    <test_set>/<file_name>

Nothing is downloaded. The train json's images are split (seeded) into train and val by
``val_fraction``; the test json (the official val set) becomes the test split, as for VOC.

Conversions:

- images become ``uint8`` (image_size, image_size, 3), resized bilinearly (greyscale, CMYK, ...
  converted to RGB); every row has the same shape;
- ``bbox`` ``[x, y, w, h]`` (float pixels) becomes ``[x, y, x + w, y + h]`` scaled to the new size and
  clipped to it, which is ``[x0, y0, x1, y1)`` with x1/y1 exclusive (COCO boxes are continuous);
- labels are the position of ``category_id`` in the ``categories`` list plus one, so class names
  are ``["background", *category names]`` (COCO's ids 1..90 with gaps become 1..80);
- instance masks are decoded from the polygon or RLE ``segmentation`` (as ``COCO.annToMask``;
  polygons of fewer than 3 points are ignored) and resized nearest; a tiny object may end with an
  empty mask but keeps its box;
- the semantic mask paints each instance's label, larger instances first so smaller ones stay
  visible; ``iscrowd=1`` regions are ``IGNORE_INDEX`` (255) there, other pixels 0 (background);
- ``iscrowd=1`` annotations are kept as crowd regions (``DENSE_CROWD``: the ``iscrowd`` column holds
  one 0/1 per box): after the objects, each with its label, its instance mask and the tight box of
  that resized mask (a crowd whose mask vanishes at ``image_size`` is dropped). Training leaves
  them out and evaluation ignores detections on them, as ``COCOeval`` does; images without
  annotations are kept with empty lists;
- ``captions`` holds the image's captions from ``captions_<set>.json`` (COCO's caption files:
  ``images``, and ``annotations`` of ``id``, ``image_id``, ``caption``; about 5 per image) in file
  order, as written but with runs of whitespace (COCO's stray newlines, trailing spaces) made one
  space. A missing captions file is not an error (detection and segmentation need none): the
  loader prints one line naming it and that set's captions stay empty, which the captioning
  family refuses in one line naming the dataset and the file. An image its captions file does not
  caption gets ``[]`` (also printed once, with the count).

Beside the Parquet splits, ``instances_{val,test}.json`` hold the val/test annotations in COCO form
as ``scenes`` writes them (:func:`instances_json`): image ids are the Parquet row ids, coordinates
are those of the resized images, ``category_id`` is the ``DENSE`` label, masks are RLEs; the
annotations are the rows' boxes in their order, crowd regions as ``iscrowd=1``.

The instances files are validated (:func:`validate_coco`), the captions files present too
(:func:`validate_captions`), and every selected image is checked to exist before anything is
written; a bad annotation is a one-line UserError naming the file, the annotation id and the
offending value. Row ids are positions in the split.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from components.data.schema import DENSE_CROWD, DatasetMeta, dense_columns, dense_row, mask_box, write_meta, write_split
from components.errors import UserError
from components.io import atomic_directory, atomic_write_text

IGNORE_INDEX = 255  # semantic-mask value of crowd regions
BOX_TOLERANCE = 1.0  # pixels a box may stick out of its image (rounding in the source) before it is an error


def load_coco_instances(
    root: Path,
    out_dir: Path,
    *,
    train_set: str = "train2017",
    test_set: str = "val2017",
    image_size: int,
    val_fraction: float,
    seed: int,
    max_train_images: int | None = None,
    max_test_images: int | None = None,
    drop_empty_boxes: bool = False,
) -> DatasetMeta:
    """Write COCO instances under ``root`` to ``out_dir`` as ``{train,val,test}.parquet`` and ``meta.json``.

    ``max_train_images`` / ``max_test_images`` keep a seeded random subset of each json's images
    (None = all; the train subset is drawn before the train/val split). ``drop_empty_boxes``
    drops annotations whose box has width or height <= 0 instead of rejecting the file
    (``instances_train2017.json`` has two: ids 918 and 2206849). ``out_dir`` is replaced whole on
    success and left untouched on error.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"coco: val_fraction ({val_fraction}) must be in (0, 1); fix it in params.yaml")
    for name, cap in (("max_train_images", max_train_images), ("max_test_images", max_test_images)):
        if cap is not None and cap < 1:
            raise UserError(f"coco: {name} ({cap}) must be a positive integer or null; fix it in params.yaml")
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"COCO root not found: {root} (set it in params.yaml to the folder holding annotations/)")
    train = _read_set(root, train_set, drop_empty_boxes)
    test = _read_set(root, test_set, drop_empty_boxes)
    captions = {name: _read_captions(root, name) for name in dict.fromkeys((train_set, test_set))}
    missing = [str(path) for path, caps in captions.values() if caps is None]
    if missing:
        print(f"coco: no captions file {' or '.join(missing)}: its images' captions stay empty (detection and "
              "segmentation need none; captioning refuses the dataset)", flush=True)
    if test.categories != train.categories:
        raise UserError(
            f"{test.source}: categories differ from {train.source} (both files must list the same "
            "categories in the same order)"
        )
    class_names = ["background", *(name for _, name in train.categories)]
    if len(class_names) >= IGNORE_INDEX:
        raise UserError(
            f"{train.source}: {len(class_names) - 1} categories; at most {IGNORE_INDEX - 2} fit a uint8 mask"
        )

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train.images))[:max_train_images]
    num_val = round(len(order) * val_fraction)
    if not 0 < num_val < len(order):
        raise UserError(
            f"{train.source}: val_fraction {val_fraction} of its {len(order)} images leaves an empty split; "
            "change val_fraction (or max_train_images) in params.yaml"
        )
    test_order = rng.permutation(len(test.images))[:max_test_images]
    splits = {
        "train": (train, sorted(order[num_val:].tolist())),
        "val": (train, sorted(order[:num_val].tolist())),
        "test": (test, sorted(test_order.tolist())),
    }
    image_captions = {}  # split -> its images' captions, in row order
    for split, (coco, positions) in splits.items():
        path, caps = captions[train_set if coco is train else test_set]
        image_captions[split] = [[] if caps is None else caps.get(coco.images[p]["id"], []) for p in positions]
        uncaptioned = sum(not c for c in image_captions[split])
        if caps is not None and uncaptioned:
            print(f"coco: {uncaptioned} of the {len(positions)} {split} images have no caption in {path}",
                  flush=True)
    for coco, positions in splits.values():
        for position in positions:
            path = coco.folder / coco.images[position]["file_name"]
            if not path.is_file():
                raise UserError(f"COCO image not found: {path} (listed in {coco.source})")

    with atomic_directory(out_dir) as tmp:
        for split, (coco, positions) in splits.items():
            loaded = [_load_row(i, coco, coco.images[p], image_size, image_captions[split][i])
                      for i, p in enumerate(positions)]
            write_split(dense_columns([row for row, _ in loaded], DENSE_CROWD), DENSE_CROWD, tmp / f"{split}.parquet")
            if split != "train":
                images = [
                    {"id": i, "file_name": coco.images[p]["file_name"], "height": image_size, "width": image_size}
                    for i, p in enumerate(positions)
                ]
                annotations = [ann for _, anns in loaded for ann in anns]
                description = f"courselab coco {split} from {coco.source} (seed={seed})"
                instances = instances_json(images, annotations, class_names, description)
                atomic_write_text(tmp / f"instances_{split}.json", json.dumps(instances) + "\n")
        meta = DatasetMeta(
            name="coco",
            task="dense",
            class_names=class_names,
            height=image_size,
            width=image_size,
            channels=3,
            ignore_index=IGNORE_INDEX,
            source=f"{root} ({train_set} + {test_set}, seed={seed})",
            sizes={split: len(positions) for split, (_, positions) in splits.items()},
        )
        write_meta(meta, tmp)
    return meta


def validate_coco(data: object, source: str, *, allow_empty_boxes: bool = False) -> None:
    """Check a COCO instances dict; the first problem is a one-line UserError starting with ``source``.

    Checks: ``images``, ``annotations`` and ``categories`` are lists; image, category and
    annotation ids are unique integers; images have positive integer ``width``/``height``; each
    annotation's ``image_id`` and ``category_id`` exist; its ``bbox`` is 4 finite numbers with
    ``w, h > 0`` (unless ``allow_empty_boxes``) lying inside its image up to ``BOX_TOLERANCE``
    pixels; ``iscrowd`` (if present) is 0 or 1; ``segmentation`` (if present) is a list of
    even-length polygons or an RLE dict whose ``size`` is the image's ``[height, width]``.
    """
    _check_lists(data, source, "instances", ("images", "annotations", "categories"))

    categories: dict[int, str] = {}
    for category in data["categories"]:
        cid = category.get("id") if isinstance(category, dict) else None
        if not _is_int(cid) or not isinstance(category.get("name"), str):
            raise UserError(f"{source}: malformed category {_short(category)} (needs an integer id and a name)")
        if cid in categories:
            raise UserError(f"{source}: category id {cid} appears twice")
        if category["name"] in categories.values():
            raise UserError(f"{source}: category name {category['name']!r} appears twice")
        categories[cid] = category["name"]
    if not categories:
        raise UserError(f"{source}: no categories")

    images: dict[int, tuple[int, int]] = {}  # id -> (height, width)
    for iid, image in _unique_ids(data["images"], source, "image"):
        for key in ("width", "height"):
            if not _is_int(image.get(key)) or image[key] <= 0:
                raise UserError(f"{source}: image {iid}: {key} {image.get(key)!r} is not a positive integer")
        images[iid] = (image["height"], image["width"])

    for aid, ann in _unique_ids(data["annotations"], source, "annotation"):
        where = f"{source}: annotation {aid}"
        if not _is_int(ann.get("image_id")) or ann["image_id"] not in images:
            raise UserError(f"{where}: image_id {ann.get('image_id')!r} is not in images")
        if not _is_int(ann.get("category_id")) or ann["category_id"] not in categories:
            raise UserError(
                f"{where}: category_id {ann.get('category_id')!r} is not in categories ({_format_ids(categories)})"
            )
        height, width = images[ann["image_id"]]
        _check_box(ann.get("bbox"), height, width, where, allow_empty_boxes)
        if ann.get("iscrowd", 0) not in (0, 1):
            raise UserError(f"{where}: iscrowd {ann['iscrowd']!r} must be 0 or 1")
        if "segmentation" in ann:
            _check_segmentation(ann["segmentation"], height, width, where)


def validate_captions(data: object, source: str) -> dict[int, list[str]]:
    """Check a COCO captions dict and return ``{image id: its captions}`` (every listed image, file
    order, whitespace runs made one space); the first problem is a one-line UserError starting with
    ``source``.

    Checks: ``images`` and ``annotations`` are lists; image and annotation ids are unique integers;
    each annotation's ``image_id`` is in ``images`` and its ``caption`` a string with a word in it.
    """
    _check_lists(data, source, "captions", ("images", "annotations"))
    captions: dict[int, list[str]] = {iid: [] for iid, _ in _unique_ids(data["images"], source, "image")}
    for aid, ann in _unique_ids(data["annotations"], source, "annotation"):
        if not _is_int(ann.get("image_id")) or ann["image_id"] not in captions:
            raise UserError(f"{source}: annotation {aid}: image_id {ann.get('image_id')!r} is not in images")
        caption = ann.get("caption")
        if not isinstance(caption, str) or not caption.split():
            raise UserError(f"{source}: annotation {aid}: caption {_short(caption)} is not a non-empty string")
        captions[ann["image_id"]].append(" ".join(caption.split()))
    return captions


def _read_captions(root: Path, name: str) -> tuple[Path, dict[int, list[str]] | None]:
    """``annotations/captions_<name>.json`` and its captions by image id; None when the file is missing."""
    path = root / "annotations" / f"captions_{name}.json"
    if not path.is_file():
        return path, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read COCO captions {path}: {err}") from None
    return path, validate_captions(data, str(path))


@dataclass
class _CocoSet:
    source: Path  # the json file
    folder: Path  # where its images are
    categories: list[tuple[int, str]]  # (id, name) in file order
    labels: dict[int, int]  # category id -> 1..K
    images: list[dict]  # in file order
    annotations: dict[int, list[dict]]  # image id -> its annotations, in file order


def _read_set(root: Path, name: str, drop_empty_boxes: bool) -> _CocoSet:
    path = root / "annotations" / f"instances_{name}.json"
    if not path.is_file():
        raise UserError(f"COCO annotations not found: {path} (extract the annotations archive under {root})")
    folder = root / name
    if not folder.is_dir():
        raise UserError(f"COCO image folder not found: {folder} (extract the {name} images archive under {root})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read COCO annotations {path}: {err}") from None
    validate_coco(data, str(path), allow_empty_boxes=drop_empty_boxes)
    for image in data["images"]:
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise UserError(f"{path}: image {image['id']}: no file_name")
    categories = [(c["id"], c["name"]) for c in data["categories"]]
    annotations: dict[int, list[dict]] = {image["id"]: [] for image in data["images"]}
    for ann in data["annotations"]:
        _, _, w, h = ann["bbox"]
        if w <= 0 or h <= 0:  # only reached with drop_empty_boxes
            continue
        if not ann.get("segmentation"):
            raise UserError(f"{path}: annotation {ann['id']}: no segmentation (an instances file has one per object)")
        annotations[ann["image_id"]].append(ann)
    return _CocoSet(
        source=path,
        folder=folder,
        categories=categories,
        labels={cid: i for i, (cid, _) in enumerate(categories, start=1)},
        images=data["images"],
        annotations=annotations,
    )


def _check_lists(data: object, source: str, kind: str, keys: tuple[str, ...]) -> None:
    """``data`` is a JSON object holding a list under each of ``keys`` (a COCO ``kind`` file)."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: not a COCO {kind} file (expected a JSON object, got {type(data).__name__})")
    for key in keys:
        if not isinstance(data.get(key), list):
            raise UserError(f"{source}: not a COCO {kind} file (no {key!r} list)")


def _unique_ids(entries: list, source: str, what: str) -> Iterator[tuple[int, dict]]:
    """``(id, entry)`` of each entry of an ``images`` or ``annotations`` list, checking that every
    entry is an object with an integer ``id`` seen once (``what``: "image" or "annotation")."""
    seen: set[int] = set()
    for entry in entries:
        eid = entry.get("id") if isinstance(entry, dict) else None
        if not _is_int(eid):
            raise UserError(f"{source}: malformed {what} {_short(entry)} (needs an integer id)")
        if eid in seen:
            raise UserError(f"{source}: {what} id {eid} appears twice")
        seen.add(eid)
        yield eid, entry


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_ids(categories: dict[int, str]) -> str:
    ids = list(categories)
    if len(ids) <= 10:
        return ", ".join(map(str, ids))
    return ", ".join(map(str, ids[:5])) + ", ..., " + ", ".join(map(str, ids[-3:])) + f"; {len(ids)} ids"


def _check_box(bbox: object, height: int, width: int, where: str, allow_empty: bool) -> None:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
        raise UserError(f"{where}: bbox {_short(bbox)} is not [x, y, w, h] of 4 finite numbers")
    x, y, w, h = bbox
    if (w <= 0 or h <= 0) and not allow_empty:
        raise UserError(f"{where}: bbox {bbox} has width or height <= 0")
    tol = BOX_TOLERANCE
    sticks_out = x < -tol or y < -tol or x + w > width + tol or y + h > height + tol
    if sticks_out or x >= width or y >= height or x + w <= 0 < w or y + h <= 0 < h:  # the last: nothing left
        raise UserError(f"{where}: bbox {bbox} (x1 {x + w:g}, y1 {y + h:g}) lies outside its {width}x{height} image")


def _check_segmentation(segmentation: object, height: int, width: int, where: str) -> None:
    if isinstance(segmentation, list):
        for k, polygon in enumerate(segmentation):
            if not isinstance(polygon, list) or len(polygon) % 2 or not all(map(_is_number, polygon)):
                raise UserError(
                    f"{where}: segmentation polygon {k} {_short(polygon)} is not an even-length list of numbers"
                )
    elif isinstance(segmentation, dict):
        if segmentation.get("size") != [height, width]:
            raise UserError(
                f"{where}: segmentation RLE size {segmentation.get('size')!r} is not its image's [{height}, {width}]"
            )
        counts = segmentation.get("counts")
        if not isinstance(counts, str) and not (isinstance(counts, list) and all(map(_is_int, counts))):
            raise UserError(f"{where}: segmentation RLE counts must be a string or a list of integers")
    else:
        raise UserError(f"{where}: segmentation {_short(segmentation)} is neither polygons nor an RLE")


def _decode(ann: dict, height: int, width: int, source: Path) -> np.ndarray:
    """``annToMask``: the annotation's ``uint8`` {0,1} (height, width) mask."""
    segmentation = ann["segmentation"]
    try:
        if isinstance(segmentation, list):
            polygons = [p for p in segmentation if len(p) >= 6]  # fewer than 3 points has no area
            if not polygons:
                return np.zeros((height, width), np.uint8)
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        mask = mask_utils.decode(rle)
    except (ValueError, TypeError) as err:
        raise UserError(f"{source}: annotation {ann['id']}: cannot decode segmentation: {err}") from None
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _read_image(path: Path, height: int, width: int, source: Path) -> Image.Image:
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")  # decodes now, so a broken file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read COCO image {path}: {err}") from None
    if (image.height, image.width) != (height, width):
        raise UserError(f"COCO image {path} is {image.width}x{image.height} but {source} says {width}x{height}")
    return image


def _resize_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def instances_json(images: list[dict], annotations: list[dict], class_names: list[str], description: str) -> dict:
    """A COCO instances dict like ``scenes.coco_instances``: ``annotations`` numbered from 1 in order,
    categories ``1..K`` named by ``class_names[1:]`` (so ``category_id`` is the ``DENSE`` label)."""
    return {
        "info": {"description": description},
        "images": images,
        "annotations": [{"id": k, **ann} for k, ann in enumerate(annotations, start=1)],
        "categories": [{"id": i, "name": name} for i, name in enumerate(class_names) if i],
    }


def coco_annotation(image_id: int, box: list[float], label: int, mask: np.ndarray | None, iscrowd: int) -> dict:
    """One annotation (no id) in the stored coordinates: ``[x0, y0, x1, y1)`` as ``[x, y, w, h]`` (rounded to
    the float32 Parquet holds), ``area`` and an RLE from ``mask``, or the box area without one."""
    x0, y0, x1, y1 = (float(np.float32(v)) for v in box)
    ann = {"image_id": int(image_id), "category_id": int(label), "bbox": [x0, y0, x1 - x0, y1 - y0]}
    if mask is None:
        return ann | {"area": (x1 - x0) * (y1 - y0), "iscrowd": int(iscrowd)}
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    segmentation = {"size": [int(n) for n in rle["size"]], "counts": rle["counts"].decode("ascii")}
    return ann | {"area": int(mask.sum()), "iscrowd": int(iscrowd), "segmentation": segmentation}


def _load_row(row_id: int, coco: _CocoSet, info: dict, size: int, captions: list[str]) -> tuple[dict, list[dict]]:
    """The ``DENSE_CROWD`` row of one image (with ``captions``) and its COCO annotations in the stored
    coordinates: the objects, then the crowd regions (``iscrowd`` 1), in file order each."""
    height, width = info["height"], info["width"]
    image = _read_image(coco.folder / info["file_name"], height, width, coco.source)
    sx, sy = size / width, size / height
    semantic = np.zeros((size, size), np.uint8)
    boxes, labels, masks = [], [], []
    crowds: list[tuple[list[float], int, np.ndarray]] = []  # (box, label, mask)
    for ann in coco.annotations[info["id"]]:
        mask = _resize_nearest(_decode(ann, height, width, coco.source), size)
        if ann.get("iscrowd", 0):
            semantic[mask > 0] = IGNORE_INDEX
            if mask.any():
                crowds.append((mask_box(mask), coco.labels[ann["category_id"]], mask))
            continue
        x, y, w, h = ann["bbox"]
        box = [x * sx, y * sy, (x + w) * sx, (y + h) * sy]
        boxes.append([min(max(v, 0.0), float(size)) for v in box])
        labels.append(coco.labels[ann["category_id"]])
        masks.append(mask)
    for k in sorted(range(len(masks)), key=lambda k: -int(masks[k].sum())):  # stable: ties keep file order
        semantic[masks[k] > 0] = labels[k]
    row = dense_row(
        id=row_id,
        image=np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)),
        semantic_mask=semantic,
        boxes=boxes + [box for box, _, _ in crowds],
        labels=labels + [label for _, label, _ in crowds],
        instance_masks=masks + [mask for _, _, mask in crowds],
        captions=captions,
        iscrowd=[0] * len(boxes) + [1] * len(crowds),
    )
    gt = [coco_annotation(row_id, *obj, 0) for obj in zip(boxes, labels, masks, strict=True)]
    return row, gt + [coco_annotation(row_id, *crowd, 1) for crowd in crowds]
