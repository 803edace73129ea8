"""The synthetic stand-ins of VOC, COCO and MNIST: real sizes, the real loaders' format, learnable objects."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from components.config import parse_params
from components.data import coco, synthetic, voc
from components.data.digits import load_digit_images
from components.data.schema import (
    CLASSIFICATION,
    DENSE,
    DENSE_CROWD,
    SPLITS,
    decode_images,
    decode_semantic_masks,
    mask_box,
    read_meta,
    read_split,
)
from components.data.synthetic import base, dense
from components.data.synthetic import coco as synthetic_coco
from components.data.synthetic import mnist as synthetic_mnist
from components.errors import UserError
from tests.unit.test_data_coco import load as load_coco_fixture
from tests.unit.test_data_coco import make_coco
from tests.unit.test_data_mnist import make_mnist
from tests.unit.test_data_voc import make_voc

SIZE = 128  # small images, yet COCO's small objects (< 32x32 px at 640x480) still have pixels


def _voc(out, seed=0, fraction=0.2, image_size=SIZE):
    return synthetic.build_synthetic_voc(out, seed=seed, image_size=image_size, val_fraction=0.1, fraction=fraction)


def _coco(out, seed=0, fraction=0.003, image_size=SIZE, **caps):
    caps = {"max_train_images": None, "max_test_images": None} | caps
    return synthetic.build_synthetic_coco(
        out, seed=seed, image_size=image_size, val_fraction=0.1, fraction=fraction, **caps
    )


def _mnist(out, seed=0, fraction=0.01):
    return synthetic.build_synthetic_mnist(out, seed=seed, val_fraction=0.1, fraction=fraction)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The three stand-ins, a few hundred images each (VOC: 293 train ids + 290 test; COCO: 355 + 15)."""
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "voc": (root / "voc", _voc(root / "voc")),
        "coco": (root / "coco", _coco(root / "coco")),
        "mnist": (root / "mnist", _mnist(root / "mnist")),
    }


def _objects(directory):
    """Every (split, row, image, semantic mask, boxes, labels, instance masks) of a dense stand-in."""
    for split in SPLITS:
        table = read_split(directory, split)
        images, semantic = decode_images(table), decode_semantic_masks(table)
        h, w = semantic.shape[1:]
        for row, (boxes, labels, masks) in enumerate(
            zip(*(table.column(c).to_pylist() for c in ("boxes", "labels", "instance_masks")), strict=True)
        ):
            masks = [np.frombuffer(m, np.uint8).reshape(h, w) for m in masks]
            yield split, row, images[row], semantic[row], boxes, labels, masks


# --- sizes -------------------------------------------------------------------------------------------------


def test_real_scale_counts_are_the_real_datasets():
    assert synthetic.voc_counts(1.0, 0.1) == {"train": 1318, "val": 146, "test": 1449}
    assert synthetic.coco_counts(1.0, 0.1, None, None) == {"train": 106458, "val": 11829, "test": 5000}
    assert synthetic.coco_counts(1.0, 0.1, 20000, None) == {"train": 18000, "val": 2000, "test": 5000}
    assert synthetic.coco_counts(1.0, 0.1, 20000, 300) == {"train": 18000, "val": 2000, "test": 300}
    assert synthetic.mnist_source_count(1.0, 0.1) == 60000


def test_a_fraction_scales_every_split_but_keeps_them_non_empty():
    assert synthetic.voc_counts(0.1, 0.1) == {"train": 131, "val": 15, "test": 145}
    assert synthetic.coco_counts(0.01, 0.1, 20000, None) == {"train": 1065, "val": 118, "test": 50}
    assert synthetic.voc_counts(1e-6, 0.1) == {"train": 5, "val": 1, "test": 1}  # round(0.5) is 0: 6 ids
    assert synthetic.coco_counts(1e-6, 0.5, None, None) == {"train": 1, "val": 1, "test": 1}
    assert synthetic.mnist_source_count(1e-6, 0.1) == 91  # sklearn: ceil(0.1 n) >= 10 val and train, one per class


