"""PASCAL VOC detection from a tiny fixture in the real layout (JPEGs, Annotations XML, Main id lists)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from components.data.coco import validate_coco
from components.data.schema import SPLITS, decode_images, decode_semantic_masks, read_meta, read_split
from components.data.voc import CLASS_NAMES, IGNORE_INDEX
from components.data.voc_detection import load_voc_detection, read_voc_annotation
from components.errors import UserError

TRAIN_IDS = ["2007_000005", "2007_000007", "2007_000009", "2007_000012"]
VAL_IDS = ["2007_000016", "2007_000019"]
WIDTH, HEIGHT = 40, 20  # every fixture image; loaded at SIZE x SIZE, so x halves and y stays
SIZE = 20


def _object(name, box, difficult=0):
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def annotation_xml(image_id, objects, width=WIDTH, height=HEIGHT):
    return (
        f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{''.join(objects)}</annotation>"
    )


def fixture_objects(index):
    """Image ``index``: a class ``index + 1`` box that moves right with the index, a whole-image
    person, and a difficult cat (dropped); image 5 has no objects."""
    if index == 5:
        return []
    return [
        _object(CLASS_NAMES[index + 1], (5 + index, 3, 14 + index, 10)),
        _object("person", (1, 1, WIDTH, HEIGHT)),
        _object("cat", (2, 2, 8, 8), difficult=1),
    ]


def make_voc(root, year="2007"):
    voc = root / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    for i, image_id in enumerate(TRAIN_IDS + VAL_IDS):
        Image.new("RGB", (WIDTH, HEIGHT), (30 * i, 30 * i, 30 * i)).save(voc / "JPEGImages" / f"{image_id}.jpg")
        (voc / "Annotations" / f"{image_id}.xml").write_text(annotation_xml(image_id, fixture_objects(i)))
    (voc / "ImageSets/Main/train.txt").write_text("\n".join(TRAIN_IDS) + "\n")
    (voc / "ImageSets/Main/val.txt").write_text("\n".join(VAL_IDS) + "\n")
    return voc


def load(root, out, **kwargs):
    return load_voc_detection(root, out, **{"image_size": SIZE, "val_fraction": 0.25, "seed": 0} | kwargs)


def test_loads_splits_boxes_and_labels(tmp_path):
    make_voc(tmp_path / "VOCdevkit")
    meta = load(tmp_path / "VOCdevkit", tmp_path / "out")
    assert meta.class_names == CLASS_NAMES
    assert (meta.ignore_index, meta.channels, meta.height, meta.width) == (IGNORE_INDEX, 3, SIZE, SIZE)
    assert meta.sizes == {"train": 3, "val": 1, "test": 2}
    assert meta.name == "voc2007_detection"
    assert read_meta(tmp_path / "out") == meta

    seen = {}
    for split in SPLITS:
        table = read_split(tmp_path / "out", split)
        images = decode_images(table)
        assert images.shape == (len(table), SIZE, SIZE, 3)
        assert (decode_semantic_masks(table) == IGNORE_INDEX).all()  # no segmentation: all unlabelled
        seen[split] = []
        for row in range(len(table)):
            index = round(float(images[row].mean()) / 30)
            seen[split].append(index)
            assert np.abs(images[row].astype(int) - 30 * index).max() <= 2  # flat grey JPEG
            boxes = table.column("boxes")[row].as_py()
            labels = table.column("labels")[row].as_py()
            assert table.column("instance_masks")[row].as_py() == []
            assert table.column("captions")[row].as_py() == []
            if index == 5:
                assert (boxes, labels) == ([], [])
                continue
            # xmin 5+i .. xmax 14+i (1-based, inclusive) -> [4+i, 14+i) -> x halves; y 3..10 -> [2, 10)
            assert boxes == [[(4 + index) / 2, 2, (14 + index) / 2, 10], [0, 0, SIZE, SIZE]]
            assert labels == [index + 1, CLASS_NAMES.index("person")]  # the difficult cat is dropped
    assert seen["test"] == [4, 5]  # val.txt, in order
    assert sorted(seen["train"] + seen["val"]) == [0, 1, 2, 3]


def test_writes_val_and_test_instances_json_with_difficult_as_crowd(tmp_path):
    make_voc(tmp_path)
    load(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "instances_train.json").exists()
    for split in ("val", "test"):
        path = tmp_path / "out" / f"instances_{split}.json"
        data = json.loads(path.read_text())
        validate_coco(data, str(path))
        assert [c["name"] for c in data["categories"]] == CLASS_NAMES[1:]
        table = read_split(tmp_path / "out", split)
        assert [i["id"] for i in data["images"]] == list(range(len(table)))
        for row in range(len(table)):
            anns = [a for a in data["annotations"] if a["image_id"] == row and not a["iscrowd"]]
            assert [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)] == table.column("boxes")[
                row
            ].as_py()
            assert [a["category_id"] for a in anns] == table.column("labels")[row].as_py()
    test = json.loads((tmp_path / "out" / "instances_test.json").read_text())
    assert [(a["image_id"], a["category_id"], a["bbox"], a["iscrowd"]) for a in test["annotations"]] == [
        (0, 5, [4, 2, 5, 8], 0),  # image 4: xmin 9..xmax 18 -> [8, 18) -> [4, 9) at half width
        (0, CLASS_NAMES.index("person"), [0, 0, SIZE, SIZE], 0),
        (0, CLASS_NAMES.index("cat"), [0.5, 1, 3.5, 7], 1),  # difficult: xmin 2..xmax 8 -> [1, 8) -> [0.5, 4)
    ]  # image 5 has no objects
    assert all("segmentation" not in a for a in test["annotations"])


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    make_voc(tmp_path / "data")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        load(tmp_path / "data", tmp_path / name, val_fraction=0.5, seed=seed)
    files = [{p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "abc"]
    assert files[0] == files[1]
    assert files[0]["val.parquet"] != files[2]["val.parquet"]


def test_read_voc_annotation_keeps_difficult_and_converts_boxes(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(annotation_xml("a", [_object("dog", (1, 1, 40, 20)), _object("cat", (2.5, 3, 4, 5), 1)]))
    annotation = read_voc_annotation(path)
    assert (annotation.width, annotation.height) == (WIDTH, HEIGHT)
    assert [(o.label, o.box, o.difficult) for o in annotation.objects] == [
        (CLASS_NAMES.index("dog"), [0, 0, 40, 20], False),
        (CLASS_NAMES.index("cat"), [1.5, 2, 4, 5], True),
    ]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (annotation_xml("x", [_object("unicorn", (1, 1, 5, 5))]), "object 0: class name 'unicorn' is not a VOC"),
        (annotation_xml("x", [_object("dog", (1, 1, 5, 5)), _object("cat", (30, 1, 45, 5))]), "object 1: bndbox"),
        (annotation_xml("x", [_object("dog", (9, 1, 5, 5))]), "object 0: bndbox (xmin 9, ymin 1, xmax 5, ymax 5)"),
        (annotation_xml("x", [_object("dog", (1, 1, "five", 5))]), "<bndbox/xmax> is 'five', expected a number"),
        (annotation_xml("x", [_object("dog", (1, 1, 5, 5), difficult=2)]), "object 0: difficult '2' must be 0 or 1"),
        ("<annotation><size><width>40</width></size></annotation>", "<size/height> is None"),
        ("<annotation><size>", "malformed VOC annotation"),
        ("<image/>", "root element <image>, expected <annotation>"),
    ],
)
def test_bad_annotation_names_the_file_and_writes_nothing(tmp_path, xml, message):
    voc = make_voc(tmp_path)
    path = voc / "Annotations" / f"{VAL_IDS[1]}.xml"
    path.write_text(xml)
    with pytest.raises(UserError) as err:
        load(tmp_path, tmp_path / "out")
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "relative",
    ["ImageSets/Main/val.txt", "Annotations", f"Annotations/{TRAIN_IDS[1]}.xml", f"JPEGImages/{VAL_IDS[0]}.jpg"],
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
        load(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_root_and_bad_images(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "nowhere"))):
        load(tmp_path / "nowhere", tmp_path / "out")
    voc = make_voc(tmp_path / "a")
    jpeg = voc / "JPEGImages" / f"{TRAIN_IDS[2]}.jpg"
    Image.new("RGB", (WIDTH, HEIGHT + 1)).save(jpeg)
    with pytest.raises(UserError, match=re.escape(f"VOC image {jpeg} is 40x21 but")):
        load(tmp_path / "a", tmp_path / "out")
    jpeg.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=re.escape(f"cannot read VOC image {jpeg}")):
        load(tmp_path / "a", tmp_path / "out")
    with pytest.raises(UserError, match="val_fraction"):
        load(tmp_path / "a", tmp_path / "out", val_fraction=0)
    assert not (tmp_path / "out").exists()
