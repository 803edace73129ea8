"""Loader for labelled text from local files (``data.labelled_text``): ``<root>/{train,val,test}.{csv,tsv}``,
UTF-8 with a header row, one text and one string label per row, written as ``TEXT_CLASSIFICATION``."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from components.data.schema import SPLITS, DatasetMeta, write_text_classification
from components.errors import UserError

DELIMITERS = {".csv": ",", ".tsv": "\t"}

Row = tuple[int, str, str]  # (0-based data row in its file, text, label name)


def load_labelled_text(
    root: Path, out: Path, *, seed: int, text_column: str, label_column: str, val_fraction: float
) -> DatasetMeta:
    """Write the labelled text under ``root`` to ``out`` as ``{train,val,test}.parquet`` and ``meta.json``.

    ``train`` and ``test`` are required, ``val`` is optional: without it a seeded ``val_fraction``
    of the train rows becomes val. Each split is one ``<split>.csv`` (comma-separated) or
    ``<split>.tsv`` (tab-separated), read with the ``csv`` module. Texts and labels are stripped;
    rows with an empty text are skipped (their count is printed). The classes are the sorted
    distinct train labels; a val or test label outside them is an error. Row ids are 0-based data
    rows of the file the row came from. ``out`` is replaced whole.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"labelled text folder not found: {root} (set data.labelled_text.root in params.yaml)")
    train_path = _find(root, "train", required=True)
    rows = {"train": _read_rows(train_path, text_column, label_column)}
    class_names = sorted({label for _, _, label in rows["train"]})
    if len(class_names) < 2:
        raise UserError(f"{train_path}: needs at least 2 distinct labels in column {label_column!r}, got {class_names}")
    val_path = _find(root, "val", required=False)
    if val_path is not None:
        rows["val"] = _read_rows(val_path, text_column, label_column, known=class_names)
    else:
        rows["train"], rows["val"] = _split_off(rows["train"], seed, val_fraction)
    rows["test"] = _read_rows(_find(root, "test", required=True), text_column, label_column, known=class_names)
    for split in SPLITS:
        if not rows[split]:
            raise UserError(f"labelled text {root}: the {split} split has no rows with text")
    index = {name: i for i, name in enumerate(class_names)}
    splits = {split: [(id_, text, index[label]) for id_, text, label in rows[split]] for split in SPLITS}
    meta = DatasetMeta(
        name="labelled_text",
        task="text_classification",
        class_names=class_names,
        height=0,
        width=0,
        channels=0,
        source=str(root),
        sizes={split: len(splits[split]) for split in SPLITS},
    )
    write_text_classification(out, splits, meta)
    return meta


def _find(root: Path, split: str, required: bool) -> Path | None:
    """``<root>/<split>.csv`` or ``<root>/<split>.tsv``: exactly one may exist (None if neither, unless required)."""
    tried = [root / f"{split}{ext}" for ext in DELIMITERS]
    found = [path for path in tried if path.is_file()]
    if len(found) > 1:
        raise UserError(f"labelled text: both {found[0]} and {found[1]} exist; keep one")
    if not found and required:
        raise UserError(f"labelled text file not found: tried {' and '.join(map(str, tried))}")
    return found[0] if found else None


def _read_rows(path: Path, text_column: str, label_column: str, known: list[str] | None = None) -> list[Row]:
    """(row, text, label) of ``path``'s data rows with a non-empty text; with ``known``, a label
    outside it is an error."""
    allowed = None if known is None else set(known)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=DELIMITERS[path.suffix])
            header = next(reader, None)
            if not header:
                raise UserError(f"{path}: empty file (expected a header row with {text_column!r} and {label_column!r})")
            columns = {}
            for column in (text_column, label_column):
                if column not in header:
                    raise UserError(f"{path}: no column {column!r} in the header (columns: {', '.join(header)}); "
                                    f"set data.labelled_text.{'text' if column == text_column else 'label'}_column")
                columns[column] = header.index(column)
            rows, skipped = [], 0
            for i, record in enumerate(reader):
                if not record:
                    continue  # a blank line
                if len(record) != len(header):
                    raise UserError(f"{path}, row {i + 1} (line {reader.line_num}): {len(record)} fields, "
                                    f"the header has {len(header)}")
                text, label = record[columns[text_column]].strip(), record[columns[label_column]].strip()
                if not text:
                    skipped += 1
                    continue
                if not label:
                    raise UserError(f"{path}, row {i + 1} (line {reader.line_num}): empty label")
                if allowed is not None and label not in allowed:
                    raise UserError(f"{path}, row {i + 1} (line {reader.line_num}): label {label!r} is not a "
                                    f"train label ({', '.join(known)})")
                rows.append((i, text, label))
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise UserError(f"{path}: not a readable {path.suffix[1:]} file ({err})") from None
    if skipped:
        print(f"labelled_text: {path}: skipped {skipped} rows with an empty {text_column!r}", flush=True)
    return rows


def _split_off(rows: list[Row], seed: int, val_fraction: float) -> tuple[list[Row], list[Row]]:
    """Seeded split of ``rows`` into (train, val), each kept in file order; val gets ``val_fraction`` of them."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    val_ids = set(order[: round(len(rows) * val_fraction)])
    return [r for i, r in enumerate(rows) if i not in val_ids], [r for i, r in enumerate(rows) if i in val_ids]
