"""Writing a parallel corpus: its splits as ``{train,val,test}.parquet`` (``PARALLEL``) and ``meta.json``."""

from __future__ import annotations

from pathlib import Path

from components.data.schema import PARALLEL, SPLITS, DatasetMeta, write_meta, write_split
from components.io import atomic_directory


def _write_parallel(out: Path, splits: dict[str, list[tuple[int, str, str]]], meta: DatasetMeta) -> None:
    """``splits``: per split its (id, source, target) rows."""
    with atomic_directory(out) as tmp:
        for split in SPLITS:
            rows = splits[split]
            columns = {
                "id": [int(r[0]) for r in rows],
                "source": [r[1] for r in rows],
                "target": [r[2] for r in rows],
            }
            write_split(columns, PARALLEL, tmp / f"{split}.parquet")
        write_meta(meta, tmp)
