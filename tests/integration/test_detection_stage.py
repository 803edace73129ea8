"""The detection stage end to end on local Ray: 2 DDP workers, AP gathered across ranks, figures."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from components.data.schema import read_meta
from components.families.detection.task import DetectionDataset, collate, load_exported
from components.metrics.detection import DetectionEvaluator
from components.metrics_files import read_stage_metrics

pytestmark = pytest.mark.slow


def test_two_worker_mask_rcnn_stage_matches_single_process_evaluation(prepared, ray_session):
    """Mask R-CNN (boxes and masks) with 2 DDP workers through the real entry point: the AP the
    ranks computed together (each on half of the val images) equals one process scoring the
    exported model on the whole split; the metrics file has the untrained reference and the
    figures exist; MLflow has the per-class AP."""
    from mlflow import MlflowClient

    from pipelines import train

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["detection"]["trainer"].update(num_workers=2, cpus_per_worker=1, eval_every=3, batch_size=8)
    params["detection"]["models"]["mask_rcnn"].update(epochs=3, lr=0.01, batch_size=None)  # the trainer's 8
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["detection", "mask_rcnn"])

    metrics = read_stage_metrics(prepared, "detection-mask_rcnn")
    for key in ("val/map", "val/map50", "val/mask_map", "val/mask_map50", "val/voc_map", "val/map_untrained"):
        assert key in metrics, key
    assert (prepared / "figures" / "detection-mask_rcnn" / "predictions.png").is_file()
    assert (prepared / "figures" / "detection-mask_rcnn" / "pr_curves.png").is_file()

    net = load_exported(torch.load(prepared / "models/detection/mask_rcnn/model.pt", weights_only=False))
    data_dir = prepared / "data" / "scenes"
    evaluator = DetectionEvaluator(read_meta(data_dir).class_names, masks=True)
    detections = 0
    with torch.no_grad():
        for images, targets in DataLoader(DetectionDataset(data_dir, "val", masks=True), 8, collate_fn=collate):
            preds = net(images)
            for p in preds:
                p["masks"] = (p["masks"][:, 0] > 0.5).to(torch.uint8)
                detections += len(p["boxes"])
            evaluator.update(preds, targets)
    expected = evaluator.compute()
    assert detections > 0  # the comparison is not between two empty prediction sets
    for key in ("map", "map50", "mask_map", "voc_map"):
        assert metrics[f"val/{key}"] == pytest.approx(expected[key], abs=1e-6), key

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("detection")
    (run,) = client.search_runs([experiment.experiment_id])
    assert "val/map_untrained" in run.data.metrics
    assert any(key.startswith("val/ap/") for key in run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "val/map")
    assert [m.step for m in history] == [3]  # eval_every 3: the last epoch only
