"""The embedded multi-digit scenes: layout rules, masks, captions, COCO files and determinism."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from components.data.digits import load_digit_images, resize_float, split_digit_ids
from components.data.scenes import box_iou, build_scenes, generate_scenes
from components.data.schema import (
    SPLITS,
    decode_images,
    decode_semantic_masks,
    mask_box,
    read_meta,
    read_split,
)
from components.errors import UserError

# Small but crowded: up to 5 digits of up to 24 px on a 48 px canvas, so overlaps and drops happen.
OPTIONS = dict(
    canvas_size=48,
    min_digits=1,
    max_digits=5,
    min_digit_size=10,
    max_digit_size=24,
    max_box_iou=0.3,
    mask_threshold=0.3,
    captions_per_scene=3,
    val_fraction=0.2,
    test_fraction=0.2,
)
SIZES = dict(num_train=40, num_val=12, num_test=12)


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(seed=0, **SIZES, **OPTIONS, placement_tries=100)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        build_scenes(root / name, seed=seed, **SIZES, **OPTIONS)
    return root


def _all(scenes):
    return [scene for split in SPLITS for scene in scenes[split]]


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_box_iou_known_answers():
    assert box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert box_iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(2 / 6)
    assert box_iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0  # x1 is exclusive: touching is not overlapping


def test_each_split_draws_only_its_own_digits(scenes):
    ids = split_digit_ids(seed=0, val_fraction=0.2, test_fraction=0.2)
    for split in SPLITS:
        used = np.concatenate([scene.digit_ids for scene in scenes[split]])
        assert np.isin(used, ids[split]).all(), split
    train_used = np.concatenate([scene.digit_ids for scene in scenes["train"]])
    for split in ("val", "test"):
        used = np.concatenate([scene.digit_ids for scene in scenes[split]])
        assert not np.isin(used, train_used).any()


def test_digit_counts_and_labels(scenes):
    _, labels = load_digit_images()
    counts = [len(scene.labels) for scene in _all(scenes)]
    assert min(counts) >= 1 and max(counts) <= 5
    assert len(set(counts)) > 2
    for scene in _all(scenes):
        np.testing.assert_array_equal(scene.labels, labels[scene.digit_ids] + 1)
        assert ((scene.sizes >= 10) & (scene.sizes <= 24)).all()


def test_boxes_overlap_at_most_max_iou_and_lie_inside_the_canvas(scenes):
    overlapping = 0
    for scene in _all(scenes):
        for a, b in itertools.combinations(scene.boxes.tolist(), 2):
            iou = box_iou(a, b)
            assert iou <= 0.3
            overlapping += iou > 0
        assert ((scene.boxes[:, :2] >= 0) & (scene.boxes[:, 2:] <= 48)).all()
        assert ((scene.boxes[:, 2:] - scene.boxes[:, :2]) > 0).all()
    assert overlapping > 0  # the rule is exercised, not vacuous


def test_boxes_tightly_bound_the_instance_masks(scenes):
    for scene in _all(scenes):
        assert scene.instance_masks.shape == (len(scene.labels), 48, 48)
        for box, mask in zip(scene.boxes.tolist(), scene.instance_masks, strict=True):
            assert mask_box(mask) == box
            assert (scene.image[mask] > 0.3).all()  # mask = pixels above threshold; canvas = max


def test_semantic_mask_agrees_with_the_instances(scenes):
    for scene in _all(scenes):
        union = scene.instance_masks.any(axis=0)
        np.testing.assert_array_equal(scene.semantic_mask > 0, union)
        covering = np.zeros((len(scene.labels), 48, 48), bool)
        for k, (label, mask) in enumerate(zip(scene.labels, scene.instance_masks, strict=True)):
            covering[k] = mask & (scene.semantic_mask == label)
        # Every labelled pixel is explained by an instance of that class covering it.
        np.testing.assert_array_equal(covering.any(axis=0), union)
        assert set(np.unique(scene.semantic_mask)) <= {0, *scene.labels.tolist()}


def _intensities(scene, images):
    """Re-draw each digit of ``scene`` alone on the canvas: float32 (K, H, W)."""
    layers = np.zeros((len(scene.labels), 48, 48), np.float32)
    for k, (digit_id, size, box) in enumerate(
        zip(scene.digit_ids, scene.sizes, scene.boxes.tolist(), strict=True)
    ):
        patch = resize_float(images[digit_id], int(size))
        x0, y0 = mask_box(patch > 0.3)[:2]
        x, y = box[0] - int(x0), box[1] - int(y0)
        layers[k, y : y + size, x : x + size] = patch
    return layers


def test_canvas_is_the_max_and_overlaps_go_to_the_brighter_digit(scenes):
    images, _ = load_digit_images()
    contested = 0
    for scene in _all(scenes):
        layers = _intensities(scene, images)
        np.testing.assert_array_equal(scene.image, layers.max(axis=0, initial=0))
        np.testing.assert_array_equal(scene.instance_masks, layers > 0.3)
        shown = np.where(scene.instance_masks, layers, -1).argmax(axis=0)  # first of equals wins
        overlap = scene.instance_masks.sum(axis=0) > 1
        np.testing.assert_array_equal(scene.semantic_mask[overlap], scene.labels[shown[overlap]])
        contested += int(overlap.sum())
    assert contested > 0


def test_captions_are_distinct_tokenized_and_name_every_digit(scenes):
    for scene in _all(scenes):
        assert len(scene.captions) == 3 == len(set(scene.captions))
        digits = Counter(str(d) for d in (scene.labels - 1).tolist())
        for caption in scene.captions:
            assert caption == caption.lower() == " ".join(caption.split())
            tokens = caption.split()
            assert all(t.isalnum() or t in {",", ":"} for t in tokens), caption
            assert Counter(t for t in tokens if t.isdigit()) == digits, caption


def test_caption_phrasings_for_a_known_layout():
    scenes = generate_scenes(
        seed=0, **SIZES, **{**OPTIONS, "min_digits": 2, "max_digits": 2}, placement_tries=100
    )
    scene = scenes["train"][0]
    first, second, third = scene.captions
    assert " and " in first and " at the " in first
    assert second.startswith("two digits : a ") and " left of a " in second
    assert third.startswith("from top to bottom : ") and " above " in third
    left, right = np.argsort((scene.boxes[:, 0] + scene.boxes[:, 2]) / 2, kind="stable")
    assert second.split(" left of ")[0].endswith(str(scene.labels[left] - 1))
    assert second.endswith(str(scene.labels[right] - 1))


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(built):
    a, b, c = (_files(built / name) for name in "abc")
    assert sorted(a) == sorted(
        [
            "train.parquet",
            "val.parquet",
            "test.parquet",
            "meta.json",
            "instances_val.json",
            "instances_test.json",
        ]
    )
    assert a == b
    for name in ("train.parquet", "val.parquet", "test.parquet", "instances_val.json", "instances_test.json"):
        assert a[name] != c[name], name


def test_parquet_holds_the_generated_scenes(built, scenes):
    meta = read_meta(built / "a")
    assert meta.task == "dense" and meta.ignore_index is None and meta.channels == 1
    assert meta.class_names == ["background", *[str(d) for d in range(10)]]
    assert meta.sizes == {"train": 40, "val": 12, "test": 12}
    for split in SPLITS:
        table = read_split(built / "a", split)
        images = decode_images(table)
        assert images.shape == (len(scenes[split]), 48, 48, 1)
        masks = decode_semantic_masks(table)
        for row, scene in enumerate(scenes[split]):
            np.testing.assert_array_equal(masks[row], scene.semantic_mask)
            np.testing.assert_array_equal(images[row, ..., 0], np.round(scene.image * 255))
            assert table.column("boxes")[row].as_py() == scene.boxes.tolist()
            assert table.column("labels")[row].as_py() == scene.labels.tolist()
            assert table.column("captions")[row].as_py() == scene.captions
            stored = [
                np.frombuffer(m, np.uint8).reshape(48, 48)
                for m in table.column("instance_masks")[row].as_py()
            ]
            np.testing.assert_array_equal(np.array(stored, bool).reshape(-1, 48, 48), scene.instance_masks)


def test_coco_files_load_and_match_the_parquet(built):
    for split in ("val", "test"):
        path = built / "a" / f"instances_{split}.json"
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        table = read_split(built / "a", split)
        boxes = table.column("boxes").to_pylist()
        assert len(coco.getAnnIds()) == sum(len(b) for b in boxes)
        assert sorted(coco.getImgIds()) == table.column("id").to_pylist()
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [str(d) for d in range(10)]
        assert coco.getCatIds() == list(range(1, 11))
        for image_id, row_boxes, row_labels, row_masks in zip(
            table.column("id").to_pylist(),
            boxes,
            table.column("labels").to_pylist(),
            table.column("instance_masks").to_pylist(),
            strict=True,
        ):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            assert [a["category_id"] for a in anns] == row_labels
            for ann, (x0, y0, x1, y1), stored in zip(anns, row_boxes, row_masks, strict=True):
                mask = np.frombuffer(stored, np.uint8).reshape(48, 48)
                assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
                assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
                np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]), mask)
                np.testing.assert_array_equal(coco.annToMask(ann), mask)
        assert json.loads(path.read_text())["images"][0]["height"] == 48


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"max_digit_size": 64}, "max_digit_size"),
        ({"captions_per_scene": 1}, "captions_per_scene"),
        ({"min_digits": 3, "max_digits": 2}, "max_digits"),
        ({"max_box_iou": 1.5}, "max_box_iou"),
    ],
)
def test_bad_options_are_user_errors_naming_the_option(tmp_path, change, name):
    with pytest.raises(UserError, match=name):
        build_scenes(tmp_path / "s", seed=0, **SIZES, **{**OPTIONS, **change})
    assert not (tmp_path / "s").exists()
