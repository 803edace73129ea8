"""The MLflow side of comparing runs: the saved view of a family's current runs, the params every run
of a family shares, and no empty Default experiment."""

from __future__ import annotations

import json

import pytest

from components import tracking
from components.tracking_view import VIEW_TAG, link, saved_views, updated_view


def test_the_view_ranks_the_current_runs_by_the_headline_with_the_columns_runs_logged():
    first = json.loads(updated_view(None, "segmentation", "val/miou", False, {"val/miou", "val/iou/digit_3",
                                                                              "train/loss"}, {"model.lr", "seed"}))
    assert first["searchFilter"] == "tags.`courselab.current` = 'true'"
    assert (first["orderByKey"], first["orderByAsc"]) == ("metrics.`val/miou`", False)
    assert first["selectedColumns"][:3] == ["metrics.`val/miou`", "metrics.`train/loss`", "params.`model.lr`"]
    # a later run adds what it logged; what earlier runs showed stays
    later = json.loads(updated_view(json.dumps(first), "segmentation", "val/miou", False,
                                    {"val/miou", "val/pixel_accuracy"}, {"model.base_channels"}))
    assert later["selectedColumns"][:5] == ["metrics.`val/miou`", "metrics.`val/pixel_accuracy`",
                                            "metrics.`train/loss`", "params.`model.lr`", "params.`model.base_channels`"]
    fid = json.loads(updated_view("not json", "generative", "val/fid_evaluator", True, {"val/fid_evaluator"}, set()))
    assert fid["orderByAsc"] is True and fid["selectedColumns"][0] == "metrics.`val/fid_evaluator`"
    assert link("http://127.0.0.1:5000/", "4") == "http://127.0.0.1:5000/#/experiments/4/runs?viewStateShareKey=current"


def test_comparable_params_are_the_ones_every_model_shares_plus_the_swept_ones():
    own = {"seed": 0, "dataset": "scenes", "model.name": "unet", "model.lr": 0.002, "model.base_channels": 16,
           "model.depth": 4, "trainer.precision": "fp32", "data.scenes.num_train": 900}
    others = [{"model.name": "fcn", "model.lr": 0.01, "model.base_channels": 16}, {"model.name": "x", "model.lr": 1}]
    assert tracking.comparable_params(own, others, ("seed", "dataset"), "model.", ("depth",)) == {
        "seed": 0, "dataset": "scenes", "model.name": "unet", "model.lr": 0.002, "model.depth": 4}


@pytest.fixture
def store(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    monkeypatch.setenv("COURSELAB_ROOT", str(tmp_path))
    yield uri
    mlflow.set_tracking_uri(previous)


def test_a_finished_run_becomes_current_and_writes_the_saved_view_without_a_default_experiment(store):
    import mlflow

    experiment_id = tracking.ensure_experiment("segmentation")
    client = mlflow.MlflowClient()
    assert [e.name for e in client.search_experiments()] == ["segmentation"]  # Default (id 0) retired
    runs = []
    for miou in (0.4, 0.7):
        run = client.create_run(experiment_id, tags={tracking.STAGE_TAG: "train_segmentation@unet"})
        client.log_metric(run.info.run_id, "val/miou", miou)
        client.log_param(run.info.run_id, "model.lr", "0.002")
        tracking.mark_current(client.get_run(run.info.run_id))
        runs.append(run.info.run_id)
    assert [client.get_run(r).data.tags[tracking.CURRENT_TAG] for r in runs] == ["false", "true"]
    view = json.loads(client.get_experiment(experiment_id).tags[VIEW_TAG])
    assert view["selectedColumns"][:2] == ["metrics.`val/miou`", "params.`model.lr`"]
    assert saved_views(store) == {"segmentation": experiment_id}
