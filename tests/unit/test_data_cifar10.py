"""CIFAR-10 from tiny pickled batches in the python version's format, its error messages, and the
CIFAR-10 stand-in written as the loader writes it."""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from components.config import parse_params
from components.data.cifar10 import CLASS_NAMES, TEST_FILE, TRAIN_FILES, load_cifar10
from components.data.schema import CLASSIFICATION, SPLITS, decode_images, read_meta, read_split
from components.data.synthetic import (
    CIFAR10_TEST_IMAGES,
    CIFAR10_TRAIN_IMAGES,
    build_synthetic_cifar10,
    cifar10_source_count,
)
from components.errors import UserError

PER_BATCH, NUM_TEST = 12, 10  # 5 x 12 = 60 training images: 6 per class


def _batch(images_hwc: np.ndarray, labels: np.ndarray, name: str) -> dict:
    """A batch dict as CIFAR-10's python version pickles it: bytes keys, planar uint8 rows, a label list."""
    rows = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)
    return {b"batch_label": name.encode(), b"labels": [int(y) for y in labels], b"data": rows,
            b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}


def make_cifar10(folder):
    """Write data_batch_1..5, test_batch and batches.meta (protocol 2, as the Python 2 originals);
    returns {"train": (images (60, 32, 32, 3), labels), "test": (...)} in file order."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    train_images = rng.integers(0, 256, (5 * PER_BATCH, 32, 32, 3), dtype=np.uint8)
    train_labels = np.arange(5 * PER_BATCH) % 10
    for i, name in enumerate(TRAIN_FILES):
        part = slice(i * PER_BATCH, (i + 1) * PER_BATCH)
        (folder / name).write_bytes(pickle.dumps(_batch(train_images[part], train_labels[part], name), protocol=2))
    test_images = rng.integers(0, 256, (NUM_TEST, 32, 32, 3), dtype=np.uint8)
    test_labels = (np.arange(NUM_TEST) * 3) % 10
    (folder / TEST_FILE).write_bytes(pickle.dumps(_batch(test_images, test_labels, TEST_FILE), protocol=2))
    meta = {b"num_cases_per_batch": PER_BATCH, b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train": (train_images, train_labels), "test": (test_images, test_labels)}


def _load(tmp_path, out="out", seed=0, image_size=32, root=None):
    root = tmp_path / "cifar-10-batches-py" if root is None else root
    return load_cifar10(root, tmp_path / out, seed=seed, image_size=image_size, val_fraction=0.5)


def test_loads_values_splits_and_meta(tmp_path):
    data = make_cifar10(tmp_path / "cifar-10-batches-py")
    meta = _load(tmp_path)
    assert (meta.name, meta.task, meta.height, meta.width, meta.channels) == ("cifar10", "classification", 32, 32, 3)
    assert meta.class_names == CLASS_NAMES
    assert meta.sizes == {"train": 30, "val": 30, "test": NUM_TEST}
    assert read_meta(tmp_path / "out") == meta
    tables = {split: read_split(tmp_path / "out", split) for split in SPLITS}
    for split, source in (("train", "train"), ("val", "train"), ("test", "test")):
        assert tables[split].schema.equals(CLASSIFICATION)
        ids = np.array(tables[split].column("id").to_pylist())
        images, labels = data[source]
        np.testing.assert_array_equal(decode_images(tables[split]), images[ids])  # planar rows -> HWC, unchanged
        np.testing.assert_array_equal(tables[split].column("label").to_pylist(), labels[ids])
    train, val = (set(tables[s].column("id").to_pylist()) for s in ("train", "val"))
    assert not train & val and train | val == set(range(5 * PER_BATCH))
    for split in ("train", "val"):  # stratified: 6 of each class split 3 / 3
        assert np.bincount(tables[split].column("label").to_pylist(), minlength=10).tolist() == [3] * 10
    assert tables["test"].column("id").to_pylist() == list(range(NUM_TEST))


def test_64_px_is_a_bilinear_upsampling_and_the_parent_folder_works(tmp_path):
    data = make_cifar10(tmp_path / "cifar-10-batches-py")
    meta = _load(tmp_path, image_size=64, root=tmp_path)  # the folder holding cifar-10-batches-py
    assert (meta.height, meta.width, meta.channels) == (64, 64, 3)
    table = read_split(tmp_path / "out", "test")
    first = np.asarray(Image.fromarray(data["test"][0][0]).resize((64, 64), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(decode_images(table)[0], first)


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        _load(tmp_path, name, seed)
    a, b, c = ({p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "abc")
    assert a == b
    assert a["val.parquet"] != c["val.parquet"] and a["test.parquet"] == c["test.parquet"]


def test_missing_folder_and_missing_file_are_one_line_naming_the_path(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"CIFAR-10 folder not found: {tmp_path / 'cifar-10-batches-py'}")):
        _load(tmp_path)
    make_cifar10(tmp_path / "cifar-10-batches-py")
    for name in ("data_batch_4", "batches.meta"):
        missing = tmp_path / "cifar-10-batches-py" / name
        missing.unlink()
        with pytest.raises(UserError) as info:
            _load(tmp_path)
        assert str(info.value).startswith(f"CIFAR-10 file not found: {missing} ") and "\n" not in str(info.value)
        make_cifar10(tmp_path / "cifar-10-batches-py")
    assert not (tmp_path / "out").exists()


def test_a_pickle_that_builds_other_objects_is_refused(tmp_path):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": os.getcwd}))  # would construct a function on load
    with pytest.raises(UserError, match=re.escape(f"{path}: not a CIFAR-10 python batch file (refusing to load")):
        _load(tmp_path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(UserError, match=re.escape(f"{path}: not a CIFAR-10 python batch file")):
        _load(tmp_path)


@pytest.mark.parametrize(("change", "message"), [
    ({b"data": np.zeros((10, 1024), np.uint8)}, "'data' is uint8 (10, 1024), expected uint8 (N, 3072)"),
    ({b"data": np.zeros((10, 3072), np.float32)}, "'data' is float32 (10, 3072), expected uint8 (N, 3072)"),
    ({b"labels": [0] * 9}, "10 images but 'labels' is int64 (9,)"),
    ({b"labels": [10] * 10}, "a label outside 0..9 (10..10)"),
])
def test_malformed_batches_name_the_file(tmp_path, change, message):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = {**pickle.loads(path.read_bytes()), **change}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(UserError, match=re.escape(f"{path}: {message}")):
        _load(tmp_path)


# --- the stand-in ---------------------------------------------------------------------------------------------


def _standin(out, seed=0, fraction=0.004, image_size=32):
    return build_synthetic_cifar10(out, seed=seed, image_size=image_size, val_fraction=0.1, fraction=fraction)


def test_real_scale_counts_and_small_fractions():
    assert cifar10_source_count(1.0, 0.1) == CIFAR10_TRAIN_IMAGES == 50_000 and CIFAR10_TEST_IMAGES == 10_000
    assert cifar10_source_count(1e-6, 0.1) == 91  # sklearn: ceil(0.1 n) >= 10 val and train, one per class


def test_stand_in_is_written_as_the_loader_writes(tmp_path):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    real = _load(tmp_path, "real")
    meta = _standin(tmp_path / "standin")
    assert meta.sizes == {"train": 180, "val": 20, "test": 40}
    for field in ("name", "task", "class_names", "height", "width", "channels", "ignore_index"):
        assert getattr(meta, field) == getattr(real, field), field
    for split in SPLITS:
        table = read_split(tmp_path / "standin", split)
        assert table.schema.equals(read_split(tmp_path / "real", split).schema)
        labels = np.array(table.column("label").to_pylist())
        np.testing.assert_array_equal(labels, np.array(table.column("id").to_pylist()) % 10)
        assert decode_images(table).shape == (meta.sizes[split], 32, 32, 3)
    assert _standin(tmp_path / "big", image_size=64).height == 64
    assert decode_images(read_split(tmp_path / "big", "test")).shape[1:] == (64, 64, 3)


def test_stand_in_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        _standin(tmp_path / name, seed=seed, fraction=0.002)
    a, b, c = ({p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "abc")
    assert a == b and a["train.parquet"] != c["train.parquet"]


def test_stand_in_class_is_in_the_shape_not_the_colour(tmp_path):
    """Mean colours do not tell the classes apart, and a small CNN learns them from 1,800 images."""
    from components.families.generative.base import load_split
    from components.families.generative.evaluator import Evaluator, EvaluatorTraining, train_evaluator

    _standin(tmp_path / "c", fraction=0.04)
    splits = {split: load_split(tmp_path / "c", split).tensors for split in SPLITS}
    images, labels = splits["train"]
    means = torch.stack([images[labels == c].mean((0, 2, 3)) for c in range(10)])
    assert float(means.std(0).max()) < 0.03
    torch.manual_seed(0)
    net = Evaluator(3, 10, 32, [16, 32, 32], 32, 0.0)
    config = EvaluatorTraining(epochs=6, batch_size=32, lr=0.005, weight_decay=0.0, warmup_fraction=0.05, max_shift=2)
    result = train_evaluator(net, splits, config, seed=0, on_epoch=lambda epoch, metrics: None)
    assert result["test/accuracy"] > 0.8


def test_prepare_builds_cifar10_only_when_asked_and_refuses_synthetic_with_a_root(tmp_path, tiny_params):
    from pipelines import prepare

    params = tiny_params
    params["data"]["root"] = str(tmp_path / "data")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    prepare.main(["--params", str(path)])
    assert not (tmp_path / "data" / "cifar10").exists()  # the default pipeline builds no CIFAR
    params["data"]["cifar10"].update(synthetic=True, synthetic_fraction=0.002, image_size=64)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    prepare.main(["--params", str(path)])
    meta = read_meta(tmp_path / "data" / "cifar10")
    assert (meta.sizes, meta.height, meta.channels) == ({"train": 90, "val": 10, "test": 20}, 64, 3)
    params["data"]["cifar10"]["root"] = str(tmp_path / "source")
    with pytest.raises(UserError, match=r"^params\.yaml: data\.cifar10\.synthetic: true generates a stand-in .* "
                                        r"data\.cifar10\.root is set"):
        parse_params(params)
