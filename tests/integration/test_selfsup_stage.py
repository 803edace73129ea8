"""The self-supervised family through its real entry points on the tiny params: every method's
encoder, then the probe stage over them, an untrained encoder and the raw pixels, and the transfer
stage (each encoder fine-tuned on few labelled scenes, and from scratch)."""

from __future__ import annotations

import json

import pytest
import torch

from components.families.selfsup.family import METHODS, REFERENCES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_methods_then_probe_and_transfer(prepared):
    from mlflow import MlflowClient

    from pipelines import selfsup_probe, selfsup_transfer, train

    for method in METHODS:
        train.main(["selfsup", method])
        metrics = json.loads((prepared / "metrics" / f"selfsup-{method}.json").read_text())
        assert metrics["headline_metric"] == "val/knn_accuracy"
        assert 0.0 <= metrics["val/knn_accuracy"] <= 1.0 and 0.0 <= metrics["val/pretext_accuracy"] <= 1.0
        assert (prepared / "figures" / f"selfsup-{method}" / "views.png").is_file()
    export = torch.load(prepared / "models" / "selfsup" / "simclr" / "model.pt", weights_only=True)
    assert export["model"] == "simclr" and not any(k.startswith("classifier") for k in export["state_dict"])

    selfsup_probe.main([])
    rows = {row: json.loads((prepared / "metrics" / f"selfsup_probe-{row}.json").read_text())
            for row in (*METHODS, *REFERENCES)}
    for name, row in rows.items():
        for key in ("test/probe_accuracy", "test/probe_accuracy_few", "test/probe_accuracy_conv",
                    "test/probe_accuracy_conv_few", "test/probe_accuracy_mid", "test/probe_accuracy_mid_few"):
            assert 0.0 <= row[key] <= 1.0, (name, key)
        assert row["test/probe_accuracy_few_random"] == rows["random_init"]["test/probe_accuracy_few"]
    # the pixels have no layers: every layer's probe is the same
    assert rows["pixels"]["test/probe_accuracy_mid"] == rows["pixels"]["test/probe_accuracy_conv"] == rows[
        "pixels"]["test/probe_accuracy"]
    assert (prepared / "figures" / "selfsup_probe" / "tsne.png").is_file()

    selfsup_transfer.main([])
    transfer = {row: json.loads((prepared / "metrics" / f"selfsup_transfer-{row}.json").read_text())
                for row in (*METHODS, "scratch")}
    for name, row in transfer.items():
        assert 0.0 <= row["test/transfer_miou"] <= 1.0 and row["test/labelled_scenes"] >= 1, name
        assert row["test/transfer_miou_scratch"] == transfer["scratch"]["test/transfer_miou"]
        probe = rows["random_init" if name == "scratch" else name]  # the course's table: probe beside transfer
        assert row["test/probe_accuracy_few"] == probe["test/probe_accuracy_few"]
        assert row["test/probe_accuracy"] == probe["test/probe_accuracy"]
    assert (prepared / "figures" / "selfsup_transfer" / "transfer.png").is_file()

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("selfsup")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([*METHODS, "probe", "transfer"])
