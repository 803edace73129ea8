"""COCO instances and captions from a tiny fixture in the real layout (annotations/*.json beside image folders)."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from components.data.coco import IGNORE_INDEX, load_coco_instances, validate_captions, validate_coco
from components.data.schema import SPLITS, decode_images, decode_semantic_masks, read_meta, read_split
from components.errors import UserError
from tests.coco_masks import uncompressed_rle

SIZE = 20
# Listed out of id order: labels follow the list (dog=1, cat=2, bird=3), not the ids.
CATEGORIES = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 11, "name": "bird"}]
DOG, CAT, BIRD = 1, 2, 3
# name -> (file_name, width, height, PIL mode, fill value); the fill tells the rows apart after the split
TRAIN_IMAGES = {
    "a": (101, "a.png", 40, 20, "RGB", 10),  # wide: x scales by 1/2
    "b": (102, "sub/b.png", 20, 20, "L", 60),  # greyscale, overlapping objects and a crowd region
    "c": (103, "c.png", 20, 20, "RGB", 110),  # no annotations
    "d": (104, "d.png", 20, 40, "RGB", 160),  # tall: y scales by 1/2
}
TEST_IMAGES = {"t1": (1, "t1.png", 20, 20, "RGB", 200), "t2": (2, "t2.png", 20, 20, "RGB", 230)}
# image id -> its captions as the captions files give them (COCO's stray whitespace included); t2 has none
CAPTIONS = {
    101: ["A wide picture with a dog and a bird.", "two animals on grey ", "A dog, left of a bird"],
    102: ["A  cat holding\na small bird.", "A cat and a bird"],
    103: ["An empty grey picture."],
    104: ["A tall image with one small cat.", "a cat at the bottom", "Cat.", "A picture of a cat", "tall and grey\n"],
    1: ["A cat fills the whole image.", "a big cat"],
}


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _block(height, width, x0, y0, x1, y1) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _ann(ann_id, image_id, category_id, bbox, segmentation, iscrowd=0) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": bbox,
        "area": float(bbox[2] * bbox[3]),
        "iscrowd": iscrowd,
        "segmentation": segmentation,
    }


def coco_train_json() -> dict:
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h, _, _ in TRAIN_IMAGES.values()],
        "annotations": [
            # a (40x20): a polygon rectangle covering x 4..23, y 2..11 and an RLE block x 30..37, y 5..14
            _ann(17, 101, 7, [4, 2, 20, 10], [[4, 2, 24, 2, 24, 12, 4, 12]]),
            _ann(18, 101, 11, [30, 5, 8, 10], _rle(_block(20, 40, 30, 5, 38, 15))),
            # b (20x20): a small bird listed before the large cat that contains it, and a crowd column
            _ann(19, 102, 11, [6, 6, 4, 4], _rle(_block(20, 20, 6, 6, 10, 10))),
            _ann(20, 102, 3, [2, 2, 15, 15], [[2, 2, 17, 2, 17, 17, 2, 17]]),
            _ann(21, 102, 7, [0, 0, 2, 20], uncompressed_rle(_block(20, 20, 0, 0, 2, 20)), iscrowd=1),
            # d (20x40): an uncompressed RLE that is not a crowd, x 2..5, y 10..19
            _ann(22, 104, 3, [2, 10, 4, 10], uncompressed_rle(_block(40, 20, 2, 10, 6, 20))),
        ],
        "categories": copy.deepcopy(CATEGORIES),
    }


def coco_test_json() -> dict:
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h, _, _ in TEST_IMAGES.values()],
        "annotations": [
            _ann(1, 1, 3, [0, 0, 20, 20], [[0, 0, 20, 0, 20, 20, 0, 20]]),
            _ann(2, 2, 11, [5, 5, 5, 5], uncompressed_rle(_block(20, 20, 5, 5, 10, 10)), iscrowd=1),  # a crowd only
        ],
        "categories": copy.deepcopy(CATEGORIES),
    }


def coco_captions_json(images: dict) -> dict:
    """A captions file of ``images`` (TRAIN_IMAGES or TEST_IMAGES): its annotations interleave the
    images (as COCO's do), each image's captions in CAPTIONS order; ids from 1000."""
    ids = [i for i, *_ in images.values()]
    width = max(len(CAPTIONS.get(i, [])) for i in ids)
    pairs = [(i, CAPTIONS[i][k]) for k in range(width) for i in ids if k < len(CAPTIONS.get(i, []))]
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h, _, _ in images.values()],
        "annotations": [{"id": 1000 + n, "image_id": i, "caption": c} for n, (i, c) in enumerate(pairs)],
    }


def make_coco(root, train=None, test=None, captions=("train", "test")):
    """``root/annotations/instances_{train,test}.json``, ``captions_<name>.json`` for each name in
    ``captions`` and the ``root/{train,test}/`` images."""
    (root / "annotations").mkdir(parents=True)
    for name, images, data in (
        ("train", TRAIN_IMAGES, train or coco_train_json()),
        ("test", TEST_IMAGES, test or coco_test_json()),
    ):
        (root / "annotations" / f"instances_{name}.json").write_text(json.dumps(data))
        if name in captions:
            (root / "annotations" / f"captions_{name}.json").write_text(json.dumps(coco_captions_json(images)))
        for _, file_name, w, h, mode, fill in images.values():
            path = root / name / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new(mode, (w, h), fill if mode == "L" else (fill, fill, fill)).save(path)
    return root


def load(root, out, **kwargs):
    kwargs = {"train_set": "train", "test_set": "test", "image_size": SIZE, "val_fraction": 0.25, "seed": 0} | kwargs
    return load_coco_instances(root, out, **kwargs)


def _rows_by_fill(out):
    """fixture name -> (split, table, row), recognised by the image's flat fill value."""
    names = {fill: name for name, (*_, fill) in (TRAIN_IMAGES | TEST_IMAGES).items()}
    found = {}
    for split in SPLITS:
        table = read_split(out, split)
        images = decode_images(table)
        for row in range(len(table)):
            found[names[int(images[row, 0, 0, 0])]] = (split, table, row)
    return found


def _masks(table, row):
    return [np.frombuffer(m, np.uint8).reshape(SIZE, SIZE) for m in table.column("instance_masks")[row].as_py()]


def test_loads_splits_boxes_labels_and_masks(tmp_path):
    make_coco(tmp_path / "coco")
    meta = load(tmp_path / "coco", tmp_path / "out")
    assert meta.class_names == ["background", "dog", "cat", "bird"]
    assert (meta.ignore_index, meta.channels, meta.height, meta.width) == (IGNORE_INDEX, 3, SIZE, SIZE)
    assert meta.sizes == {"train": 3, "val": 1, "test": 2}
    assert read_meta(tmp_path / "out") == meta

    rows = _rows_by_fill(tmp_path / "out")
    assert sorted(rows) == ["a", "b", "c", "d", "t1", "t2"]
    assert [rows[n][0] for n in ("t1", "t2")] == ["test", "test"]
    assert [rows[n][2] for n in ("t1", "t2")] == [0, 1]  # test json order
    assert sorted(rows[n][0] for n in "abcd") == ["train", "train", "train", "val"]
    for _, table, row in rows.values():
        image = decode_images(table)[row]
        assert image.shape == (SIZE, SIZE, 3) and len(np.unique(image)) == 1  # greyscale b became RGB
        assert table.column("id")[row].as_py() == row

    def row_of(name, crowds=False):
        """The row's objects; with ``crowds`` its crowd regions instead (``iscrowd`` 1, after the objects)."""
        _, table, row = rows[name]
        flags = table.column("iscrowd")[row].as_py()
        assert flags == sorted(flags)  # objects first
        pick = [k for k, f in enumerate(flags) if f == crowds]
        boxes, labels = table.column("boxes")[row].as_py(), table.column("labels")[row].as_py()
        masks = _masks(table, row)
        assert len(boxes) == len(labels) == len(masks) == len(flags)
        return ([boxes[k] for k in pick], [labels[k] for k in pick], [masks[k] for k in pick],
                decode_semantic_masks(table)[row])

    # a: 40x20 -> 20x20, x halves. Polygon x 4..23 -> [2, 12); RLE x 30..37 -> [15, 19).
    boxes, labels, masks, semantic = row_of("a")
    assert boxes == [[2, 2, 12, 12], [15, 5, 19, 15]]
    assert labels == [DOG, BIRD]
    np.testing.assert_array_equal(masks[0], _block(SIZE, SIZE, 2, 2, 12, 12))
    np.testing.assert_array_equal(masks[1], _block(SIZE, SIZE, 15, 5, 19, 15))
    np.testing.assert_array_equal(semantic, DOG * masks[0] + BIRD * masks[1])

    # b: the crowd is a crowd region (iscrowd 1) and 255 in the semantic mask; the small bird stays visible on the cat.
    boxes, labels, masks, semantic = row_of("b")
    assert boxes == [[6, 6, 10, 10], [2, 2, 17, 17]]
    assert labels == [BIRD, CAT]
    np.testing.assert_array_equal(masks[0], _block(SIZE, SIZE, 6, 6, 10, 10))
    np.testing.assert_array_equal(masks[1], _block(SIZE, SIZE, 2, 2, 17, 17))
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[:, 0:2] = IGNORE_INDEX
    expected[2:17, 2:17] = CAT
    expected[6:10, 6:10] = BIRD
    np.testing.assert_array_equal(semantic, expected)
    boxes, labels, masks, _ = row_of("b", crowds=True)
    assert (boxes, labels) == ([[0, 0, 2, 20]], [DOG])
    np.testing.assert_array_equal(masks[0], _block(SIZE, SIZE, 0, 0, 2, 20))
    for name in "acd":
        assert row_of(name, crowds=True)[:3] == ([], [], [])

    # c: kept, with nothing in it.
    boxes, labels, masks, semantic = row_of("c")
    assert (boxes, labels, masks) == ([], [], [])
    assert not semantic.any()

    # d: 20x40 -> 20x20, y halves. y 10..19 -> [5, 10).
    boxes, labels, masks, semantic = row_of("d")
    assert (boxes, labels) == ([[2, 5, 6, 10]], [CAT])
    np.testing.assert_array_equal(masks[0], _block(SIZE, SIZE, 2, 5, 6, 10))

    boxes, labels, masks, _ = row_of("t1")
    assert (boxes, labels) == ([[0, 0, SIZE, SIZE]], [CAT]) and masks[0].all()
    boxes, labels, masks, semantic = row_of("t2")
    assert (boxes, labels, masks) == ([], [], [])
    np.testing.assert_array_equal(semantic, IGNORE_INDEX * _block(SIZE, SIZE, 5, 5, 10, 10))
    boxes, labels, masks, _ = row_of("t2", crowds=True)
    assert (boxes, labels) == ([[5, 5, 10, 10]], [BIRD])
    np.testing.assert_array_equal(masks[0], _block(SIZE, SIZE, 5, 5, 10, 10))


def test_writes_val_and_test_instances_json_matching_the_rows(tmp_path):
    make_coco(tmp_path / "coco")
    load(tmp_path / "coco", tmp_path / "out")
    assert not (tmp_path / "out" / "instances_train.json").exists()
    for split in ("val", "test"):
        path = tmp_path / "out" / f"instances_{split}.json"
        data = json.loads(path.read_text())
        validate_coco(data, str(path))
        assert data["categories"] == [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "bird"}]
        table = read_split(tmp_path / "out", split)
        assert [(i["id"], i["height"], i["width"]) for i in data["images"]] == [
            (r, SIZE, SIZE) for r in range(len(table))
        ]
        for row in range(len(table)):
            anns = [a for a in data["annotations"] if a["image_id"] == row]  # crowds too, in the rows' order
            x0y0x1y1 = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
            assert x0y0x1y1 == table.column("boxes")[row].as_py()
            assert [a["category_id"] for a in anns] == table.column("labels")[row].as_py()
            assert [a["iscrowd"] for a in anns] == table.column("iscrowd")[row].as_py()
            for ann, mask in zip(anns, _masks(table, row), strict=True):
                np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]), mask)
                assert ann["area"] == mask.sum()
    test = json.loads((tmp_path / "out" / "instances_test.json").read_text())
    assert [(a["id"], a["image_id"], a["category_id"], a["bbox"], a["iscrowd"]) for a in test["annotations"]] == [
        (1, 0, CAT, [0, 0, SIZE, SIZE], 0),
        (2, 1, BIRD, [5, 5, 5, 5], 1),  # t2's crowd, back for COCOeval to ignore
    ]


