"""The embedded classification dataset: scikit-learn's bundled handwritten digits.

``load_digits()`` ships 1,797 real 8x8 grey images (values 0..16) inside scikit-learn, so the
embedded default needs no download. Splits are stratified by class and seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from components.data.schema import (
    CLASSIFICATION,
    SPLITS,
    DatasetMeta,
    classification_columns,
    write_meta,
    write_split,
)
from components.errors import UserError
from components.io import atomic_directory

NATIVE_SIZE = 8
CLASS_NAMES = [str(d) for d in range(10)]


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: images ``float32`` (N, 8, 8) in [0, 1] and labels ``int64`` (N,) in 0..9."""
    data = load_digits()
    return (data.images / data.images.max()).astype(np.float32), data.target.astype(np.int64)


def split_digit_ids(seed: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """Stratified, seeded train/val/test split: per split the indices (int64) into ``load_digit_images()``.

    ``val_fraction`` and ``test_fraction`` are fractions of all digits; the splits are disjoint.
    """
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise UserError(
            f"digits: val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be > 0 "
            "with a sum below 1; fix them in params.yaml"
        )
    _, labels = load_digit_images()
    ids = np.arange(len(labels))
    rest, test = train_test_split(ids, test_size=test_fraction, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
    )
    return {"train": train.astype(np.int64), "val": val.astype(np.int64), "test": test.astype(np.int64)}


def split_digits(
    seed: int, val_fraction: float, test_fraction: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split: images ``float32`` (N, 8, 8) in [0, 1] and labels ``int64`` (N,), as ``split_digit_ids``."""
    images, labels = load_digit_images()
    return {
        split: (images[ids], labels[ids])
        for split, ids in split_digit_ids(seed, val_fraction, test_fraction).items()
    }


def resize_float(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a ``float32`` (H, W) image to (size, size), values kept in the input's range."""
    if image.shape == (size, size):
        return image
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Map intensities in [0, 1] to ``uint8`` 0..255 (rounded)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def build_digits(
    out_dir: Path, *, seed: int, image_size: int, val_fraction: float, test_fraction: float
) -> DatasetMeta:
    """Write the digits as ``{train,val,test}.parquet`` (``CLASSIFICATION``) and ``meta.json``.

    Images are ``uint8`` (image_size, image_size, 1), 0..255; ``image_size`` 8 is native, larger
    sizes are bilinear upsamplings. Row ids are indices into ``load_digit_images()``.
    ``out_dir`` is replaced whole on success.
    """
    if image_size < NATIVE_SIZE:
        raise UserError(f"digits: image_size ({image_size}) must be >= {NATIVE_SIZE}; fix it in params.yaml")
    images, labels = load_digit_images()
    split_ids = split_digit_ids(seed, val_fraction, test_fraction)
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            ids = split_ids[split]
            pixels = np.stack([to_uint8(resize_float(images[i], image_size)) for i in ids])[..., None]
            write_split(
                classification_columns(ids, pixels, labels[ids]), CLASSIFICATION, tmp / f"{split}.parquet"
            )
        meta = DatasetMeta(
            name="digits",
            task="classification",
            class_names=CLASS_NAMES,
            height=image_size,
            width=image_size,
            channels=1,
            source=f"sklearn.datasets.load_digits (seed={seed})",
            sizes={split: len(split_ids[split]) for split in SPLITS},
        )
        write_meta(meta, tmp)
    return meta