def test_a_cap_that_empties_a_split_names_the_keys():
    with pytest.raises(UserError, match=r"data\.coco\.val_fraction \(or data\.coco\.max_train_images\)"):
        synthetic.coco_counts(1.0, 0.1, 4, None)


def test_built_sizes_follow_the_counts(built):
    assert built["voc"][1].sizes == synthetic.voc_counts(0.2, 0.1)
    assert built["coco"][1].sizes == synthetic.coco_counts(0.003, 0.1, None, None)
    assert built["mnist"][1].sizes == {"train": 540, "val": 60, "test": 100}
    for directory, meta in built.values():
        assert {split: read_split(directory, split).num_rows for split in SPLITS} == meta.sizes


def test_caps_apply_to_the_built_coco(tmp_path):
    meta = _coco(tmp_path / "coco", fraction=1.0, image_size=32, max_train_images=20, max_test_images=3)
    assert meta.sizes == {"train": 18, "val": 2, "test": 3}


# --- the real loaders' format ----------------------------------------------------------------------------


def _same_format(stand_in, real):
    """Same files, Parquet schemas and meta fields as a real loader's output (values may differ)."""
    assert sorted(p.name for p in stand_in.iterdir()) == sorted(p.name for p in real.iterdir())
    for split in SPLITS:
        assert read_split(stand_in, split).schema.remove_metadata() == read_split(real, split).schema.remove_metadata()
    mine, theirs = read_meta(stand_in), read_meta(real)
    assert (mine.task, mine.channels, mine.ignore_index) == (theirs.task, theirs.channels, theirs.ignore_index)
    assert mine.languages == theirs.languages and set(mine.sizes) == set(theirs.sizes)


def test_voc_is_written_as_the_voc_loader_writes(built, tmp_path):
    voc.load_voc_segmentation(
        make_voc(tmp_path / "devkit").parent, tmp_path / "real", image_size=24, val_fraction=0.5, seed=0
    )
    directory, meta = built["voc"]
    _same_format(directory, tmp_path / "real")
    assert read_split(directory, "train").schema.remove_metadata() == DENSE
    assert len(meta.class_names) == len(voc.CLASS_NAMES) == 21 and meta.ignore_index == voc.IGNORE_INDEX
    assert (meta.height, meta.width, meta.channels) == (SIZE, SIZE, 3)
    assert meta.class_names[:4] == ["background", "0-red", "0-green", "1-red"]


def test_coco_is_written_as_the_coco_loader_writes(built, tmp_path):
    load_coco_fixture(make_coco(tmp_path / "source"), tmp_path / "real")
    directory, meta = built["coco"]
    _same_format(directory, tmp_path / "real")
    assert read_split(directory, "train").schema.remove_metadata() == DENSE_CROWD
    assert len(meta.class_names) == 81 and meta.ignore_index == coco.IGNORE_INDEX
    assert (meta.height, meta.width, meta.channels) == (SIZE, SIZE, 3)
    assert meta.class_names[-1] == "9-black"
    for split in SPLITS:
        flags = read_split(directory, split).column("iscrowd").to_pylist()
        assert all(flag == 0 for row in flags for flag in row)


def _instances_json_hold_the_rows(directory, meta) -> list[dict]:
    """Each split's ``instances_{val,test}.json`` validates and lists the Parquet rows' boxes and
    labels in order; returns every split's annotations."""
    annotations = []
    for split in ("val", "test"):
        data = json.loads((directory / f"instances_{split}.json").read_text())
        coco.validate_coco(data, split)
        assert [c["name"] for c in data["categories"]] == meta.class_names[1:]
        table = read_split(directory, split)
        rows = [
            (row, box, label)
            for row, (boxes, labels) in enumerate(
                zip(table.column("boxes").to_pylist(), table.column("labels").to_pylist(), strict=True)
            )
            for box, label in zip(boxes, labels, strict=True)
        ]
        assert [(a["image_id"], a["bbox"], a["category_id"]) for a in data["annotations"]] == [
            (row, [x0, y0, x1 - x0, y1 - y0], label) for row, (x0, y0, x1, y1), label in rows
        ]
        assert len(data["images"]) == meta.sizes[split]
        annotations += data["annotations"]
    return annotations


