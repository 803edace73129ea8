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
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
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
