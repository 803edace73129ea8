"""The embedded digits: stratified, seeded splits and the CLASSIFICATION files written from them."""

from __future__ import annotations

import numpy as np
import pytest

from components.data.digits import build_digits, load_digit_images, split_digit_ids, split_digits
from components.data.schema import SPLITS, decode_images, read_meta, read_split
from components.errors import UserError

FRACTIONS = {"val_fraction": 0.15, "test_fraction": 0.2}


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_splits_are_disjoint_stratified_and_cover_every_digit():
    images, labels = load_digit_images()
    ids = split_digit_ids(seed=0, **FRACTIONS)
    everything = np.concatenate([ids[s] for s in SPLITS])
    assert len(everything) == len(set(everything.tolist())) == len(labels) == 1797
    overall = np.bincount(labels, minlength=10) / len(labels)
    for split, fraction in (("val", 0.15), ("test", 0.2)):
        assert len(ids[split]) == pytest.approx(fraction * len(labels), abs=1)
    for split in SPLITS:
        counts = np.bincount(labels[ids[split]], minlength=10)
        assert (counts > 0).all(), split
        assert np.abs(counts / counts.sum() - overall).max() < 0.01, split  # stratified


def test_split_digits_returns_the_images_and_labels_of_the_ids():
    images, labels = load_digit_images()
    ids = split_digit_ids(seed=3, **FRACTIONS)
    splits = split_digits(seed=3, **FRACTIONS)
    for split in SPLITS:
        x, y = splits[split]
        assert x.dtype == np.float32 and x.shape == (len(ids[split]), 8, 8)
        assert y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_array_equal(x, images[ids[split]])
        np.testing.assert_array_equal(y, labels[ids[split]])


def test_split_depends_on_the_seed_only():
    a, b, c = (split_digit_ids(seed=s, **FRACTIONS) for s in (1, 1, 2))
    for split in SPLITS:
        np.testing.assert_array_equal(a[split], b[split])
    assert not np.array_equal(a["train"], c["train"])


def test_build_digits_native_size_stores_the_scaled_pixels(tmp_path):
    meta = build_digits(tmp_path / "digits", seed=0, image_size=8, **FRACTIONS)
    assert (meta.task, meta.channels, meta.height, meta.width) == ("classification", 1, 8, 8)
    assert meta.class_names == [str(d) for d in range(10)]
    assert read_meta(tmp_path / "digits") == meta
    images, labels = load_digit_images()
    for split in SPLITS:
        table = read_split(tmp_path / "digits", split)
        ids = np.array(table.column("id").to_pylist())
        assert meta.sizes[split] == len(ids)
        pixels = decode_images(table)
        assert pixels.dtype == np.uint8 and pixels.shape == (len(ids), 8, 8, 1)
        np.testing.assert_array_equal(pixels[..., 0], np.round(images[ids] * 255).astype(np.uint8))
        np.testing.assert_array_equal(table.column("label").to_pylist(), labels[ids])


def _bilinear(image, size):
    """Reference bilinear resize with half-pixel centres and clamped edges: (H, H) -> (size, size)."""
    n = image.shape[0]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    rows = image[lo] * (1 - w)[:, None] + image[hi] * w[:, None]
    return rows[:, lo] * (1 - w) + rows[:, hi] * w


def test_build_digits_upsamples_bilinearly(tmp_path):
    meta = build_digits(tmp_path / "d", seed=0, image_size=20, **FRACTIONS)
    assert (meta.height, meta.width) == (20, 20)
    images, _ = load_digit_images()
    table = read_split(tmp_path / "d", "val")
    ids = table.column("id").to_pylist()
    pixels = decode_images(table)
    assert pixels.shape == (len(ids), 20, 20, 1)
    expected = np.stack([np.round(_bilinear(images[i], 20) * 255) for i in ids])
    assert np.abs(pixels[..., 0] - expected).max() <= 1


def test_build_digits_is_byte_identical_for_a_seed(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        build_digits(tmp_path / name, seed=seed, image_size=8, **FRACTIONS)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    assert a["train.parquet"] != c["train.parquet"]


def test_build_digits_rejects_a_size_below_native(tmp_path):
    with pytest.raises(UserError, match="image_size"):
        build_digits(tmp_path / "d", seed=0, image_size=4, **FRACTIONS)
    assert not (tmp_path / "d").exists()