def test_coco_instances_json_hold_the_rows(built):
    _instances_json_hold_the_rows(*built["coco"])


def test_mnist_is_written_as_the_mnist_loader_writes(built, tmp_path):
    make_mnist(tmp_path / "source")
    from components.data.mnist import load_mnist

    load_mnist(tmp_path / "source", tmp_path / "real", seed=0, val_fraction=0.5)
    directory, meta = built["mnist"]
    _same_format(directory, tmp_path / "real")
    assert read_split(directory, "train").schema.remove_metadata() == CLASSIFICATION
    assert (meta.class_names, meta.height, meta.width, meta.channels) == ([str(d) for d in range(10)], 28, 28, 1)
    labels = read_split(directory, "train").column("label").to_numpy()
    assert np.bincount(labels).tolist() == [54] * 10  # balanced and stratified


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, build in (("voc", _voc), ("coco", _coco), ("mnist", _mnist)):
        small = {
            "voc": {"fraction": 0.01, "image_size": 32},
            "coco": {"fraction": 0.0002, "image_size": 32},
            "mnist": {"fraction": 0.002},
        }[name]
        files = []
        for out, seed in (("a", 0), ("b", 0), ("c", 1)):
            build(tmp_path / name / out, seed=seed, **small)
            files.append({p.name: p.read_bytes() for p in (tmp_path / name / out).iterdir()})
        assert files[0] == files[1], name
        assert files[0]["train.parquet"] != files[2]["train.parquet"], name


# --- the objects ---------------------------------------------------------------------------------------------


def test_objects_per_image_are_the_real_datasets(built):
    for name, real in (("voc", synthetic.VOC_OBJECTS_PER_IMAGE), ("coco", synthetic.COCO_OBJECTS_PER_IMAGE)):
        counts = [len(labels) for *_, labels, _ in _objects(built[name][0])]
        assert len(counts) >= 300
        assert abs(np.mean(counts) - real) < 0.1 * real, (name, np.mean(counts))


def test_coco_object_sizes_are_spread_as_coco(built):
    areas = np.array([m.sum() for *_, masks in _objects(built["coco"][0]) for m in masks])
    at_coco_scale = areas * synthetic.COCO_REFERENCE_AREA / SIZE**2
    shares = [
        np.mean(at_coco_scale < 32**2),
        np.mean((at_coco_scale >= 32**2) & (at_coco_scale < 96**2)),
        np.mean(at_coco_scale >= 96**2),
    ]
    assert np.allclose(shares, [0.41, 0.34, 0.24], atol=0.05), shares


def test_boxes_are_the_tight_boxes_of_disjoint_masks_the_semantic_mask_shows(built):
    for name in ("voc", "coco"):
        for split, row, _, semantic, boxes, labels, masks in _objects(built[name][0]):
            assert len(boxes) == len(labels) == len(masks)
            for box, label, mask in zip(boxes, labels, masks, strict=True):
                assert mask.any() and box == mask_box(mask), (name, split, row)
                assert 1 <= label <= 80 and (semantic[mask > 0] == label).all()
            if masks:
                assert np.sum(masks, axis=0).max() == 1  # visible parts: an occluded object loses its hidden pixels


def test_voc_masks_have_a_boundary_band_and_coco_masks_none(built):
    for split, row, _, semantic, _, _, masks in _objects(built["voc"][0]):
        band = semantic == voc.IGNORE_INDEX
        assert band.any(), (split, row)
        covered = np.sum(masks, axis=0) > 0 if masks else np.zeros_like(band)
        assert not (band & covered).any()  # instance masks leave the band out, as SegmentationObject does
        assert band.mean() < 0.2
    assert all((semantic != coco.IGNORE_INDEX).all() for *_, semantic, _, _, _ in _objects(built["coco"][0]))


def test_voc_band_is_about_five_pixels_at_512():
    owner = np.full((512, 512), -1, np.int16)
    owner[100:300, 100:300] = 0
    band = dense._band(owner, round(synthetic.VOC_BOUNDARY * 512))
    assert band[200].sum() == 2 * 5  # a straight edge on each side, 5 px wide


