"""Loader for a real parallel corpus from local files: ``load_parallel_corpus`` reads Multi30k-style
plain-text files instead (one sentence per line)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from components.data.schema import SPLITS, DatasetMeta
from components.data.translation.writer import _write_parallel
from components.errors import UserError

LANGUAGE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def load_parallel_corpus(
    root: Path, out: Path, *, source_lang: str, target_lang: str, seed: int, val_fraction: float
) -> DatasetMeta:
    """Write a local parallel corpus to ``out`` as ``{train,val,test}.parquet`` (``PARALLEL``) and ``meta.json``.

    ``root`` holds plain UTF-8 text, one sentence per line, line i of one language translating line
    i of the other (Multi30k style): ``train.<lang>`` and ``test.<lang>`` are required (name
    Multi30k's test2016 files ``test.<lang>``); ``val.<lang>`` is optional, and without it a seeded
    ``val_fraction`` of the train pairs becomes val. Lines are stripped and pairs with an empty side
    dropped. Row ids are 0-based line numbers in the file the pair came from. ``out`` is replaced whole.
    """
    root = Path(root)
    for lang in (source_lang, target_lang):
        if not LANGUAGE_CODE.fullmatch(lang):
            raise UserError(f"parallel corpus: bad language code {lang!r} (e.g. en, de); fix it in params.yaml")
    if source_lang == target_lang:
        raise UserError(f"parallel corpus: source and target language are both {source_lang!r}; fix params.yaml")
    if not root.is_dir():
        raise UserError(f"parallel corpus folder not found: {root} (set its root in params.yaml)")
    splits = {"train": _read_pairs(root, "train", source_lang, target_lang)}
    if (root / f"val.{source_lang}").exists() or (root / f"val.{target_lang}").exists():
        splits["val"] = _read_pairs(root, "val", source_lang, target_lang)
    else:
        splits["train"], splits["val"] = _split_off(splits["train"], seed, val_fraction, root)
    splits["test"] = _read_pairs(root, "test", source_lang, target_lang)
    for split in SPLITS:
        if not splits[split]:
            raise UserError(f"parallel corpus {root}: the {split} split has no sentence pairs")
    meta = DatasetMeta(
        name="parallel",
        task="parallel",
        class_names=[],
        height=0,
        width=0,
        channels=0,
        source=str(root),
        sizes={split: len(splits[split]) for split in SPLITS},
        languages=[source_lang, target_lang],
    )
    _write_parallel(out, splits, meta)
    return meta


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"parallel corpus file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def _read_pairs(root: Path, split: str, source_lang: str, target_lang: str) -> list[tuple[int, str, str]]:
    """(line number, source, target) of ``root/<split>.<lang>``, stripped, pairs with an empty side dropped."""
    src_path, tgt_path = root / f"{split}.{source_lang}", root / f"{split}.{target_lang}"
    src, tgt = _read_lines(src_path), _read_lines(tgt_path)
    if len(src) != len(tgt):
        raise UserError(
            f"parallel corpus files differ in line count: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}"
        )
    rows = [(i, s.strip(), t.strip()) for i, (s, t) in enumerate(zip(src, tgt, strict=True))]
    return [row for row in rows if row[1] and row[2]]


def _split_off(rows: list, seed: int, val_fraction: float, root: Path) -> tuple[list, list]:
    """Seeded split of ``rows`` into (train, val), each kept in file order; val gets ``val_fraction`` of them."""
    if not 0 < val_fraction < 1:
        raise UserError(
            f"parallel corpus {root} has no val files, so val_fraction ({val_fraction}) must be in (0, 1); "
            "fix it in params.yaml"
        )
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    val_ids = set(order[: round(len(rows) * val_fraction)])
    return [r for i, r in enumerate(rows) if i not in val_ids], [r for i, r in enumerate(rows) if i in val_ids]
