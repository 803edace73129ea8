"""Atomic outputs and the Markdown report."""

from __future__ import annotations

import pytest

from components.io import atomic_directory, atomic_write_text
from components.metrics_files import write_stage_metrics
from components.report.collect import collect
from components.report.markdown import render
from components.report.runs import RunStore


def test_atomic_directory_leaves_old_output_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "weights.pt").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "weights.pt").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "weights.pt").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left behind


def test_atomic_directory_replaces_whole(tmp_path):
    target = tmp_path / "figures"
    with atomic_directory(target) as tmp:
        (tmp / "old.png").write_text("x")
    with atomic_directory(target) as tmp:
        (tmp / "new.png").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new.png"]


def test_atomic_write_text_has_normal_permissions(tmp_path):
    path = tmp_path / "metrics" / "m.json"
    atomic_write_text(path, "{}")
    assert path.read_text() == "{}" and path.stat().st_mode & 0o044  # readable by group/others


def test_report_ranks_models_by_headline_metric(tmp_path):
    for model, miou in (("fcn", 0.5), ("unet", 0.8)):
        write_stage_metrics(tmp_path, f"segmentation-{model}", {
            "headline_metric": "val/miou", "val/miou": miou, "epochs": 3, "train_wall_s": 12.34,
            "params_hash": "abc", "git_commit": "0123456789abcdef"})
    report = render(collect(tmp_path / "metrics", tmp_path / "plots", tmp_path / "figures", None, RunStore(None)))
    assert report.index("| unet | 0.8000 |") < report.index("| fcn | 0.5000 |")
    assert "| 3 | 12.3 |  | abc | 0123456789ab |" in report  # epochs, train time, key params, hash, commit