def test_images_are_colour_and_textured(built):
    for name in ("voc", "coco"):
        images = decode_images(read_split(built[name][0], "test"))
        assert images.shape[-1] == 3 and images.std() > 20
        assert (images[..., 0] != images[..., 1]).mean() > 0.5  # not grey


def test_mnist_samples_are_jittered_not_copies(built):
    images = decode_images(read_split(built["mnist"][0], "train"))
    assert len({im.tobytes() for im in images}) == len(images)
    assert images[:, 0].mean() < 0.1 * images.mean() and images.max() == 255  # MNIST-like: dark border, bright digit


def test_each_split_draws_only_its_own_digits(tmp_path, monkeypatch):
    """Train, val and test images draw on disjoint digits: val and test digits are unseen in training."""
    images, _ = load_digit_images()
    index = {im.tobytes(): i for i, im in enumerate(images)}
    used = {split: set() for split in SPLITS}
    current = {}
    write_dense, patch, jittered = synthetic_coco._write_dense, dense._patch, synthetic_mnist._jittered

    def recording_write(path, *args, **kwargs):
        current["split"] = path.stem
        return write_dense(path, *args, **kwargs)

    def recording_patch(rng, digit, *args):
        used[current["split"]].add(index[digit.tobytes()])
        return patch(rng, digit, *args)

    monkeypatch.setattr(synthetic_coco, "_write_dense", recording_write)
    monkeypatch.setattr(dense, "_patch", recording_patch)
    _coco(tmp_path / "coco", fraction=0.0005, image_size=32)
    pools = base._digits(0).pools
    for split in SPLITS:
        assert used[split] and used[split] <= set(pools[split].tolist()), split
    assert not used["test"] & (set(pools["train"].tolist()) | set(pools["val"].tolist()))

    batches = []
    recording_jittered = lambda rng, digits: batches.append(digits) or jittered(rng, digits)  # noqa: E731
    monkeypatch.setattr(synthetic_mnist, "_jittered", recording_jittered)
    meta = _mnist(tmp_path / "mnist")
    drawn = [index[d.tobytes()] for d in np.concatenate(batches)]
    bounds = np.cumsum([0, *(meta.sizes[split] for split in SPLITS)])
    for split, start, stop in zip(SPLITS, bounds, bounds[1:], strict=False):
        assert set(drawn[start:stop]) <= set(pools[split].tolist()), split


# --- the COCO stand-in's captions ------------------------------------------------------------------------------


def _captioned(directory):
    """Every (captions, boxes, labels, instance masks) of the COCO stand-in's rows."""
    captions = {split: read_split(directory, split, columns=["captions"]).column("captions").to_pylist()
                for split in SPLITS}
    for split, row, _, _, boxes, labels, masks in _objects(directory):
        yield captions[split][row], boxes, labels, masks


def test_coco_captions_are_five_per_image_and_as_long_as_cocos(built):
    from components.families.sequence.batches import caption_tokens

    captions = [c for caps, *_ in _captioned(built["coco"][0]) for c in caps]
    assert len(captions) == 5 * sum(built["coco"][1].sizes.values())
    words = np.array([sum(t != "," for t in caption_tokens(c)) for c in captions])
    assert 10 <= words.mean() <= 12 and words.min() >= 6 and words.max() >= 18, (words.mean(), words.min())
    assert all(c[0].isupper() for c in captions) and 0.7 < np.mean([c.endswith(".") for c in captions]) < 0.95
    assert len(set(captions)) > 0.8 * len(captions)  # each in its own words
    assert len({t for c in captions for t in caption_tokens(c)}) > 100


def test_coco_captions_are_true_of_the_image(built):
    """A lone object is named by colour and digit in every caption, the largest object of a busier
    image in at least one, and an empty image's captions name no digit."""
    colours = list(synthetic.COLOURS)[:8]
    seen = set()
    for caps, _, labels, masks in _captioned(built["coco"][0]):
        text = " ".join(caps).lower()
        if not labels:
            assert not any(ch.isdigit() for ch in text), caps
            seen.add("empty")
            continue
        named = [f"{colours[(label - 1) % 8]} {(label - 1) // 8}" for label in labels]
        largest = named[int(np.argmax([m.sum() for m in masks]))]
        if len(labels) == 1:
            assert all(largest in c.lower() for c in caps), caps
            seen.add("one")
        else:
            assert largest in text, (largest, caps)
            seen.add("more")
    assert seen == {"empty", "one", "more"}


