"""The Parquet schemas every dataset is written in, and their readers and writers.

One schema per task, shared by the embedded generators and the real-dataset loaders, so a
family never knows where its data came from:

- ``CLASSIFICATION``: one image and one integer label per row (digits, MNIST).
- ``DENSE``: one image with everything a detection, segmentation or captioning model needs
  (boxes, labels, instance masks, a semantic mask, captions); columns a source does not have
  are empty lists (e.g. PASCAL VOC segmentation has no captions).
- ``PARALLEL``: one sentence pair per row for translation, natural text in both languages
  (``The small dog sees the cat.`` / ``Der kleine Hund sieht die Katze.``); see ``text.tokenize``.
- ``TEXT_CLASSIFICATION``: one natural-text string and one integer label per row (``word_order``,
  ``labelled_text``); ``meta.class_names`` names the labels.

Images and masks are stored as raw ``uint8`` bytes in row-major ``H x W x C`` (images) and
``H x W`` (masks) order beside their shape, which keeps the files byte-identical for the same
seed (no codec in the loop). A dataset directory holds ``{train,val,test}.parquet`` and a
``meta.json`` (class names, image shape, ignore index) that models are built from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.errors import UserError
from components.io import atomic_directory, atomic_write_bytes, atomic_write_text

SPLITS = ("train", "val", "test")

CLASSIFICATION = pa.schema(
    [
        ("id", pa.int64()),
        ("image", pa.binary()),  # uint8, H x W x C, row-major
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("channels", pa.int32()),
        ("label", pa.int64()),
    ]
)

DENSE = pa.schema(
    [
        ("id", pa.int64()),
        ("image", pa.binary()),  # uint8, H x W x C, row-major
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("channels", pa.int32()),
        ("semantic_mask", pa.binary()),  # uint8, H x W; 0 = background, ignore_index = unlabelled
        ("boxes", pa.list_(pa.list_(pa.float32(), 4))),  # [x0, y0, x1, y1] in pixels, x1/y1 exclusive
        ("labels", pa.list_(pa.int64())),  # class index per box (1..num_classes-1)
        ("instance_masks", pa.list_(pa.binary())),  # uint8 {0,1}, H x W, one per box
        ("captions", pa.list_(pa.string())),
    ]
)

# ``DENSE`` with one ``iscrowd`` flag per box: 1 marks a crowd region (COCO's ``iscrowd=1``), a box
# evaluation ignores (as COCOeval does) and training leaves out. Only a source with crowd regions
# writes it (COCO); a table without the column has none (the embedded scenes keep their bytes).
CROWD_COLUMN = pa.field("iscrowd", pa.list_(pa.uint8()))
DENSE_CROWD = DENSE.append(CROWD_COLUMN)

PARALLEL = pa.schema(
    [
        ("id", pa.int64()),
        ("source", pa.string()),  # natural text in the source language (meta.languages[0])
        ("target", pa.string()),  # its translation, natural text in the target language (meta.languages[1])
    ]
)

TEXT_CLASSIFICATION = pa.schema(
    [
        ("id", pa.int64()),
        ("text", pa.string()),  # natural text (see ``text.tokenize``)
        ("label", pa.int64()),  # index into meta.class_names
    ]
)


@dataclass
class DatasetMeta:
    """What a model needs to know about a dataset directory (stored as ``meta.json``)."""

    name: str
    task: str  # "classification", "dense", "parallel" or "text_classification"
    class_names: list[str]  # index -> name; for dense data index 0 is "background"
    height: int
    width: int
    channels: int
    ignore_index: int | None = None  # semantic-mask value excluded from losses and metrics
    source: str = ""  # where it came from (generator + seed, or a local path)
    sizes: dict[str, int] = field(default_factory=dict)  # rows per split
    languages: list[str] = field(default_factory=list)  # parallel data: [source, target], e.g. ["en", "de"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def write_split(rows: dict[str, list], schema: pa.Schema, path: Path) -> None:
    """Write one split (column name -> list of values) as Parquet, atomically."""
    table = pa.Table.from_pydict(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def write_split_batches(batches: Iterable[dict[str, list]], schema: pa.Schema, path: Path) -> None:
    """Write one split from column batches, one row group each, straight to ``path`` (zstd, as
    ``write_split``): for a split too large to hold in memory. Not atomic by itself: write inside
    an ``atomic_directory``."""
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for columns in batches:
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))


def write_meta(meta: DatasetMeta, directory: Path) -> None:
    atomic_write_text(directory / "meta.json", json.dumps(asdict(meta), indent=2) + "\n")


REBUILD = "run the prepare stage: dvc repro prepare, or python -m pipelines.prepare"


def _reason(err: Exception) -> str:
    """The cause in a few words: pyarrow's first sentence without its "Could not open ... '<path>': "."""
    text = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(err).strip())
    return (text.splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")


def read_meta(directory: Path) -> DatasetMeta:
    """Read ``<directory>/meta.json``; a missing or unreadable file is a UserError naming the path."""
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise UserError(f"dataset metadata not found: {path} ({REBUILD})")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        return DatasetMeta(**data)
    except (ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"{path}: not a valid dataset metadata file ({_reason(err)}); {REBUILD}") from None


def read_split(directory: Path, split: str, columns: list[str] | None = None) -> pa.Table:
    """Read ``<directory>/<split>.parquet`` (only ``columns``, when given); a missing, truncated or
    corrupted file is a UserError naming the path."""
    path = Path(directory) / f"{split}.parquet"
    if not path.is_file():
        raise UserError(f"dataset split not found: {path} ({REBUILD})")
    try:  # one file: ParquetFile reads it without importing pyarrow.dataset (~0.2 s a stage)
        with pq.ParquetFile(path) as parquet:
            return parquet.read(columns=columns)
    except (pa.ArrowException, OSError, ValueError) as err:  # ArrowInvalid, ArrowIOError (ZSTD failures, ...)
        raise UserError(f"{path}: not a readable Parquet file ({_reason(err)}); {REBUILD}") from None


def iter_split(directory: Path, split: str, columns: list[str], rows: int) -> Iterator[pa.Table]:
    """``<directory>/<split>.parquet``'s ``columns`` as tables of at most ``rows`` rows, in order: a
    split larger than memory (COCO at 640 px) read a piece at a time. Errors as :func:`read_split`."""
    path = Path(directory) / f"{split}.parquet"
    if not path.is_file():
        raise UserError(f"dataset split not found: {path} ({REBUILD})")
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowException, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable Parquet file ({_reason(err)}); {REBUILD}") from None


def decode_images(table: pa.Table, column: str = "image") -> np.ndarray:
    """Stack a table's images into ``uint8`` of shape (N, H, W, C); all rows must share a shape."""
    h, w, c = (table.column(k)[0].as_py() for k in ("height", "width", "channels"))
    buf = b"".join(table.column(column).to_pylist())
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(table), h, w, c)


