"""Shipping a run's inputs to workers on other nodes: a node without the path gets an exact copy,
a node with its own (unstamped) copy is left alone, a stale shipped copy is replaced."""

from pathlib import Path

import pytest

from components.train.shipping import materialize, needs, pack


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset(tmp_path) -> Path:
    source = tmp_path / "driver" / "data" / "scenes"
    (source / "train").mkdir(parents=True)
    (source / "meta.json").write_text('{"classes": 10}')
    (source / "train" / "part-0.parquet").write_bytes(bytes(range(256)) * 40)
    return source


def _fetcher(blob: bytes, calls: list):
    def fetch() -> bytes:
        calls.append(1)
        return blob
    return fetch


def test_a_node_without_the_path_gets_an_exact_copy(dataset, tmp_path):
    digest, blob = pack(dataset)
    target = tmp_path / "worker" / "data" / "scenes"
    calls = []
    assert materialize(target, digest, _fetcher(blob, calls)) is True
    assert _tree(target) == _tree(dataset) and calls == [1]
    assert not needs(target, digest)
    assert materialize(target, digest, _fetcher(blob, calls)) is False and calls == [1]  # not fetched again
    assert [p.name for p in target.parent.iterdir() if "shipping" in p.name] == []  # no staging left


def test_a_path_that_exists_without_a_stamp_is_left_alone(dataset):
    """The driver's own node, or a shared filesystem: never overwritten, never fetched."""
    digest, blob = pack(dataset)
    calls = []
    assert materialize(dataset, "another digest", _fetcher(blob, calls)) is False
    assert calls == []


def test_a_stale_shipped_copy_is_replaced(dataset, tmp_path):
    target = tmp_path / "worker" / "scenes"
    old_digest, old_blob = pack(dataset)
    materialize(target, old_digest, lambda: old_blob)
    (dataset / "meta.json").write_text('{"classes": 12}')  # prepare reran on the driver's node
    (dataset / "train" / "part-0.parquet").unlink()
    new_digest, new_blob = pack(dataset)
    assert new_digest != old_digest and needs(target, new_digest)
    assert materialize(target, new_digest, lambda: new_blob) is True
    assert _tree(target) == _tree(dataset)  # the removed file is gone too


def test_a_single_file_ships(tmp_path):
    weights = tmp_path / "driver" / "inception.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"\x00weights" * 100)
    digest, blob = pack(weights)
    target = tmp_path / "worker" / "models" / "inception.pt"
    assert materialize(target, digest, lambda: blob) is True
    assert target.read_bytes() == weights.read_bytes()