def test_coco_captions_leave_images_and_annotations_as_they_were(tmp_path, monkeypatch):
    """The captions draw on their own generator: without them every other byte is the same."""
    _coco(tmp_path / "with", fraction=0.0005, image_size=32)
    monkeypatch.setattr(synthetic_coco, "scene_captions", lambda *args: [])
    _coco(tmp_path / "without", fraction=0.0005, image_size=32)
    for split in SPLITS:
        with_, without = (read_split(tmp_path / d, split) for d in ("with", "without"))
        assert all(with_.column("captions").to_pylist()) and not any(without.column("captions").to_pylist())
        assert with_.drop_columns(["captions"]).equals(without.drop_columns(["captions"])), split
    for name in ("instances_val.json", "instances_test.json", "meta.json"):
        assert (tmp_path / "with" / name).read_bytes() == (tmp_path / "without" / name).read_bytes()


# --- params and the prepare stage -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["voc", "coco", "mnist"])
def test_synthetic_with_a_root_is_one_line_naming_both_keys(tmp_path, tiny_params, name):
    params = tiny_params
    params["data"][name].update(synthetic=True, root=str(tmp_path / "source"))
    with pytest.raises(UserError) as info:
        parse_params(params)
    assert str(info.value) == (
        f"params.yaml: data.{name}.synthetic: true generates a stand-in and reads no files, but data.{name}.root "
        f"is set: set data.{name}.root to null or data.{name}.synthetic to false (got '{tmp_path / 'source'}')"
    )


def test_a_root_inside_data_root_with_synthetic_names_synthetic_first(tiny_params):
    params = tiny_params
    params["data"]["voc"].update(synthetic=True, root="data/voc")
    with pytest.raises(UserError, match=r"data\.voc\.synthetic: true generates a stand-in"):
        parse_params(params)


def test_a_stand_in_has_no_source_root(tiny_params):
    params = tiny_params
    for name in ("voc", "coco", "mnist"):
        params["data"][name].update(synthetic=True, synthetic_fraction=0.5)
    assert parse_params(params).data.source_roots() == {}


@pytest.mark.parametrize("fraction", [0, 1.5])
def test_synthetic_fraction_is_in_zero_one(tiny_params, fraction):
    params = tiny_params
    params["data"]["coco"]["synthetic_fraction"] = fraction
    with pytest.raises(UserError, match=r"data\.coco\.synthetic_fraction"):
        parse_params(params)


def test_prepare_writes_the_stand_ins(tmp_path, tiny_params, capsys):
    params = tiny_params
    params["data"]["root"] = str(tmp_path / "data")
    params["data"]["voc"].update(synthetic=True, synthetic_fraction=0.005, image_size=32)
    params["data"]["coco"].update(synthetic=True, synthetic_fraction=0.0002, image_size=32)
    params["data"]["mnist"].update(synthetic=True, synthetic_fraction=0.002)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    from pipelines import prepare

    prepare.main(["--params", str(tmp_path / "params.yaml")])
    metas = {name: read_meta(tmp_path / "data" / name) for name in ("voc", "coco", "mnist")}
    assert metas["voc"].sizes == synthetic.voc_counts(0.005, 0.1) == {"train": 6, "val": 1, "test": 7}
    assert metas["coco"].sizes == synthetic.coco_counts(0.0002, 0.1, 20000, None) == {"train": 22, "val": 2, "test": 1}
    assert metas["mnist"].sizes == {"train": 108, "val": 12, "test": 20}
    assert (metas["voc"].height, metas["coco"].height, metas["mnist"].height) == (32, 32, 28)
    assert (tmp_path / "data" / "coco" / "instances_test.json").is_file()
    assert "prepare: coco: train 22, val 2, test 1" in capsys.readouterr().out


# --- VOC 2007 detection and Multi30k ------------------------------------------------------------------------------


