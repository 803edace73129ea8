"""The embedded dense dataset: multi-digit scenes for detection, segmentation and captioning.

Each scene is a ``canvas_size`` square grey canvas holding a few real handwritten digits (from
``digits.py``), each resized and placed so that no two tight boxes overlap by more than
``max_box_iou``. Every scene carries boxes, labels (digit + 1; 0 is background), instance masks,
a semantic mask and English captions, so one dataset serves every dense family. Scenes of a
split are drawn only from the digits of the same split, so val/test never see a train digit.

Captions are lowercase, space-separated word tokens (punctuation is its own token). Their
vocabulary: the digits ``0``..``9``, ``a an and at the top middle bottom left center right small
large of digit digits from to above single in image , :`` and the number words ``one``..``ten``
(``empty nothing zero`` only for a scene whose every digit was dropped, which the defaults never give).
A digit is "large" when its drawn size is at least the midpoint of [min_digit_size, max_digit_size].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from components.data.digits import CLASS_NAMES as DIGIT_NAMES
from components.data.digits import load_digit_images, resize_float, split_digit_ids, to_uint8
from components.data.schema import (
    DENSE,
    SPLITS,
    DatasetMeta,
    dense_columns,
    dense_row,
    mask_box,
    write_meta,
    write_split,
)
from components.errors import UserError
from components.io import atomic_directory, atomic_write_text

CLASS_NAMES = ["background", *DIGIT_NAMES]
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class Scene:
    """One scene; K digits, canvas of H = W = canvas_size pixels."""

    image: np.ndarray  # float32 (H, W), intensity in [0, 1]
    semantic_mask: np.ndarray  # uint8 (H, W): 0 background, 1..10 = digit + 1
    boxes: np.ndarray  # int64 (K, 4): tight [x0, y0, x1, y1) of each instance mask, pixels
    labels: np.ndarray  # int64 (K,): digit + 1
    instance_masks: np.ndarray  # bool (K, H, W)
    sizes: np.ndarray  # int64 (K,): side length each digit was drawn at, pixels
    digit_ids: np.ndarray  # int64 (K,): indices into load_digit_images()
    captions: list[str]


@dataclass(frozen=True)
class _Options:
    canvas_size: int
    min_digits: int
    max_digits: int
    min_digit_size: int
    max_digit_size: int
    max_box_iou: float
    mask_threshold: float
    captions_per_scene: int
    placement_tries: int


def box_iou(a, b) -> float:
    """IoU of two ``[x0, y0, x1, y1)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def generate_scenes(
    *,
    seed: int,
    num_train: int,
    num_val: int,
    num_test: int,
    canvas_size: int,
    min_digits: int,
    max_digits: int,
    min_digit_size: int,
    max_digit_size: int,
    max_box_iou: float,
    mask_threshold: float,
    captions_per_scene: int,
    val_fraction: float,
    test_fraction: float,
    placement_tries: int,
) -> dict[str, list[Scene]]:
    """Draw the scenes of every split in memory (``build_scenes`` documents the arguments).

    Deterministic: each split has its own generator spawned from ``seed``.
    """
    opts = _Options(
        canvas_size, min_digits, max_digits, min_digit_size, max_digit_size,
        max_box_iou, mask_threshold, captions_per_scene, placement_tries,
    )  # fmt: skip
    _check(opts)
    images, labels = load_digit_images()
    split_ids = split_digit_ids(seed, val_fraction, test_fraction)
    counts = {"train": num_train, "val": num_val, "test": num_test}
    seeds = np.random.SeedSequence(seed).spawn(len(SPLITS))
    rngs = {split: np.random.default_rng(s) for split, s in zip(SPLITS, seeds, strict=True)}
    return {
        split: [
            _draw_scene(rngs[split], images, labels, split_ids[split], opts) for _ in range(counts[split])
        ]
        for split in SPLITS
    }


