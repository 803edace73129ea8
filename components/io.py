"""Atomic file and directory writes: an interrupted stage never leaves an output that looks valid."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from components.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _check_keep(path: Path, keep: Iterable[Path]) -> None:
    """Refuse (UserError) before anything is written when replacing ``path`` would delete, or
    write inside, a folder in ``keep``: the same folder, one inside it or one holding it (symlinks
    resolved)."""
    target = path.resolve()
    for kept in keep:
        folder = Path(kept).resolve()
        if folder == target or target in folder.parents or folder in target.parents:
            relation = ("is" if folder == target else "holds" if target in folder.parents else "lies inside")
            raise UserError(f"refusing to replace {target}: it {relation} {folder}, which must be kept "
                            f"(a dataset's source folder); move that folder elsewhere")


@contextmanager
def atomic_directory(path: Path, keep: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` whole.

    On an exception the temporary directory is removed and ``path`` is left as it was. A folder in
    ``keep`` (e.g. the source a dataset is read from) that ``path`` is, holds or lies inside is a
    UserError before anything is created.
    """
    path = Path(path)
    _check_keep(path, keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