def _voc_detection(out, seed=0, fraction=0.06, image_size=64):
    return synthetic.build_synthetic_voc_detection(
        out, seed=seed, image_size=image_size, val_fraction=0.1, fraction=fraction
    )


def _parallel(out, seed=0, fraction=0.05, source_lang="en", target_lang="de"):
    return synthetic.build_synthetic_parallel(
        out, seed=seed, source_lang=source_lang, target_lang=target_lang, fraction=fraction
    )


@pytest.fixture(scope="module")
def built_more(tmp_path_factory):
    """VOC detection (150 train ids + 151 test) and Multi30k (1,450 + 51 + 50 pairs) stand-ins."""
    root = tmp_path_factory.mktemp("synthetic_more")
    return {
        "voc_detection": (root / "voc_detection", _voc_detection(root / "voc_detection")),
        "parallel": (root / "parallel", _parallel(root / "parallel")),
    }


def test_voc_detection_and_multi30k_counts_are_the_real_datasets():
    assert synthetic.voc_detection_counts(1.0, 0.1) == {"train": 2251, "val": 250, "test": 2510}
    assert synthetic.voc_detection_counts(1e-6, 0.1) == {"train": 5, "val": 1, "test": 1}
    assert synthetic.parallel_counts(1.0) == {"train": 29000, "val": 1014, "test": 1000} == synthetic.MULTI30K_SIZES
    assert synthetic.parallel_counts(0.01) == {"train": 290, "val": 10, "test": 10}
    assert synthetic.parallel_counts(1e-6) == {"train": 1, "val": 1, "test": 1}


def test_voc_detection_and_multi30k_built_sizes_follow_the_counts(built_more):
    assert built_more["voc_detection"][1].sizes == synthetic.voc_detection_counts(0.06, 0.1)
    assert built_more["parallel"][1].sizes == synthetic.parallel_counts(0.05) == {"train": 1450, "val": 51, "test": 50}
    for directory, meta in built_more.values():
        assert {split: read_split(directory, split).num_rows for split in SPLITS} == meta.sizes


def test_voc_detection_is_written_as_the_voc_detection_loader_writes(built_more, tmp_path):
    from components.data.voc_detection import load_voc_detection
    from tests.unit.test_data_voc_detection import make_voc as make_voc_detection

    make_voc_detection(tmp_path / "VOCdevkit")
    load_voc_detection(tmp_path / "VOCdevkit", tmp_path / "real", image_size=20, val_fraction=0.25, seed=0)
    directory, meta = built_more["voc_detection"]
    _same_format(directory, tmp_path / "real")
    real = read_meta(tmp_path / "real")
    assert (meta.name, len(meta.class_names), meta.ignore_index) == (real.name, 21, voc.IGNORE_INDEX)
    for split in SPLITS:
        table = read_split(directory, split)
        assert (decode_semantic_masks(table) == voc.IGNORE_INDEX).all()  # no segmentation, as the loader
        assert all(masks == [] for masks in table.column("instance_masks").to_pylist())
        assert read_split(directory, split).schema.remove_metadata() == DENSE


def test_voc_detection_instances_json_hold_the_rows_without_masks(built_more):
    annotations = _instances_json_hold_the_rows(*built_more["voc_detection"])
    assert all(a["iscrowd"] == 0 and "segmentation" not in a for a in annotations)


def test_voc_detection_objects_per_image_are_voc2007s(built_more):
    counts = [len(labels) for labels in read_split(built_more["voc_detection"][0], "test").column("labels").to_pylist()]
    real = synthetic.VOC2007_OBJECTS_PER_IMAGE
    assert len(counts) >= 150 and abs(np.mean(counts) - real) < 0.1 * real, np.mean(counts)
    assert min(counts) >= 1  # VOC's Main images each hold an object


def test_multi30k_is_written_as_the_parallel_loader_writes(built_more, tmp_path):
    from components.data.translation import load_parallel_corpus
    from tests.unit.test_data_translation import _corpus_files

    _corpus_files(tmp_path / "multi30k", val=True)
    load_parallel_corpus(tmp_path / "multi30k", tmp_path / "real", source_lang="en", target_lang="de", seed=0,
                         val_fraction=0.25)  # fmt: skip
    directory, meta = built_more["parallel"]
    _same_format(directory, tmp_path / "real")
    assert (meta.name, meta.languages) == (read_meta(tmp_path / "real").name, ["en", "de"])
    for split in SPLITS:
        assert read_split(directory, split).column("id").to_pylist() == list(range(meta.sizes[split]))


