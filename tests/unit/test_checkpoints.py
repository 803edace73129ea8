"""The local path's checkpoint store: newest complete checkpoint found, two kept, nothing half-written
ever returned, local paths and URIs alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.train.checkpoints import CHECKPOINT_PREFIX, COMPLETE_MARKER, RunCheckpoints


def _source(tmp_path: Path, text: str) -> str:
    directory = tmp_path / f"src-{text}"
    (directory / "figures").mkdir(parents=True)
    (directory / "state.pt").write_text(text)
    (directory / "figures" / "masks.png").write_text(f"png {text}")
    return str(directory)


@pytest.fixture(params=["path", "uri"])
def storage(request, tmp_path) -> tuple[str, Path]:
    root = tmp_path / "storage"
    return (str(root) if request.param == "path" else f"file://{root}"), root


def test_latest_is_the_newest_and_two_are_kept(storage, tmp_path):
    uri, root = storage
    store = RunCheckpoints(uri, "run-a")
    assert store.latest() is None
    for epoch in range(1, 4):
        stored = store.persist(_source(tmp_path, f"epoch {epoch}"))
    kept = sorted(p.name for p in (root / "run-a").iterdir())
    assert len(kept) == 2 and all(name.startswith(CHECKPOINT_PREFIX) for name in kept)
    latest = store.latest()
    assert latest.path == stored.path
    with latest.as_directory() as directory:
        assert (Path(directory) / "state.pt").read_text() == "epoch 3"
        assert (Path(directory) / "figures" / "masks.png").read_text() == "png epoch 3"
    assert RunCheckpoints(uri, "run-b").latest() is None  # another run name, another run


def test_an_upload_killed_midway_is_never_the_latest_and_is_cleaned_up(storage, tmp_path):
    uri, root = storage
    store = RunCheckpoints(uri, "run")
    store.persist(_source(tmp_path, "epoch 1"))
    # what a SIGKILL mid-upload leaves: a staging directory, or (object stores) a checkpoint without its marker
    (root / "run" / f".tmp-{CHECKPOINT_PREFIX}2099-01-01_00-00-00.000000").mkdir()
    unmarked = root / "run" / f"{CHECKPOINT_PREFIX}2099-01-01_00-00-01.000000"
    unmarked.mkdir()
    (unmarked / "state.pt").write_text("truncated")
    with store.latest().as_directory() as directory:
        assert (Path(directory) / "state.pt").read_text() == "epoch 1"
    store.persist(_source(tmp_path, "epoch 2"))
    names = sorted(p.name for p in (root / "run").iterdir())
    assert len(names) == 2 and not any(name.startswith(".tmp-") for name in names) and unmarked.name not in names
    assert all((root / "run" / name / COMPLETE_MARKER).is_file() for name in names)