def build_scenes(
    out_dir: Path,
    *,
    seed: int,
    num_train: int,
    num_val: int,
    num_test: int,
    canvas_size: int = 64,
    min_digits: int = 1,
    max_digits: int = 4,
    min_digit_size: int = 14,
    max_digit_size: int = 28,
    max_box_iou: float = 0.3,
    mask_threshold: float = 0.3,
    captions_per_scene: int = 2,
    val_fraction: float,
    test_fraction: float,
    placement_tries: int = 100,
) -> DatasetMeta:
    """Write ``{train,val,test}.parquet`` (``DENSE``), ``meta.json`` and ``instances_{val,test}.json``.

    Each scene: ``uint8`` (canvas_size, canvas_size, 1) image; k ~ U{min_digits..max_digits}
    digits, each resized bilinearly to s x s pixels, s ~ U{min_digit_size..max_digit_size}, and
    placed fully inside the canvas at a position redrawn (at most ``placement_tries`` times, else the
    digit is dropped) until its tight box has IoU <= ``max_box_iou`` with every earlier box. The
    canvas is the pixelwise max of the digits; a digit's instance mask is its pixels above
    ``mask_threshold`` (fraction of full intensity); where masks overlap, the semantic mask takes
    the brighter digit. ``val_fraction``/``test_fraction`` split the source digits (see
    ``digits.split_digit_ids``). The COCO files hold the val/test annotations with RLE masks; image
    ids equal the Parquet row ids. ``out_dir`` is replaced whole on success.
    """
    scenes = generate_scenes(
        seed=seed, num_train=num_train, num_val=num_val, num_test=num_test, canvas_size=canvas_size,
        min_digits=min_digits, max_digits=max_digits, min_digit_size=min_digit_size,
        max_digit_size=max_digit_size, max_box_iou=max_box_iou, mask_threshold=mask_threshold,
        captions_per_scene=captions_per_scene, val_fraction=val_fraction, test_fraction=test_fraction,
        placement_tries=placement_tries,
    )  # fmt: skip
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            rows = [_to_row(i, scene) for i, scene in enumerate(scenes[split])]
            write_split(dense_columns(rows), DENSE, tmp / f"{split}.parquet")
        for split in ("val", "test"):
            coco = coco_instances(scenes[split], description=f"courselab scenes {split} (seed={seed})")
            atomic_write_text(tmp / f"instances_{split}.json", json.dumps(coco) + "\n")
        meta = DatasetMeta(
            name="scenes",
            task="dense",
            class_names=CLASS_NAMES,
            height=canvas_size,
            width=canvas_size,
            channels=1,
            ignore_index=None,
            source=f"components.data.scenes (digits, seed={seed})",
            sizes={split: len(scenes[split]) for split in SPLITS},
        )
        write_meta(meta, tmp)
    return meta


def _check(o: _Options) -> None:
    problems = [
        (o.min_digits >= 1, f"min_digits ({o.min_digits}) must be >= 1"),
        (o.max_digits >= o.min_digits, f"max_digits ({o.max_digits}) must be >= min_digits ({o.min_digits})"),
        (o.min_digit_size >= 1, f"min_digit_size ({o.min_digit_size}) must be >= 1"),
        (
            o.min_digit_size <= o.max_digit_size <= o.canvas_size,
            f"need min_digit_size ({o.min_digit_size}) <= max_digit_size ({o.max_digit_size}) "
            f"<= canvas_size ({o.canvas_size})",
        ),
        (0 <= o.max_box_iou <= 1, f"max_box_iou ({o.max_box_iou}) must be in [0, 1]"),
        (0 <= o.mask_threshold < 1, f"mask_threshold ({o.mask_threshold}) must be in [0, 1)"),
        (
            2 <= o.captions_per_scene <= len(_CAPTIONS),
            f"captions_per_scene ({o.captions_per_scene}) must be in 2..{len(_CAPTIONS)}",
        ),
        (o.placement_tries >= 1, f"placement_tries ({o.placement_tries}) must be >= 1"),
    ]
    for ok, message in problems:
        if not ok:
            raise UserError(f"scenes: {message}; fix it in params.yaml")


def _draw_scene(
    rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, pool: np.ndarray, o: _Options
) -> Scene:
    """One scene from the digits ``images[pool]`` (see ``build_scenes`` for the rules)."""
    c = o.canvas_size
    canvas = np.zeros((c, c), np.float32)
    owner = np.full((c, c), -1.0, np.float32)  # intensity of the digit the semantic mask shows
    semantic = np.zeros((c, c), np.uint8)
    boxes, classes, masks, sizes, ids = [], [], [], [], []
    for _ in range(rng.integers(o.min_digits, o.max_digits + 1)):
        digit_id = int(pool[rng.integers(len(pool))])
        size = int(rng.integers(o.min_digit_size, o.max_digit_size + 1))
        patch = resize_float(images[digit_id], size)
        patch_mask = patch > o.mask_threshold
        if not patch_mask.any():
            continue
        bx0, by0, bx1, by1 = (int(v) for v in mask_box(patch_mask))
        for _ in range(o.placement_tries):
            x, y = (int(v) for v in rng.integers(0, c - size + 1, size=2))
            box = (x + bx0, y + by0, x + bx1, y + by1)
            if all(box_iou(box, other) <= o.max_box_iou for other in boxes):
                break
        else:
            continue  # no position fits: drop this digit
        region = (slice(y, y + size), slice(x, x + size))
        np.maximum(canvas[region], patch, out=canvas[region])
        wins = patch_mask & (patch > owner[region])
        owner[region][wins] = patch[wins]
        semantic[region][wins] = labels[digit_id] + 1
        mask = np.zeros((c, c), bool)
        mask[region] = patch_mask
        boxes.append(box)
        classes.append(int(labels[digit_id]) + 1)
        masks.append(mask)
        sizes.append(size)
        ids.append(digit_id)
    boxes_arr = np.array(boxes, np.int64).reshape(-1, 4)
    labels_arr = np.array(classes, np.int64)
    sizes_arr = np.array(sizes, np.int64)
    large = sizes_arr * 2 >= o.min_digit_size + o.max_digit_size
    return Scene(
        image=canvas,
        semantic_mask=semantic,
        boxes=boxes_arr,
        labels=labels_arr,
        instance_masks=np.array(masks, bool).reshape(-1, c, c),
        sizes=sizes_arr,
        digit_ids=np.array(ids, np.int64),
        captions=[
            caption(boxes_arr, labels_arr - 1, large, c) for caption in _CAPTIONS[: o.captions_per_scene]
        ],
    )