def test_multi30k_lengths_centre_on_multi30ks_and_no_sentence_repeats(built_more):
    from components.data.text import tokenize

    sources = [s for split in SPLITS for s in read_split(built_more["parallel"][0], split).column("source").to_pylist()]
    lengths = np.array([len(tokenize(s)) for s in sources])
    assert abs(lengths.mean() - synthetic.MULTI30K_MEAN_TOKENS) < 0.4, lengths.mean()
    assert lengths.min() >= 4 and lengths.max() <= 40 and lengths.std() > 3
    assert len(set(sources)) == len(sources)


def test_multi30k_de_en_swaps_the_pairs_and_other_languages_are_refused(tmp_path):
    en_de = _parallel(tmp_path / "en_de", fraction=0.001)
    de_en = _parallel(tmp_path / "de_en", fraction=0.001, source_lang="de", target_lang="en")
    assert de_en.languages == ["de", "en"] and de_en.sizes == en_de.sizes
    a, b = read_split(tmp_path / "en_de", "train"), read_split(tmp_path / "de_en", "train")
    assert a.column("source").to_pylist() == b.column("target").to_pylist()
    with pytest.raises(UserError, match=r"data\.parallel\.source_lang/target_lang are 'en'/'fr'"):
        _parallel(tmp_path / "fr", target_lang="fr")


def test_voc_detection_and_multi30k_same_seed_same_bytes(tmp_path):
    for name, build, small in (("voc_detection", _voc_detection, {"fraction": 0.004, "image_size": 32}),
                               ("parallel", _parallel, {"fraction": 0.002})):  # fmt: skip
        files = []
        for out, seed in (("a", 0), ("b", 0), ("c", 1)):
            build(tmp_path / name / out, seed=seed, **small)
            files.append({p.name: p.read_bytes() for p in (tmp_path / name / out).iterdir()})
        assert files[0] == files[1], name
        assert files[0]["train.parquet"] != files[2]["train.parquet"], name


@pytest.mark.parametrize("name", ["voc_detection", "parallel"])
def test_voc_detection_and_parallel_synthetic_with_a_root_is_refused(tmp_path, tiny_params, name):
    tiny_params["data"][name].update(synthetic=True, root=str(tmp_path / "source"))
    with pytest.raises(UserError, match=rf"data\.{name}\.synthetic: true generates a stand-in .* data\.{name}\.root"):
        parse_params(tiny_params)


def test_prepare_writes_voc_detection_and_multi30k_and_their_tasks_build(tmp_path, tiny_params):
    params = tiny_params
    params["data"]["root"] = str(tmp_path / "data")
    params["data"]["voc_detection"].update(synthetic=True, synthetic_fraction=0.004, image_size=32)
    params["data"]["parallel"].update(synthetic=True, synthetic_fraction=0.002)
    params["detection"]["dataset"], params["translation"]["dataset"] = "voc_detection", "parallel"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    from components.families.detection.task import build_task as build_detection
    from components.families.sequence.translation import build_task as build_translation
    from pipelines import prepare

    prepare.main(["--params", str(tmp_path / "params.yaml")])
    metas = {name: read_meta(tmp_path / "data" / name) for name in ("voc_detection", "parallel")}
    assert metas["voc_detection"].sizes == synthetic.voc_detection_counts(0.004, 0.1) == {
        "train": 9, "val": 1, "test": 10,
    }  # fmt: skip
    assert metas["parallel"].sizes == {"train": 58, "val": 2, "test": 2}
    parsed = parse_params(params)
    for build, section in ((build_detection, parsed.detection), (build_translation, parsed.translation)):
        model = next(iter(section.models.model_dump()))
        datasets = build(model, parsed).datasets()
        assert len(datasets["train"]) == metas[section.dataset].sizes["train"] and datasets["val"][0] is not None