def decode_semantic_masks(table: pa.Table) -> np.ndarray:
    """Stack a dense table's semantic masks into ``uint8`` of shape (N, H, W)."""
    h, w = (table.column(k)[0].as_py() for k in ("height", "width"))
    buf = b"".join(table.column("semantic_mask").to_pylist())
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(table), h, w)


def mask_box(mask: np.ndarray) -> list[float]:
    """Tight ``[x0, y0, x1, y1]`` box of a non-empty ``H x W`` mask, in pixels, x1/y1 exclusive."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def classification_columns(ids: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict[str, list]:
    """Columns of a ``CLASSIFICATION`` split from ids (N,), ``uint8`` images (N, H, W, C), labels (N,)."""
    n, h, w, c = images.shape
    return {
        "id": [int(i) for i in ids],
        "image": [np.ascontiguousarray(im, dtype=np.uint8).tobytes() for im in images],
        "height": [h] * n,
        "width": [w] * n,
        "channels": [c] * n,
        "label": [int(y) for y in labels],
    }


def write_text_classification(out: Path, splits: dict[str, list[tuple[int, str, int]]], meta: DatasetMeta) -> None:
    """Write ``splits`` (per split its (id, text, label) rows) to ``out`` as ``{train,val,test}.parquet``
    (``TEXT_CLASSIFICATION``) and ``meta.json``; ``out`` is replaced whole."""
    with atomic_directory(out) as tmp:
        for split in SPLITS:
            rows = splits[split]
            columns = {"id": [int(r[0]) for r in rows], "text": [r[1] for r in rows],
                       "label": [int(r[2]) for r in rows]}
            write_split(columns, TEXT_CLASSIFICATION, tmp / f"{split}.parquet")
        write_meta(meta, tmp)


def dense_row(
    id: int,
    image: np.ndarray,
    semantic_mask: np.ndarray,
    boxes: list[list[float]],
    labels: list[int],
    instance_masks: list[np.ndarray],
    captions: list[str],
    iscrowd: list[int] | None = None,
) -> dict:
    """One ``DENSE`` row: ``uint8`` image (H, W, C), ``uint8`` semantic mask (H, W), boxes in pixels
    ``[x0, y0, x1, y1)``, one ``{0,1}`` (H, W) instance mask per box; with ``iscrowd`` (one 0/1 per
    box) a ``DENSE_CROWD`` row."""
    h, w, c = image.shape
    if iscrowd is not None and len(iscrowd) != len(boxes):
        raise ValueError(f"dense_row: {len(iscrowd)} iscrowd flags for {len(boxes)} boxes")
    crowd = {} if iscrowd is None else {"iscrowd": [int(bool(f)) for f in iscrowd]}
    return crowd | {
        "id": int(id),
        "image": np.ascontiguousarray(image, dtype=np.uint8).tobytes(),
        "height": h,
        "width": w,
        "channels": c,
        "semantic_mask": np.ascontiguousarray(semantic_mask, dtype=np.uint8).tobytes(),
        "boxes": [[float(v) for v in box] for box in boxes],
        "labels": [int(y) for y in labels],
        "instance_masks": [np.ascontiguousarray(m, dtype=np.uint8).tobytes() for m in instance_masks],
        "captions": list(captions),
    }


def dense_columns(rows: list[dict], schema: pa.Schema = DENSE) -> dict[str, list]:
    """Turn ``dense_row`` dicts into the column dict ``write_split`` takes (``schema``: ``DENSE`` or
    ``DENSE_CROWD``)."""
    return {name: [row[name] for row in rows] for name in schema.names}


def crowd_flags(table: pa.Table) -> list[list[int]]:
    """A dense table's ``iscrowd`` flags, one list per row with one 0/1 per box; all 0 when the table
    has no ``iscrowd`` column."""
    if CROWD_COLUMN.name in table.column_names:
        return table.column(CROWD_COLUMN.name).to_pylist()
    return [[0] * len(labels) for labels in table.column("labels").to_pylist()]
