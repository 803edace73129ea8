"""The visualization family through its real entry points on the tiny params: the digit classifier
(the adversarial family's cnn) and the scene classifier, then the attribution and units stages."""

from __future__ import annotations

import pytest

from components.families.visualization.family import BASELINES, METHODS, NETWORKS
from components.metrics_files import read_stage_metrics

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _rows(root, stage: str, rows) -> dict[str, dict]:
    return {row: read_stage_metrics(root, f"{stage}-{row}") for row in rows}


def test_scene_classifier_then_attribution_and_units(prepared):
    from mlflow import MlflowClient

    from pipelines import train, visualization_attribution, visualization_units

    train.main(["adversarial", "cnn"])
    train.main(["visualization", "scene_cnn"])
    scene = read_stage_metrics(prepared, "visualization-scene_cnn")
    assert 0.0 < scene["val/mean_ap"] <= 1.0 and scene["headline_metric"] == "val/mean_ap"
    assert (prepared / "figures" / "visualization-scene_cnn" / "predictions.png").is_file()

    visualization_attribution.main([])
    rows = _rows(prepared, "visualization_attribution", (*METHODS, *BASELINES))
    for name, row in rows.items():
        for key in ("test/deletion_auc", "test/insertion_auc", "test/pointing_accuracy", "test/pointing_chance"):
            assert 0.0 <= row[key] <= 1.0, (name, key)
        # one set of images, targets and masks for every row: the references are shared
        assert row["test/pointing_chance"] == rows["random"]["test/pointing_chance"]
        assert row["test/deletion_auc_random"] == rows["random"]["test/deletion_auc"]
    for name in ("digits_maps", "scenes_pointing", "deletion_curves", "insertion_curves"):
        assert (prepared / "figures" / "visualization_attribution" / f"{name}.png").is_file(), name
    visualization_attribution.main([])  # seeded: a rerun gives the same numbers
    again = _rows(prepared, "visualization_attribution", (*METHODS, *BASELINES))
    assert {n: {k: v for k, v in r.items() if k.startswith("test/")} for n, r in again.items()} == {
        n: {k: v for k, v in r.items() if k.startswith("test/")} for n, r in rows.items()}

    visualization_units.main([])
    networks = _rows(prepared, "visualization_units", NETWORKS)
    for name, row in networks.items():
        layers = {k: v for k, v in row.items() if k.startswith("test/dissection_units/")}
        assert sorted(layers) == [f"test/dissection_units/conv{i}" for i in (1, 2, 3)], name
        assert row["test/dissection_units"] == sum(layers.values())
        assert 0.0 <= row["test/best_iou"] <= 1.0 and 0.0 <= row["test/class_model_probability"] <= 1.0
        assert row["test/knn_accuracy_pixels"] == networks["trained"]["test/knn_accuracy_pixels"]
    table = (prepared / "figures" / "visualization_units" / "dissection.md").read_text()
    assert "## trained" in table and "## random_init" in table
    for name in ("dissection", "tsne_trained", "tsne_random_init", "class_models_trained", "nearest_neighbours"):
        assert (prepared / "figures" / "visualization_units" / f"{name}.png").is_file(), name

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("visualization")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["attribution", "scene_cnn", "units"]  # the rerun reopened its run
    attribution = next(r for r in runs if r.info.run_name == "attribution")
    assert attribution.data.metrics["rise/deletion_auc"] == rows["rise"]["test/deletion_auc"]