def _to_row(row_id: int, scene: Scene) -> dict:
    return dense_row(
        id=row_id,
        image=to_uint8(scene.image)[..., None],
        semantic_mask=scene.semantic_mask,
        boxes=scene.boxes.tolist(),
        labels=scene.labels.tolist(),
        instance_masks=list(scene.instance_masks),
        captions=scene.captions,
    )


def coco_instances(scenes: list[Scene], description: str) -> dict:
    """COCO instances dict for ``scenes`` (image id = position in the list, annotation ids from 1).

    ``bbox`` is ``[x, y, w, h]`` in pixels, ``area`` the mask's pixel count, ``segmentation`` an RLE.
    """
    images, annotations = [], []
    for image_id, scene in enumerate(scenes):
        h, w = scene.semantic_mask.shape
        images.append({"id": image_id, "file_name": f"{image_id:06d}.png", "height": h, "width": w})
        for box, label, mask in zip(
            scene.boxes.tolist(), scene.labels.tolist(), scene.instance_masks, strict=True
        ):
            rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "area": int(mask.sum()),
                    "iscrowd": 0,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                }
            )
    categories = [
        {"id": i, "name": name, "supercategory": "digit"} for i, name in enumerate(CLASS_NAMES) if i
    ]
    return {
        "info": {"description": description},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


# Captions. Each takes boxes (K, 4), digits (K,), large (K,) bool and the canvas size, and names every
# digit exactly once; the phrasings differ in their fixed words, so a scene's captions are distinct.


def _a(digit: int) -> str:
    return f"an {digit}" if digit == 8 else f"a {digit}"


def _count(k: int, noun: str = "digit") -> str:
    word = NUMBER_WORDS[k] if k < len(NUMBER_WORDS) else str(k)
    return f"{word} {noun}" if k == 1 else f"{word} {noun}s"


def _listing(items: list[str]) -> str:
    """``x`` / ``x and y`` / ``x , y and z``."""
    return items[0] if len(items) == 1 else " , ".join(items[:-1]) + " and " + items[-1]


def _centres(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2


def _layout_caption(boxes, digits, large, canvas_size) -> str:
    """``a 3 at the top left and a 7 at the center``: a 3x3 grid cell per digit, in reading order."""
    if len(digits) == 0:
        return "an empty image"
    cx, cy = _centres(boxes)
    cols = np.minimum((cx * 3 // canvas_size).astype(int), 2)
    rows = np.minimum((cy * 3 // canvas_size).astype(int), 2)
    order = np.lexsort((digits, cx, cols, rows))
    cells = [
        "the center" if (rows[i], cols[i]) == (1, 1) else f"the {ROWS[rows[i]]} {COLUMNS[cols[i]]}"
        for i in order
    ]
    return _listing([f"{_a(digits[i])} at {cell}" for i, cell in zip(order, cells, strict=True)])


def _left_to_right_caption(boxes, digits, large, canvas_size) -> str:
    """``two digits : a small 3 left of a large 7``, or ``three digits from left to right : a , b and c``."""
    if len(digits) == 0:
        return "zero digits"
    cx, cy = _centres(boxes)
    order = np.lexsort((digits, cy, cx))
    items = [f"a {'large' if large[i] else 'small'} {digits[i]}" for i in order]
    if len(items) == 2:
        return f"{_count(2)} : {items[0]} left of {items[1]}"
    if len(items) == 1:
        return f"{_count(1)} : {items[0]}"
    return f"{_count(len(items))} from left to right : {_listing(items)}"


def _top_to_bottom_caption(boxes, digits, large, canvas_size) -> str:
    """``from top to bottom : a 3 above a 7`` (one digit: ``a single 3 in the image``)."""
    if len(digits) == 0:
        return "nothing in the image"
    if len(digits) == 1:
        return f"a single {digits[0]} in the image"
    cx, cy = _centres(boxes)
    items = [_a(digits[i]) for i in np.lexsort((digits, cx, cy))]
    joined = f"{items[0]} above {items[1]}" if len(items) == 2 else _listing(items)
    return f"from top to bottom : {joined}"


_CAPTIONS = (_layout_caption, _left_to_right_caption, _top_to_bottom_caption)
