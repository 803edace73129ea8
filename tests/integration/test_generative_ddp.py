"""The generative stages end to end on local Ray: the evaluator, then a GAN under 2 DDP workers."""

from __future__ import annotations

import math

import pytest
import yaml

from components.metrics_files import read_stage_metrics

pytestmark = pytest.mark.slow


def test_gan_trains_under_two_ddp_workers_with_finite_losses(prepared, ray_session, capfd):
    """WGAN-GP (two optimizers, n_critic, the gradient penalty through the unwrapped critic, EMA)
    through the real entry point with 2 workers: finite losses and scores, the reference points
    logged beside them, sample figures in MLflow, one run; evaluated every ``eval_every`` epochs only."""
    from mlflow import MlflowClient

    from pipelines import evaluator, train

    evaluator.main([])
    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["generative"]["trainer"].update(num_workers=2, cpus_per_worker=1, eval_every=2)
    params["generative"]["models"]["wgan_gp"].update(epochs=2, n_critic=2)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["generative", "wgan_gp"])

    metrics = read_stage_metrics(prepared, "generative-wgan_gp")
    for key in ("train/loss_d", "train/loss_g", "train/gradient_penalty", "val/fid_evaluator", "val/is_evaluator",
                "val/fid_evaluator_floor", "val/fid_evaluator_untrained"):
        assert math.isfinite(metrics[key]), key
    assert metrics["epochs"] == 2 and metrics["headline_metric"] == "val/fid_evaluator"
    assert metrics["val/fid_num_generated"] == params["generative"]["fid"]["num_generated"]
    assert 1.0 <= metrics["val/is_evaluator"] <= 10.0
    assert "logging the evaluator-feature metrics only" in capfd.readouterr().out
    assert (prepared / "models" / "generative" / "wgan_gp" / "model.pt").is_file()
    assert {p.name for p in (prepared / "figures" / "generative-wgan_gp").iterdir()} == {
        "samples.png", "interpolation.png"}

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("generative")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"evaluator", "wgan_gp"}
    run = runs["wgan_gp"]
    assert run.info.status == "FINISHED" and run.data.params["trainer.num_workers"] == "2"
    # Rank 0 logs once per epoch; the scores only on evaluation epochs (eval_every 2: epoch 2 of 2).
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_d")] == [1, 2]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/fid_evaluator")] == [2]
    curve = (prepared / "plots" / "generative-wgan_gp.csv").read_text().splitlines()
    header = curve[0].split(",")
    assert [row.split(",")[header.index("val/fid_evaluator")] != "" for row in curve[1:]] == [False, True]
    assert "evaluator_sha256" in run.data.params
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/epoch_002")}
    assert "figures/epoch_002/samples.png" in artifacts
