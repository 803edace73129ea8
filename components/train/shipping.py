"""Ship a training run's input files to Ray Train workers on other nodes.

A run reads files that earlier stages wrote (the prepared dataset, the FID evaluator, ...) on the
node where `dvc repro` runs. A worker on another node resolves the same absolute paths on its own
disk, where they are missing. When the cluster has more than one node, the driver packs each of
the task's inputs (``Task.inputs()``) into the Ray object store once per ``fit()``, with its
digest; a worker whose node lacks a path, or holds an earlier shipped copy with another digest,
fetches it and swaps it into place atomically before it builds its task. Paths that exist without
a shipping stamp (the driver's own node, a shared filesystem) are left alone.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path


def pack(path: Path) -> tuple[str, bytes]:
    """A file or directory as an uncompressed tar archive (prepared data is compressed already),
    and the archive's SHA-256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member in sorted([path, *path.rglob("*")] if path.is_dir() else [path]):
            archive.add(member, arcname=str(Path(path.name) / member.relative_to(path)), recursive=False)
    blob = buffer.getvalue()
    return hashlib.sha256(blob).hexdigest(), blob


def _stamp(path: Path) -> Path:
    return path.parent / f".{path.name}.shipped"


def needs(path: Path, digest: str) -> bool:
    """Whether this node must fetch ``path``: it is missing, or an earlier shipped copy differs."""
    stamp = _stamp(path)
    return not path.exists() or (stamp.exists() and stamp.read_text() != digest)


def materialize(path: Path, digest: str, fetch: Callable[[], bytes]) -> bool:
    """Make ``path`` on this node the shipped version; True when it unpacked one.

    Several workers of one node may race: each extracts into its own staging directory and
    renames it into place; a worker that finds the right version already there drops its copy.
    """
    if not needs(path, digest):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.shipping-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with tarfile.open(fileobj=io.BytesIO(fetch()), mode="r") as archive:
            archive.extractall(staging, filter="data")
        if path.exists():  # an earlier shipped version: move it aside first
            if not needs(path, digest):
                return False
            os.rename(path, staging / "previous")
        try:
            os.rename(staging / path.name, path)
        except OSError:
            if needs(path, digest):
                raise
            return False  # another worker of this node swapped it in first
        _stamp(path).write_text(digest)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
