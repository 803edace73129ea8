"""PASCAL VOC segmentation from a tiny fixture in the real layout (JPEGs, palette PNGs, id lists)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from components.data.schema import (
    SPLITS,
    decode_images,
    decode_semantic_masks,
    mask_box,
    read_meta,
    read_split,
)
from components.data.voc import CLASS_NAMES, load_voc_segmentation
from components.errors import UserError

TRAIN_IDS = ["2007_000032", "2007_000039", "2007_000063", "2007_000068", "2008_000002", "2008_000003"]
VAL_IDS = ["2009_000001", "2009_000002"]
SIZE = 24  # fixture images are SIZE x SIZE, so the loader keeps masks exactly at image_size=SIZE


def voc_palette() -> list[int]:
    """The VOC colour map (bit-interleaved), 256 RGB triples; 255 is the boundary colour."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _png(path, array):
    image = Image.fromarray(array.astype(np.uint8))
    image.putpalette(voc_palette())
    assert image.mode == "P"
    image.save(path)


def fixture_masks(index: int):
    """Image ``index`` has two objects: class ``index + 1`` (left) and ``index + 2`` (right), with
    a 1-pixel 255 boundary around each; instance ids 1 and 2."""
    semantic = np.zeros((SIZE, SIZE), np.uint8)
    objects = np.zeros((SIZE, SIZE), np.uint8)
    for instance, (x0, x1, cls) in enumerate([(2, 10, index + 1), (13, 22, index + 2)], start=1):
        semantic[3:21, x0 - 1 : x1 + 1] = 255
        objects[3:21, x0 - 1 : x1 + 1] = 255
        semantic[4:20, x0:x1] = cls
        objects[4:20, x0:x1] = instance
    return semantic, objects


def make_voc(root, with_objects=True, year="2012"):
    """Write a VOC<year> tree with TRAIN_IDS/VAL_IDS under ``root``; image i is filled with grey 10*i."""
    voc = root / f"VOC{year}"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        if sub != "SegmentationObject" or with_objects:
            (voc / sub).mkdir(parents=True)
    for i, image_id in enumerate(TRAIN_IDS + VAL_IDS):
        Image.new("RGB", (SIZE, SIZE), (10 * i, 10 * i, 10 * i)).save(voc / "JPEGImages" / f"{image_id}.jpg")
        semantic, objects = fixture_masks(i)
        _png(voc / "SegmentationClass" / f"{image_id}.png", semantic)
        if with_objects:
            _png(voc / "SegmentationObject" / f"{image_id}.png", objects)
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(TRAIN_IDS) + "\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(VAL_IDS) + "\n")
    return voc


def _index_of(table, row):
    """Recover the fixture index of a row from its left object's class."""
    return int(decode_semantic_masks(table)[row, 10, 5]) - 1


def test_loads_splits_images_masks_and_instances(tmp_path):
    make_voc(tmp_path / "VOCdevkit")
    meta = load_voc_segmentation(
        tmp_path / "VOCdevkit", tmp_path / "out", image_size=SIZE, val_fraction=0.34, seed=0
    )
    assert meta.class_names == CLASS_NAMES and len(CLASS_NAMES) == 21
    assert (meta.ignore_index, meta.channels, meta.height, meta.width) == (255, 3, SIZE, SIZE)
    assert meta.sizes == {"train": 4, "val": 2, "test": 2}
    assert read_meta(tmp_path / "out") == meta

    seen = {}
    for split in SPLITS:
        table = read_split(tmp_path / "out", split)
        seen[split] = [_index_of(table, row) for row in range(len(table))]
        images = decode_images(table)
        masks = decode_semantic_masks(table)
        assert images.shape == (len(table), SIZE, SIZE, 3)
        for row, index in enumerate(seen[split]):
            semantic, objects = fixture_masks(index)
            np.testing.assert_array_equal(masks[row], semantic)  # 255 boundary kept as is
            assert np.abs(images[row].astype(int) - 10 * index).max() <= 2  # flat grey JPEG
            assert table.column("labels")[row].as_py() == [index + 1, index + 2]
            assert table.column("captions")[row].as_py() == []
            stored = table.column("instance_masks")[row].as_py()
            for instance, (box, mask) in enumerate(
                zip(table.column("boxes")[row].as_py(), stored, strict=True), 1
            ):
                mask = np.frombuffer(mask, np.uint8).reshape(SIZE, SIZE)
                np.testing.assert_array_equal(mask, objects == instance)
                assert box == mask_box(mask)
    assert seen["test"] == [6, 7]  # val.txt, in order
    assert sorted(seen["train"] + seen["val"]) == list(range(6))  # train.txt, split without overlap