def test_same_seed_same_bytes_and_caps(tmp_path):
    make_coco(tmp_path / "coco")
    for name, seed in (("a", 1), ("b", 1)):
        load(tmp_path / "coco", tmp_path / name, seed=seed)
    files = [{p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "ab"]
    assert files[0] == files[1]
    meta = load(tmp_path / "coco", tmp_path / "c", val_fraction=0.5, max_train_images=2, max_test_images=1)
    assert meta.sizes == {"train": 1, "val": 1, "test": 1}


def test_validate_coco_accepts_the_fixture():
    validate_coco(coco_train_json(), "instances_train.json")
    validate_coco(coco_test_json(), "instances_test.json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("category_id", 99, "instances_train.json: annotation 17: category_id 99 is not in categories (7, 3, 11)"),
        ("image_id", 555, "instances_train.json: annotation 17: image_id 555 is not in images"),
        ("bbox", [30, 2, 15, 10], "instances_train.json: annotation 17: bbox [30, 2, 15, 10] (x1 45, y1 12) lies"),
        ("bbox", [-3, 2, 20, 10], "instances_train.json: annotation 17: bbox [-3, 2, 20, 10] (x1 17, y1 12) lies"),
        ("bbox", [4, 2, 20, 0], "instances_train.json: annotation 17: bbox [4, 2, 20, 0] has width or height <= 0"),
        ("bbox", [4, 2, 20], "instances_train.json: annotation 17: bbox [4, 2, 20] is not [x, y, w, h]"),
        ("iscrowd", 2, "instances_train.json: annotation 17: iscrowd 2 must be 0 or 1"),
        ("segmentation", [[1, 2, 3]], "instances_train.json: annotation 17: segmentation polygon 0 [1, 2, 3] is not"),
    ],
)
def test_validate_coco_names_the_annotation_and_value(field, value, message):
    data = coco_train_json()
    data["annotations"][0][field] = value
    with pytest.raises(UserError) as err:
        validate_coco(data, "instances_train.json")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_validate_coco_structure_and_tolerance():
    data = coco_train_json()
    data["annotations"][0]["bbox"] = [3.5, 2, 36.9, 10]  # sticks out by 0.4 px: rounding, accepted
    validate_coco(data, "f.json")
    data["annotations"][1]["id"] = 17
    with pytest.raises(UserError, match=re.escape("f.json: annotation id 17 appears twice")):
        validate_coco(data, "f.json")
    data = coco_train_json()
    data["annotations"][1]["segmentation"]["size"] = [20, 20]
    with pytest.raises(UserError, match=re.escape("f.json: annotation 18: segmentation RLE size [20, 20] is not")):
        validate_coco(data, "f.json")
    with pytest.raises(UserError, match=re.escape("f.json: not a COCO instances file (no 'categories' list)")):
        validate_coco({"images": [], "annotations": []}, "f.json")
    data = coco_train_json()
    data["images"][0]["width"] = 0
    with pytest.raises(UserError, match=re.escape("f.json: image 101: width 0 is not a positive integer")):
        validate_coco(data, "f.json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("category_id", 99, "annotation 17: category_id 99 is not in categories"),
        ("bbox", [30, 2, 15, 10], "annotation 17: bbox [30, 2, 15, 10]"),
    ],
)
def test_loader_rejects_bad_annotations_and_writes_nothing(tmp_path, field, value, message):
    data = coco_train_json()
    data["annotations"][0][field] = value
    make_coco(tmp_path / "coco", train=data)
    path = tmp_path / "coco" / "annotations" / "instances_train.json"
    with pytest.raises(UserError, match=re.escape(f"{path}: {message}")):
        load(tmp_path / "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_boxes_rejected_or_dropped(tmp_path):
    data = coco_train_json()
    data["annotations"][5]["bbox"] = [2, 10, 4, 0]  # as annotation 918 of instances_train2017.json
    make_coco(tmp_path / "coco", train=data)
    with pytest.raises(UserError, match="annotation 22: bbox .* has width or height <= 0"):
        load(tmp_path / "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    load(tmp_path / "coco", tmp_path / "out", drop_empty_boxes=True)
    rows = _rows_by_fill(tmp_path / "out")
    _, table, row = rows["d"]
    assert table.column("boxes")[row].as_py() == []


@pytest.mark.parametrize("relative", ["", "annotations/instances_test.json", "train", "test/t2.png", "train/sub/b.png"])
def test_missing_path_is_named(tmp_path, relative):
    root = make_coco(tmp_path / "coco")
    path = root / relative
    if relative == "":
        root = path = tmp_path / "nowhere"
    elif path.is_dir():
        for child in sorted(path.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        path.rmdir()
    else:
        path.unlink()
    with pytest.raises(UserError, match=re.escape(str(path))):
        load(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_malformed_files_name_the_path(tmp_path):
    root = make_coco(tmp_path / "coco")
    path = root / "annotations" / "instances_test.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match=re.escape(f"cannot read COCO annotations {path}")):
        load(root, tmp_path / "out")

    root = make_coco(tmp_path / "b")
    image = root / "train" / "c.png"
    Image.new("RGB", (21, 20)).save(image)
    with pytest.raises(UserError, match=re.escape(f"COCO image {image} is 21x20 but")):
        load(root, tmp_path / "out")
    image.write_bytes(b"not a png")
    with pytest.raises(UserError, match=re.escape(f"cannot read COCO image {image}")):
        load(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    other = coco_test_json()
    other["categories"][0]["name"] = "wolf"
    root = make_coco(tmp_path / "c", test=other)
    with pytest.raises(UserError, match="instances_test.json: categories differ from"):
        load(root, tmp_path / "out")


def test_bad_val_fraction(tmp_path):
    root = make_coco(tmp_path / "coco")
    with pytest.raises(UserError, match="val_fraction"):
        load(root, tmp_path / "out", val_fraction=1.0)
    with pytest.raises(UserError, match="leaves an empty split"):
        load(root, tmp_path / "out", val_fraction=0.01)


def _captions_by_name(out) -> dict[str, list[str]]:
    return {name: table.column("captions")[row].as_py() for name, (_, table, row) in _rows_by_fill(out).items()}


def test_captions_fill_the_rows_in_file_order_and_an_uncaptioned_image_is_said(tmp_path, capsys):
    make_coco(tmp_path / "coco")
    load(tmp_path / "coco", tmp_path / "out")
    captions = _captions_by_name(tmp_path / "out")
    assert captions["a"] == ["A wide picture with a dog and a bird.", "two animals on grey", "A dog, left of a bird"]
    assert captions["b"] == ["A cat holding a small bird.", "A cat and a bird"]  # whitespace runs: one space
    assert captions["c"] == ["An empty grey picture."]  # no objects, yet captioned
    assert captions["d"] == ["A tall image with one small cat.", "a cat at the bottom", "Cat.", "A picture of a cat",
                             "tall and grey"]
    assert (captions["t1"], captions["t2"]) == (["A cat fills the whole image.", "a big cat"], [])
    out = capsys.readouterr().out
    path = tmp_path / "coco" / "annotations" / "captions_test.json"
    assert out.splitlines() == [f"coco: 1 of the 2 test images have no caption in {path}"]


@pytest.mark.parametrize("present", [(), ("train",)])
def test_a_missing_captions_file_leaves_captions_empty_and_is_said_once(tmp_path, capsys, present):
    make_coco(tmp_path / "coco", captions=present)
    load(tmp_path / "coco", tmp_path / "out")
    captions = _captions_by_name(tmp_path / "out")
    for name in "abcd":
        assert bool(captions[name]) == ("train" in present), name
    assert captions["t1"] == captions["t2"] == []
    lines = capsys.readouterr().out.splitlines()
    missing = [tmp_path / "coco" / "annotations" / f"captions_{n}.json" for n in ("train", "test") if n not in present]
    assert len(lines) == 1 and lines[0].startswith(f"coco: no captions file {' or '.join(map(str, missing))}: ")
    assert "captions stay empty" in lines[0]


def test_validate_captions_returns_them_by_image():
    data = coco_captions_json(TRAIN_IMAGES)
    assert validate_captions(data, "captions_train.json") == {
        i: [" ".join(c.split()) for c in CAPTIONS[i]] for i, *_ in TRAIN_IMAGES.values()
    }
    assert validate_captions(coco_captions_json(TEST_IMAGES), "f.json")[2] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"][0].update(caption=5), "annotation 1000: caption 5 is not a non-empty string"),
        (lambda d: d["annotations"][1].update(caption=" \n "), "annotation 1001: caption ' \\n ' is not a non-empty"),
        (lambda d: d["annotations"][2].update(image_id=999), "annotation 1002: image_id 999 is not in images"),
        (lambda d: d["annotations"][3].update(id=1000), "annotation id 1000 appears twice"),
        (lambda d: d["annotations"][3].pop("id"), "malformed annotation"),
        (lambda d: d["images"].append({"id": 101}), "image id 101 appears twice"),
        (lambda d: d.pop("annotations"), "not a COCO captions file (no 'annotations' list)"),
    ],
)
def test_bad_captions_are_one_line_naming_file_and_annotation_and_write_nothing(tmp_path, change, message):
    root = make_coco(tmp_path / "coco")
    data = coco_captions_json(TRAIN_IMAGES)
    change(data)
    path = root / "annotations" / "captions_train.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load(root, tmp_path / "out")
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    path.write_text("{not json")
    with pytest.raises(UserError, match=re.escape(f"cannot read COCO captions {path}")):
        load(root, tmp_path / "out")
