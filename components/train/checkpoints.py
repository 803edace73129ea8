"""Checkpoints of a run on the local path, where Ray Train keeps none of its own.

Ray Train's local mode (``ScalingConfig(num_workers=0)``, Ray 2.60) runs the training function in
the calling process with the same ``ray.train`` API, but ``ray.train.report`` only remembers the
last metrics and checkpoint *object* in memory: nothing is copied to ``RunConfig.storage_path``, a
new process's ``ray.train.get_checkpoint()`` returns None, and ``num_to_keep`` is not applied
(``ray/train/v2/_internal/execution/train_fn_utils.py``, ``LocalTrainFnUtils``). This module closes
that gap for the harness with the layout the worker path writes: ``<storage_path>/<run name>/
checkpoint_<UTC timestamp>/``, so a rerun of the same run name resumes either way and the tests
find checkpoints at the same place.

A checkpoint is uploaded under a hidden name and renamed into place (local paths, ``file://``),
or, on object stores where a directory cannot be renamed, marked complete by a last file: a
process killed mid-upload leaves no checkpoint that ``latest()`` would return. ``storage_path`` is
an absolute path or a pyarrow URI (``file://``, ``s3://``, ``gs://``), as for Ray Train.

Resuming tolerates damage (a disk filled mid-write, a file truncated by a copy, an edited or foreign
file): :func:`load_state` reads a state file with ``torch.load(weights_only=True)`` (tensors, dicts,
lists, tuples, numbers, strings: no code runs, whatever the file holds) and turns every way it can
fail into :class:`UnloadableCheckpoint` with a one-line reason; :func:`first_loadable` walks
:meth:`RunCheckpoints.candidates` newest first and returns the first that loads with what it
skipped, and :func:`resume_notice` says so in one line. The harness uses both paths' layout: on the
worker path (Ray Train's checkpoints, which carry no marker) it lists the folders older than the one
Ray handed over.
"""

from __future__ import annotations

import datetime
import pickle
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINT_PREFIX = "checkpoint_"
COMPLETE_MARKER = ".courselab_complete"  # written last into every checkpoint this module stores


def _filesystem(storage_path: str):
    """``(pyarrow filesystem, path on it)`` of a storage path or URI."""
    import pyarrow.fs

    if "://" in storage_path:
        return pyarrow.fs.FileSystem.from_uri(storage_path)
    return pyarrow.fs.LocalFileSystem(), storage_path


@dataclass(frozen=True)
class RunCheckpoints:
    """The checkpoints of one run (``storage_path/run_name``) written by the local path."""

    storage_path: str
    run_name: str
    num_to_keep: int = 2

    def _run_dir(self) -> tuple[Any, str]:
        fs, root = _filesystem(self.storage_path)
        return fs, f"{root.rstrip('/')}/{self.run_name}"

    def _listing(self, fs: Any, run_dir: str) -> tuple[list[str], list[str]]:
        """``(complete, unfinished)`` directory names of the run: complete checkpoints oldest first
        (timestamps sort as strings); staging directories and checkpoints without their marker."""
        import pyarrow.fs

        listing = fs.get_file_info(pyarrow.fs.FileSelector(run_dir, allow_not_found=True))
        directories = [info.base_name for info in listing if info.type == pyarrow.fs.FileType.Directory]
        names = sorted(name for name in directories if name.startswith(CHECKPOINT_PREFIX))
        markers = fs.get_file_info([f"{run_dir}/{name}/{COMPLETE_MARKER}" for name in names])
        complete = [name for name, marker in zip(names, markers, strict=True)
                    if marker.type == pyarrow.fs.FileType.File]
        unfinished = [name for name in directories
                      if name.startswith(f".tmp-{CHECKPOINT_PREFIX}") or (name in names and name not in complete)]
        return complete, unfinished

    def candidates(self, *, older_than: str | None = None, require_marker: bool = True) -> list[Candidate]:
        """Every ``checkpoint_*`` folder of the run, newest first (only names before ``older_than``
        when given). With ``require_marker`` (the local path) a folder without the complete marker is
        listed with the reason it is no candidate; the worker path's folders (Ray Train's) carry none."""
        import ray.train

        fs, run_dir = self._run_dir()
        complete, unfinished = self._listing(fs, run_dir)
        names = sorted({*complete, *(n for n in unfinished if n.startswith(CHECKPOINT_PREFIX))}, reverse=True)
        return [
            Candidate(name, ray.train.Checkpoint(f"{run_dir}/{name}", fs),
                      None if name in complete or not require_marker
                      else f"no {COMPLETE_MARKER} marker: its upload did not finish")
            for name in names if older_than is None or name < older_than
        ]

    def latest(self):
        """The newest complete checkpoint (a ``ray.train.Checkpoint``), or None."""
        import ray.train

        fs, run_dir = self._run_dir()
        complete, _ = self._listing(fs, run_dir)
        return ray.train.Checkpoint(f"{run_dir}/{complete[-1]}", fs) if complete else None

    def persist(self, directory: str):
        """Copy a local checkpoint directory into the run's storage, then drop all but the newest
        ``num_to_keep`` and what an upload killed midway left; returns the stored ``ray.train.Checkpoint``."""
        import pyarrow.fs
        import ray.train

        fs, run_dir = self._run_dir()
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d_%H-%M-%S.%f")
        name = f"{CHECKPOINT_PREFIX}{stamp}"
        final = f"{run_dir}/{name}"
        local = isinstance(fs, pyarrow.fs.LocalFileSystem)
        staging = f"{run_dir}/.tmp-{name}" if local else final
        fs.create_dir(staging, recursive=True)
        pyarrow.fs.copy_files(directory, staging, source_filesystem=pyarrow.fs.LocalFileSystem(),
                              destination_filesystem=fs)
        with fs.open_output_stream(f"{staging}/{COMPLETE_MARKER}") as marker:
            marker.write(b"")
        if local:
            fs.move(staging, final)  # a rename: the checkpoint appears whole or not at all
        complete, unfinished = self._listing(fs, run_dir)
        for old in unfinished + complete[: -self.num_to_keep]:
            fs.delete_dir(f"{run_dir}/{old}")
        return ray.train.Checkpoint(final, fs)