def test_resizes_images_bilinear_and_masks_nearest(tmp_path):
    make_voc(tmp_path)  # root may hold VOC2012 directly
    load_voc_segmentation(tmp_path, tmp_path / "out", image_size=12, val_fraction=0.5, seed=0)
    table = read_split(tmp_path / "out", "train")
    masks = decode_semantic_masks(table)
    assert decode_images(table).shape == (len(table), 12, 12, 3)
    for row in range(len(table)):
        index = int(masks[row, 5, 2]) - 1
        assert set(np.unique(masks[row])) == {0, index + 1, index + 2, 255}  # no blended values
        boxes = table.column("boxes")[row].as_py()
        assert len(boxes) == 2 and all(0 <= v <= 12 for box in boxes for v in box)


def test_without_segmentation_object_instances_are_empty(tmp_path):
    make_voc(tmp_path, with_objects=False)
    load_voc_segmentation(tmp_path, tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)
    table = read_split(tmp_path / "out", "test")
    for column in ("boxes", "labels", "instance_masks", "captions"):
        assert table.column(column).to_pylist() == [[], []]


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    make_voc(tmp_path / "data")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        load_voc_segmentation(
            tmp_path / "data", tmp_path / name, image_size=SIZE, val_fraction=0.5, seed=seed
        )
    files = [{p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "abc"]
    assert files[0] == files[1]
    assert files[0]["val.parquet"] != files[2]["val.parquet"]


def test_missing_root_and_voc_folder(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "nowhere"))):
        load_voc_segmentation(
            tmp_path / "nowhere", tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "empty" / "VOC2012"))):
        load_voc_segmentation(tmp_path / "empty", tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "relative",
    [
        "ImageSets/Segmentation/val.txt",
        "SegmentationClass",
        "JPEGImages/2007_000039.jpg",
        "SegmentationObject/2009_000002.png",
    ],
)
def test_missing_file_names_the_path(tmp_path, relative):
    voc = make_voc(tmp_path)
    path = voc / relative
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()
    with pytest.raises(UserError, match=re.escape(str(path))):
        load_voc_segmentation(tmp_path, tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)
    assert not (tmp_path / "out").exists()


def test_malformed_inputs_name_the_file(tmp_path):
    voc = make_voc(tmp_path)
    jpeg = voc / "JPEGImages" / "2009_000001.jpg"
    jpeg.write_bytes(b"not a jpeg at all")
    with pytest.raises(UserError, match=re.escape(f"cannot read VOC image {jpeg}")):
        load_voc_segmentation(tmp_path, tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)

    voc = make_voc(tmp_path / "b")
    mask = voc / "SegmentationClass" / "2007_000032.png"
    _png(mask, np.full((SIZE, SIZE), 77))
    with pytest.raises(UserError, match=re.escape(f"malformed VOC mask {mask}: class values [77]")):
        load_voc_segmentation(tmp_path / "b", tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)

    voc = make_voc(tmp_path / "c")
    ids = voc / "ImageSets" / "Segmentation" / "train.txt"
    ids.write_text("2007_000032 -1\n2007_000039 1\n")  # a Main/ classification list, not a Segmentation one
    with pytest.raises(UserError, match=re.escape(f"malformed VOC id list {ids}")):
        load_voc_segmentation(tmp_path / "c", tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)
    ids.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match=re.escape(str(ids))):
        load_voc_segmentation(tmp_path / "c", tmp_path / "out", image_size=SIZE, val_fraction=0.5, seed=0)
