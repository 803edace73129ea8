"""MNIST from tiny idx fixtures written byte by byte (one of them gzipped), and its error messages."""

from __future__ import annotations

import gzip
import re
import struct

import numpy as np
import pytest

from components.data.mnist import load_mnist
from components.data.schema import SPLITS, decode_images, read_meta, read_split
from components.errors import UserError

NUM_TRAIN, NUM_TEST = 60, 20


def idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 2051, *images.shape) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def make_mnist(root, num_train=NUM_TRAIN, num_test=NUM_TEST):
    """Write the four idx files (train images gzipped); returns the arrays written."""
    rng = np.random.default_rng(0)
    data = {
        "train": (rng.integers(0, 256, (num_train, 28, 28)), np.arange(num_train) % 10),
        "t10k": (rng.integers(0, 256, (num_test, 28, 28)), (np.arange(num_test) * 3) % 10),
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(data["train"][0]), mtime=0))
    (root / "train-labels-idx1-ubyte").write_bytes(idx_labels(data["train"][1]))
    (root / "t10k-images-idx3-ubyte").write_bytes(idx_images(data["t10k"][0]))
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(data["t10k"][1]))
    return data


def _load(tmp_path, out="out", seed=0):
    return load_mnist(tmp_path / "mnist", tmp_path / out, seed=seed, val_fraction=0.5)


def test_loads_values_splits_and_meta(tmp_path):
    data = make_mnist(tmp_path / "mnist")
    meta = _load(tmp_path)
    assert (meta.task, meta.height, meta.width, meta.channels) == ("classification", 28, 28, 1)
    assert meta.class_names == [str(d) for d in range(10)]
    assert meta.sizes == {"train": 30, "val": 30, "test": 20}
    assert read_meta(tmp_path / "out") == meta
    tables = {split: read_split(tmp_path / "out", split) for split in SPLITS}
    for split, source in (("train", "train"), ("val", "train"), ("test", "t10k")):
        ids = np.array(tables[split].column("id").to_pylist())
        images, labels = data[source]
        np.testing.assert_array_equal(decode_images(tables[split])[..., 0], images[ids])
        np.testing.assert_array_equal(tables[split].column("label").to_pylist(), labels[ids])
    train, val = (set(tables[s].column("id").to_pylist()) for s in ("train", "val"))
    assert not train & val and train | val == set(range(NUM_TRAIN))
    for split in ("train", "val"):  # stratified: 6 of each class split 3 / 3
        assert np.bincount(tables[split].column("label").to_pylist(), minlength=10).tolist() == [3] * 10
    assert tables["test"].column("id").to_pylist() == list(range(NUM_TEST))


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    make_mnist(tmp_path / "mnist")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        _load(tmp_path, name, seed)
    a, b, c = ({p.name: p.read_bytes() for p in (tmp_path / n).iterdir()} for n in "abc")
    assert a == b
    assert a["val.parquet"] != c["val.parquet"] and a["test.parquet"] == c["test.parquet"]


def test_missing_root_and_missing_file_name_the_path(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "mnist"))):
        _load(tmp_path)
    make_mnist(tmp_path / "mnist")
    missing = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"
    missing.unlink()
    with pytest.raises(UserError, match=re.escape(f"MNIST file not found: {missing}")):
        _load(tmp_path)
    assert not (tmp_path / "out").exists()


def test_bad_magic_names_the_file(tmp_path):
    make_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_images(np.zeros((20, 28, 28))))  # an image file where labels belong
    with pytest.raises(UserError, match=re.escape(f"{path}: bad idx magic number 2051 (expected 2049)")):
        _load(tmp_path)


def test_truncated_files_name_the_file(tmp_path):
    make_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=re.escape(f"{path}: truncated")):
        _load(tmp_path)
    path.write_bytes(path.read_bytes()[:10])  # shorter than the header
    with pytest.raises(UserError, match=re.escape(f"{path}: truncated")):
        _load(tmp_path)


def test_broken_gzip_names_the_file(tmp_path):
    make_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(UserError, match=re.escape(f"{path}: not a valid gzip file")):
        _load(tmp_path)


def test_image_label_count_mismatch_names_both_files(tmp_path):
    make_mnist(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_labels(np.arange(NUM_TRAIN - 1) % 10))
    images = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(UserError, match=re.escape(f"{images} holds 60 images but {labels} holds 59 labels")):
        _load(tmp_path)
