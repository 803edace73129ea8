"""Real CIFAR-10 from the python version's batch files on local disk, written as ``CLASSIFICATION``.

``root`` is the folder ``cifar-10-batches-py/`` (or its parent) holding::

    data_batch_1 .. data_batch_5    the 50,000 training images, 10,000 per file
    test_batch                      the 10,000 test images
    batches.meta                    b"label_names": the 10 class names (b"airplane" .. b"truck")

Each batch is a pickled dict: b"data" a ``uint8`` array (N, 3072), one image per row in
channel-planar order (1,024 red values row by row, then green, then blue, 32x32 each), and
b"labels" N class indices 0..9. The pickles hold nothing but such arrays, lists and numbers, so
they are read with an unpickler that refuses any other object. Nothing is downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
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

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
NATIVE_SIZE = 32  # px a side, RGB
NUM_CLASSES = 10
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# What a CIFAR pickle may construct: numpy arrays (written by Python 2 or 3, numpy 1 or 2) and bytes.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}  # fmt: skip


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a CIFAR batch holds only arrays)")
        return super().find_class(module, name)


def batches_folder(root: Path) -> Path:
    """``root`` itself, or ``root/cifar-10-batches-py`` when that holds the batches instead."""
    root = Path(root)
    nested = root / FOLDER
    return nested if not (root / TRAIN_FILES[0]).exists() and nested.is_dir() else root


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with ``str`` keys; a missing or unreadable file is a UserError naming it."""
    if not path.is_file():
        raise UserError(f"CIFAR-10 file not found: {path} (data.cifar10.root must be the {FOLDER} folder "
                        f"holding {', '.join((*TRAIN_FILES, TEST_FILE, META_FILE))})")
    try:
        with path.open("rb") as f:
            data = _ArraysOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise UserError(f"{path}: not a CIFAR-10 python batch file ({err}); use the python version's files") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a CIFAR-10 python batch file (holds a {type(data).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in data.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8`` (N, 32, 32, 3) and labels ``int64`` (N,) from one batch file."""
    batch = read_pickle(path)
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise UserError(f"{path}: no {missing[0]!r} entry (has {', '.join(sorted(batch))}); is it a CIFAR-10 batch?")
    data, labels = batch["data"], np.asarray(batch["labels"])
    side = NATIVE_SIZE**2 * 3
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != side:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: 'data' is {shape}, expected uint8 (N, {side}): 32x32 RGB rows")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise UserError(f"{path}: {len(data)} images but 'labels' is {labels.dtype} {labels.shape}; "
                        "expected one integer label per image")
    if len(labels) and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
        raise UserError(f"{path}: a label outside 0..{NUM_CLASSES - 1} ({labels.min()}..{labels.max()})")
    images = data.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE).transpose(0, 2, 3, 1)  # CHW planes -> HWC
    return np.ascontiguousarray(images), labels.astype(np.int64)


def read_class_names(path: Path) -> list[str]:
    """The 10 class names of ``batches.meta`` (b"label_names")."""
    names = read_pickle(path).get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise UserError(f"{path}: expected {NUM_CLASSES} 'label_names', got {names!r:.80}")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """``uint8`` (N, 32, 32, 3) -> (N, size, size, 3), bilinear (PIL); 32 returns ``images`` as they are."""
    if images.shape[1] == size:
        return images
    out = np.empty((len(images), size, size, images.shape[3]), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return out


def write_cifar10(
    out_dir: Path, splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], *, class_names: list[str],
    image_size: int, source: str,
) -> DatasetMeta:
    """Write ``{split: (ids, uint8 images (N, 32, 32, 3), labels)}`` to ``out_dir`` as ``{train,val,test}.parquet``
    (``CLASSIFICATION``, images resized to ``image_size``) and ``meta.json``; ``out_dir`` is replaced whole
    on success. The real loader and the stand-in both write through here."""
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            ids, images, labels = splits[split]
            columns = classification_columns(ids, resize_images(images, image_size), labels)
            write_split(columns, CLASSIFICATION, tmp / f"{split}.parquet")
        meta = DatasetMeta(
            name="cifar10", task="classification", class_names=list(class_names), height=image_size,
            width=image_size, channels=3, source=source, sizes={split: len(splits[split][0]) for split in SPLITS},
        )  # fmt: skip
        write_meta(meta, tmp)
    return meta


def check_sizes(name: str, image_size: int, val_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise UserError(f"{name}: val_fraction ({val_fraction}) must be in (0, 1); fix data.{name}.val_fraction")
    if image_size < NATIVE_SIZE:
        raise UserError(f"{name}: image_size ({image_size}) must be >= {NATIVE_SIZE}; fix data.{name}.image_size")


def load_cifar10(root: Path, out_dir: Path, *, seed: int, image_size: int, val_fraction: float) -> DatasetMeta:
    """Write CIFAR-10 from ``root`` to ``out_dir`` as ``{train,val,test}.parquet`` and ``meta.json``.

    The 50,000 images of ``data_batch_1..5`` (row ids index them in that order) are split stratified
    and seeded into train and val by ``val_fraction``; the 10,000 of ``test_batch`` are the test
    split. Images are ``uint8`` (image_size, image_size, 3): 32 is native, larger sizes are
    bilinear upsamplings (64 for DCGAN's 64x64). Class names come from ``batches.meta``.
    """
    check_sizes("cifar10", image_size, val_fraction)
    folder = batches_folder(root)
    if not folder.is_dir():
        raise UserError(f"CIFAR-10 folder not found: {folder} (set data.cifar10.root to the {FOLDER} folder)")
    class_names = read_class_names(folder / META_FILE)
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    train_images = np.concatenate([images for images, _ in parts])
    train_labels = np.concatenate([labels for _, labels in parts])
    test_images, test_labels = read_batch(folder / TEST_FILE)
    try:
        train_ids, val_ids = train_test_split(
            np.arange(len(train_labels)), test_size=val_fraction, stratify=train_labels, random_state=seed
        )
    except ValueError as err:  # too few images of a class for a stratified split
        raise UserError(f"{folder}: cannot split the training batches by data.cifar10.val_fraction "
                        f"({val_fraction}): {err}") from None
    splits = {
        "train": (train_ids, train_images[train_ids], train_labels[train_ids]),
        "val": (val_ids, train_images[val_ids], train_labels[val_ids]),
        "test": (np.arange(len(test_labels)), test_images, test_labels),
    }
    return write_cifar10(out_dir, splits, class_names=class_names, image_size=image_size,
                         source=f"{folder} (seed={seed})")
