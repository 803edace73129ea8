"""The train stage end to end on local Ray: DDP, MLflow logging, outputs, resume."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from components.config import load_params
from components.data.schema import read_meta
from components.families.segmentation.task import load_exported, load_split
from components.metrics.segmentation import SegmentationMetrics
from components.metrics_files import read_stage_metrics
from components.runtime import with_absolute_paths
from components.train.harness import TrainJob, fit

pytestmark = pytest.mark.slow


def _set(root, **trainer):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["segmentation"]["trainer"].update(trainer)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_two_worker_ddp_stage_logs_once_and_matches_single_process(prepared, ray_session):
    """2 DDP workers through the real entry point: outputs written, one MLflow run with one value
    per epoch (rank 0 logs, rank 1 does not), and the reduced val metrics equal a single-process
    evaluation of the exported model on the whole validation split."""
    from mlflow import MlflowClient

    from pipelines import train

    _set(prepared, num_workers=2, cpus_per_worker=1)
    train.main(["segmentation", "unet"])

    metrics = read_stage_metrics(prepared, "segmentation-unet")
    assert (prepared / "models" / "segmentation" / "unet" / "model.pt").is_file()
    assert (prepared / "figures" / "segmentation-unet" / "masks.png").is_file()
    history = (prepared / "plots" / "segmentation-unet.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 2  # header + one epoch

    # Single-process evaluation of the exported weights over the whole val split.
    net = load_exported(torch.load(prepared / "models/segmentation/unet/model.pt", weights_only=False))
    data_dir = prepared / "data" / "scenes"
    images, masks = load_split(data_dir, "val").tensors
    metric = SegmentationMetrics(read_meta(data_dir).num_classes)
    with torch.no_grad():
        metric.update(net(images).argmax(1), masks)
    expected = metric.compute()
    assert metrics["val/miou"] == pytest.approx(float(expected["miou"]), abs=1e-6)
    assert metrics["val/pixel_accuracy"] == pytest.approx(float(expected["pixel_accuracy"]), abs=1e-6)
    assert metrics["ddp/param_max_abs_diff"] == 0.0  # DDP kept both ranks' weights bit-identical
    assert metrics["ddp/num_nodes"] == 1

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("segmentation")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val/miou"] == pytest.approx(metrics["val/miou"])
    assert len(client.get_metric_history(run.info.run_id, "val/miou")) == 1  # no double logging
    assert run.data.params["model.name"] == "unet" and run.data.params["trainer.num_workers"] == "2"
    for tag in ("mlflow.source.git.commit", "courselab.dvc_stage", "courselab.params_hash"):
        assert run.data.tags[tag]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/epoch_001")}
    assert "figures/epoch_001/masks.png" in artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {"model/model.pt"}
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "history.csv", "params.json"} <= top  # the same names in every run: Compare's
    logged = json.loads(open(client.download_artifacts(run.info.run_id, "params.json", str(prepared))).read())
    # MLflow params: the ones every segmentation run shares (the runs table's and Compare's columns);
    # params.json: every param the run read
    assert set(run.data.params) == {
        "seed", "dataset", "trainer.num_workers", "trainer.batch_size", "model.name", "model.epochs", "model.lr",
        "model.lr_schedule", "model.warmup_fraction", "model.weight_decay", "model.base_channels"}
    assert all(run.data.params[k] == ("None" if logged[k] is None else str(logged[k])) for k in run.data.params)
    assert {"data.scenes.num_train", "trainer.precision"} <= set(logged) - set(run.data.params)


def _job(root, name: str, epochs: int) -> TrainJob:
    params = with_absolute_paths(load_params(root / "params.yaml"))
    return TrainJob(
        family="segmentation", model="fcn", params=params, trainer=params.segmentation.trainer,
        epochs=epochs, run_name=name, storage_path=params.runtime.storage_path,
    )


def test_rerun_with_same_name_resumes_with_optimizer_state(prepared, ray_session):
    """Stop after epoch 1, rerun the same run name for 2 epochs: it continues at epoch 2 from the
    saved optimizer state, and ends exactly where an uninterrupted 2-epoch run ends."""
    first = fit(_job(prepared, "resume-me", epochs=1))
    assert first.epochs_done == 1 and first.resumes == []
    saved = torch.load(
        next((prepared / ".ray_results" / "resume-me").glob("checkpoint_*/state.pt")), weights_only=False
    )

    resumed = fit(_job(prepared, "resume-me", epochs=2))
    assert resumed.epochs_done == 2
    assert [row["epoch"] for row in resumed.history] == [1.0, 2.0]
    assert len(resumed.resumes) == 1 and resumed.resumes[0]["epoch"] == 1
    steps = saved["task"]["optimizers"]["net"]["state"][0]["step"]
    assert steps > 0
    from components.train.harness import _optimizer_fingerprint

    assert resumed.resumes[0]["optimizer_fingerprint"] == pytest.approx(_optimizer_fingerprint(saved["task"]))

    straight = fit(_job(prepared, "straight", epochs=2))
    assert straight.resumes == []
    for key, value in straight.export["state_dict"].items():
        torch.testing.assert_close(resumed.export["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