@dataclass(frozen=True)
class Candidate:
    """A checkpoint folder to resume from: its name, the ``ray.train.Checkpoint``, and why it is
    none (None: try loading it)."""

    name: str
    checkpoint: Any
    problem: str | None = None


class UnloadableCheckpoint(Exception):
    """A checkpoint that cannot be resumed from; ``str()`` is the one-line reason."""


def _first_line(err: BaseException) -> str:
    """The first sentence of an error's message (torch's go on for a paragraph)."""
    text = str(err).strip()
    return (text.splitlines()[0].split(". ")[0] if text else type(err).__name__)[:160]


def _refusal(message: str) -> str:
    """What ``torch.load(weights_only=True)`` refused, from its long message: ``"Unsupported
    global: GLOBAL exec"``, ``"Unsupported operand 72"``."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|\n|$)", message)
    return found.group(1).strip() if found else _first_line(Exception(message))


def load_state(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of a state file that must be a dict with the
    ``required`` keys; any other outcome raises :class:`UnloadableCheckpoint` with a one-line reason.
    Storage errors other than a missing file (permissions, I/O) are not the checkpoint's fault and
    propagate unchanged."""
    import torch

    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnloadableCheckpoint(f"no {name}") from None
    if not path.is_file():
        raise UnloadableCheckpoint(f"{name} is not a file")
    if size == 0:
        raise UnloadableCheckpoint(f"empty {name}")
    with path.open("rb") as file:
        zipped = file.read(4) == b"PK\x03\x04"  # what torch.save writes: a zip archive
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or (zipped and "Weights only load failed" in str(err)):
            raise UnloadableCheckpoint(
                f"{name} refused by torch.load(weights_only=True): {_refusal(str(err))}") from None
        raise UnloadableCheckpoint(f"{name} is not a torch checkpoint ({size} bytes)") from None
    except Exception as err:  # noqa: BLE001  (a truncated zip: RuntimeError; others: EOFError, KeyError, ...)
        if not zipped:
            raise UnloadableCheckpoint(f"{name} is not a torch checkpoint ({size} bytes)") from None
        raise UnloadableCheckpoint(f"truncated or damaged {name} ({size} bytes): {_first_line(err)}") from None
    if not isinstance(state, dict):
        raise UnloadableCheckpoint(f"{name} holds a {type(state).__name__}, not a dict")
    missing = [key for key in required if key not in state]
    if missing:
        raise UnloadableCheckpoint(f"{name} lacks {', '.join(missing)}")
    return state


def first_loadable(candidates: Iterable[Candidate], load: Callable[[Any], Any]
                   ) -> tuple[Candidate | None, Any, list[tuple[str, str]]]:
    """``(candidate, load(its checkpoint), skipped)`` for the first candidate that loads, else
    ``(None, None, skipped)``; ``skipped`` holds ``(name, reason)`` of each one passed over, in
    order. ``load`` raises :class:`UnloadableCheckpoint` for a checkpoint it cannot use."""
    skipped: list[tuple[str, str]] = []
    for candidate in candidates:
        if candidate.problem is not None:
            skipped.append((candidate.name, candidate.problem))
            continue
        try:
            return candidate, load(candidate.checkpoint), skipped
        except UnloadableCheckpoint as err:
            skipped.append((candidate.name, str(err)))
    return None, None, skipped


def resume_notice(skipped: Sequence[tuple[str, str]], resumed: str | None, epoch: int | None,
                  otherwise: str = "training from scratch") -> str:
    """The one line that says which checkpoints were skipped and why, and where training goes on:
    ``"skipped checkpoint_B (truncated or damaged state.pt (812 bytes): ...); resuming from
    checkpoint_A (epoch 2)"``, or ``"...; no checkpoint of the run loads: training from scratch"``."""
    passed = ", ".join(f"{name} ({reason})" for name, reason in skipped)
    then = (f"resuming from {resumed} (epoch {epoch})" if resumed is not None
            else f"no checkpoint of the run loads: {otherwise}")
    return f"skipped {passed}; {then}"
