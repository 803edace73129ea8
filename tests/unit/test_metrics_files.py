"""metrics/<name>.json holds the numbers a leaderboard compares; metrics/details/<name>.json everything."""

from __future__ import annotations

import json

from components.metrics_files import details_of, read_stage_metrics, summarise, write_stage_metrics

DETECTION = {
    "headline_metric": "val/map", "val/map": 0.41, "val/map_untrained": 0.0, "val/map50": 0.7, "val/voc_map": 0.66,
    "val/ap/digit_3": 0.5, "epochs": 12, "train/loss": 0.9, "train_wall_s": 88.1, "params_hash": "0698e14e4d5e",
    "git_commit": "587df512482cc166346b78f1a2c9a4d2eeca4922-dirty", "mlflow_run_id": "32eaa2f1",
    "val/map75": float("nan"),
}


def test_the_summary_holds_the_leaderboard_numbers_only():
    summary = summarise("detection-faster_rcnn", DETECTION)
    assert list(summary)[:2] == ["val/map", "val/map_untrained"]  # the headline, then its reference point
    assert summary == {"val/map": 0.41, "val/map_untrained": 0.0, "val/map50": 0.7, "val/voc_map": 0.66,
                       "train/loss": 0.9, "epochs": 12}
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in summary.values())


def test_an_analysis_stage_summary_has_its_own_columns():
    details = {"headline_metric": "test/transfer_accuracy", "test/transfer_accuracy": 0.3,
               "test/accuracy_of/cnn": 0.2, "test/accuracy_of/mlp": 0.6, "epsilon": 0.2, "env": "digits"}
    assert summarise("adversarial_transfer-cnn", details) == {
        "test/transfer_accuracy": 0.3, "test/accuracy_of/cnn": 0.2, "test/accuracy_of/mlp": 0.6}


def test_a_sweep_summary_holds_its_values_and_best_config():
    details = {"family": "segmentation", "model": "unet", "enabled": True, "applied": True, "num_trials": 8,
               "num_stopped_early": 3, "best_value": 0.55, "default_value": 0.45, "reason": "beat the default",
               "best_config": {"lr": 0.003, "optimizer": "adam"}, "trials": [{"trial_id": "a", "value": 0.5}]}
    assert summarise("tune-segmentation", details) == {
        "best_value": 0.55, "default_value": 0.45, "num_trials": 8, "num_stopped_early": 3,
        "best_config": {"lr": 0.003}}
    assert summarise("tune-detection", {"family": "detection", "enabled": False}) == {}


def test_both_files_are_written_and_the_details_read_back(tmp_path):
    path = write_stage_metrics(tmp_path, "detection-faster_rcnn", DETECTION)
    assert path == tmp_path / "metrics" / "details" / "detection-faster_rcnn.json"
    assert json.loads((tmp_path / "metrics" / "detection-faster_rcnn.json").read_text())["val/map"] == 0.41
    back = read_stage_metrics(tmp_path, "detection-faster_rcnn")
    assert back["git_commit"] == DETECTION["git_commit"] and back["val/ap/digit_3"] == 0.5
    assert details_of("metrics/detection-faster_rcnn.json") == "metrics/details/detection-faster_rcnn.json"


def test_a_row_folder_is_replaced_whole_so_an_unlisted_row_goes(tmp_path):
    """A stage whose rows follow the pipeline's lists writes metrics/<stage>/<row>.json; the next run's
    folder replaces the last, so a model no longer listed leaves no stale row."""
    from components.metrics_files import stage_of, write_row_folder

    row = {"headline_metric": "test/transfer_accuracy", "test/transfer_accuracy": 0.3, "git_commit": "abc"}
    paths = write_row_folder(tmp_path, "adversarial_transfer", {"cnn": row, "mlp": row})
    assert paths["mlp"] == tmp_path / "metrics" / "details" / "adversarial_transfer" / "mlp.json"
    assert json.loads((tmp_path / "metrics" / "adversarial_transfer" / "cnn.json").read_text()) == {
        "test/transfer_accuracy": 0.3}
    assert read_stage_metrics(tmp_path, "adversarial_transfer/cnn")["git_commit"] == "abc"
    write_row_folder(tmp_path, "adversarial_transfer", {"cnn": row})
    assert sorted(p.name for p in (tmp_path / "metrics" / "adversarial_transfer").iterdir()) == ["cnn.json"]
    assert sorted(p.name for p in (tmp_path / "metrics" / "details" / "adversarial_transfer").iterdir()) == [
        "cnn.json"]
    assert [stage_of(n) for n in ("adversarial_transfer/cnn", "detection-faster_rcnn", "tune-rl")] == [
        "adversarial_transfer", "detection", "tune"]
