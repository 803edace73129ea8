"""Real MNIST from the four idx files on local disk (``.gz`` or not), written as ``CLASSIFICATION``.

The idx format: a big-endian ``uint32`` header (magic 2051 and count, rows, cols for images;
magic 2049 and count for labels) followed by ``uint8`` pixels or labels. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
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

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
NUM_CLASSES = 10
FILES = {  # source -> (images, labels)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(root: Path, out_dir: Path, *, seed: int, val_fraction: float) -> DatasetMeta:
    """Write MNIST from ``root`` to ``out_dir`` as ``{train,val,test}.parquet`` and ``meta.json``.

    The 60,000 training digits are split (stratified, seeded) into train and val; the 10,000
    t10k digits are the test split. Images are ``uint8`` (28, 28, 1), 0..255; row ids are indices
    into the source file. ``out_dir`` is replaced whole on success.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"mnist: val_fraction ({val_fraction}) must be in (0, 1); fix it in params.yaml")
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"MNIST folder not found: {root} (set the MNIST root in params.yaml to the folder of idx files)"
        )
    train_images, train_labels = read_idx_pair(root, *FILES["train"])
    test_images, test_labels = read_idx_pair(root, *FILES["t10k"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise UserError(
            f"{root}: train images are {train_images.shape[1:]} but t10k images are {test_images.shape[1:]}"
        )
    ids = np.arange(len(train_labels))
    train_ids, val_ids = train_test_split(
        ids, test_size=val_fraction, stratify=train_labels, random_state=seed
    )
    splits = {
        "train": (train_ids, train_images[train_ids], train_labels[train_ids]),
        "val": (val_ids, train_images[val_ids], train_labels[val_ids]),
        "test": (np.arange(len(test_labels)), test_images, test_labels),
    }
    _, height, width = train_images.shape
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            split_ids, images, labels = splits[split]
            columns = classification_columns(split_ids, images[..., None], labels)
            write_split(columns, CLASSIFICATION, tmp / f"{split}.parquet")
        meta = DatasetMeta(
            name="mnist",
            task="classification",
            class_names=[str(d) for d in range(NUM_CLASSES)],
            height=height,
            width=width,
            channels=1,
            source=f"{root} (seed={seed})",
            sizes={split: len(splits[split][0]) for split in SPLITS},
        )
        write_meta(meta, tmp)
    return meta


def read_idx_pair(root: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8`` (N, rows, cols) and labels ``int64`` (N,) from one idx image/label file pair."""
    images_path, images = read_idx(root, images_name, IMAGE_MAGIC)
    labels_path, labels = read_idx(root, labels_name, LABEL_MAGIC)
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "use files from the same MNIST release"
        )
    if labels.max(initial=0) >= NUM_CLASSES:
        raise UserError(f"{labels_path}: label {labels.max()} is out of range 0..{NUM_CLASSES - 1}")
    return images, labels.astype(np.int64)


def read_idx(root: Path, name: str, magic: int) -> tuple[Path, np.ndarray]:
    """Find ``root/name`` (or ``root/name.gz``) and parse it: (path, ``uint8`` array shaped as its header)."""
    path = next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), None)
    if path is None:
        raise UserError(
            f"MNIST file not found: {root / name} (or {name}.gz); put the four MNIST idx files in {root}"
        )
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise UserError(f"{path}: not a valid gzip file ({err}); download it again") from None
    ndim = 3 if magic == IMAGE_MAGIC else 1
    header_bytes = 4 * (1 + ndim)
    if len(data) < header_bytes:
        raise UserError(
            f"{path}: truncated idx file ({len(data)} bytes, shorter than its {header_bytes}-byte header)"
        )
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if header[0] != magic:
        raise UserError(f"{path}: bad idx magic number {header[0]} (expected {magic}); is it the right file?")
    shape = tuple(int(v) for v in header[1:])
    expected = header_bytes + int(np.prod(shape))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise UserError(
            f"{path}: {problem}: its header promises shape {shape} ({expected} bytes), "
            f"the file has {len(data)} bytes"
        )
    return path, np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(shape)
