"""Known answers for the detection metrics: COCO AP (faster-coco-eval via torchmetrics) and VOC AP."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchvision.ops import box_iou

from components.metrics.detection import DetectionEvaluator, voc_ap, voc_pr_curves

CLASSES = ["background", "a", "b"]


def _target(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def _pred(boxes, labels, scores):
    return {**_target(boxes, labels), "scores": torch.tensor(scores, dtype=torch.float32)}


def _targets():
    return [
        _target([[4, 4, 20, 24], [30, 10, 50, 28]], [1, 2]),
        _target([[10, 30, 28, 50]], [1]),
        _target([[2, 2, 18, 18], [40, 40, 60, 60], [20, 40, 34, 58]], [2, 2, 1]),
    ]


def _score(preds, targets, **kwargs):
    evaluator = DetectionEvaluator(CLASSES, **kwargs)
    evaluator.update(preds, targets)
    return evaluator.compute()


def test_perfect_predictions_score_one():
    targets = _targets()
    preds = [_pred(t["boxes"].tolist(), t["labels"].tolist(), [1.0] * len(t["labels"])) for t in targets]
    result = _score(preds, targets)
    assert result["map"] == pytest.approx(1.0)
    assert result["map50"] == pytest.approx(1.0)
    assert result["map75"] == pytest.approx(1.0)
    assert result["voc_map"] == pytest.approx(1.0)
    assert result["ap/a"] == pytest.approx(1.0) and result["voc_ap/b"] == pytest.approx(1.0)


def test_boxes_shifted_to_iou_0_4_score_zero_ap50():
    # A 10x10 box shifted right by d overlaps (10 - d) * 10; IoU 0.4 <=> d = 30 / 7.
    shift = 30 / 7
    targets = [_target([[0, 0, 10, 10]], [1]), _target([[20, 20, 30, 30]], [2])]
    preds = [_pred([[b[0] + shift, b[1], b[2] + shift, b[3]] for b in t["boxes"].tolist()], t["labels"].tolist(), [0.9])
             for t in targets]
    assert float(box_iou(preds[0]["boxes"], targets[0]["boxes"])) == pytest.approx(0.4, abs=1e-6)
    result = _score(preds, targets)
    assert result["map50"] == 0.0
    assert result["voc_map"] == 0.0


def test_a_duplicate_of_a_matched_object_is_a_false_positive():
    # Two objects; ranked detections: A (TP), A again (FP: A is taken), B (TP).
    # Precision/recall: (1, 1/2), (1/2, 1/2), (2/3, 1). VOC AP = 1/2 * 1 + 1/2 * 2/3 = 5/6;
    # COCO's 101-point AP50 = (51 * 1 + 50 * 2/3) / 101. Without the duplicate both would be 1.
    targets = [_target([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1])]
    preds = [_pred([[0, 0, 10, 10], [0.5, 0, 10.5, 10], [20, 20, 30, 30]], [1, 1, 1], [0.9, 0.8, 0.7])]
    result = _score(preds, targets)
    assert result["voc_ap/a"] == pytest.approx(5 / 6)
    assert result["map50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-4)


def test_voc_ap_of_a_hand_example():
    # Ranked TP, FP, TP over 2 objects: recall (0.5, 0.5, 1), precision (1, 0.5, 2/3).
    # Monotone precision: 1 up to recall 0.5, then 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3.
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    # A dip followed by a rise is filled up to the later precision (the interpolation).
    recall = np.array([0.25, 0.25, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 0.75])
    assert voc_ap(recall, precision) == pytest.approx(0.25 * 1 + 0.5 * 0.75)


def test_voc_ap_needs_iou_strictly_above_half():
    target = [_target([[0, 0, 10, 10]], [1])]
    exactly_half = [_pred([[0, 0, 10, 20]], [1], [1.0])]  # IoU 100 / 200
    assert voc_pr_curves(exactly_half, target, 3)[1].ap == 0.0
    above = [_pred([[0, 0, 10, 19]], [1], [1.0])]
    assert voc_pr_curves(above, target, 3)[1].ap == 1.0


def test_classes_without_ground_truth_are_left_out():
    targets = [_target([[0, 0, 10, 10]], [1])]
    preds = [_pred([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2], [0.9, 0.9])]
    result = _score(preds, targets)
    assert "voc_ap/b" not in result and result["voc_map"] == 1.0
    assert result["map"] == pytest.approx(1.0)


def test_perfect_masks_score_one_and_a_wrong_mask_does_not():
    h = w = 32
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 2:12, 3:10] = 1
    masks[1, 15:30, 18:25] = 1
    targets = [{**_target([[3, 2, 10, 12], [18, 15, 25, 30]], [1, 2]), "masks": masks}]
    preds = [{**_pred([[3, 2, 10, 12], [18, 15, 25, 30]], [1, 2], [0.9, 0.8]), "masks": masks.clone()}]
    result = _score(preds, targets, masks=True)
    assert result["map"] == pytest.approx(1.0) and result["mask_map"] == pytest.approx(1.0)
    wrong = masks.clone()
    wrong[1] = 0
    wrong[1, 15:18, 18:21] = 1  # same box, mask covering 9 of 105 pixels
    result = _score([{**preds[0], "masks": wrong}], targets, masks=True)
    assert result["map"] == pytest.approx(1.0) and result["mask_map50"] == pytest.approx(0.5)


def _ranked_shard(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    targets = _targets()
    preds = [_pred(t["boxes"].tolist(), t["labels"].tolist(), [0.9] * len(t["labels"])) for t in targets]
    preds[2]["boxes"][0] += 5  # one weaker detection, so the score is not trivially 1
    evaluator = DetectionEvaluator(CLASSES)
    for i in range(rank, len(targets), world):  # the harness's strided shard
        evaluator.update([preds[i]], [targets[i]])
    queue.put((rank, evaluator.compute()))
    dist.destroy_process_group()


def test_ranks_are_gathered_so_every_image_counts_once():
    targets = _targets()
    preds = [_pred(t["boxes"].tolist(), t["labels"].tolist(), [0.9] * len(t["labels"])) for t in targets]
    preds[2]["boxes"][0] += 5
    single = _score(preds, targets)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = 29500 + os.getpid() % 1000
    procs = [ctx.Process(target=_ranked_shard, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert single["map"] < 1.0
    for rank in (0, 1):
        assert results[rank]["map"] == pytest.approx(single["map"])
        assert results[rank]["voc_map"] == pytest.approx(single["voc_map"])


def test_targets_with_iscrowd_all_zero_score_as_without():
    targets = _targets()
    preds = [_pred(t["boxes"].tolist(), t["labels"].tolist(), [0.9] * len(t["labels"])) for t in targets]
    preds[2]["boxes"][0] += 5
    flagged = [{**t, "iscrowd": torch.zeros(len(t["labels"]), dtype=torch.int64)} for t in targets]
    assert _score(preds, flagged) == pytest.approx(_score(preds, targets))


def test_a_crowd_flag_turns_an_object_into_an_ignored_region():
    # Two objects, one detection on the second: recall 1/2. Flag the second a crowd: its detection
    # is ignored (no TP, no FP) and the first is then the only object, found by nothing.
    targets = [_target([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1])]
    preds = [_pred([[20, 20, 30, 30]], [1], [0.9])]
    assert _score(preds, targets)["voc_ap/a"] == pytest.approx(0.5)
    crowd = [{**targets[0], "iscrowd": torch.tensor([0, 1])}]
    result = _score(preds, crowd)
    assert result["voc_ap/a"] == 0.0 and result["map"] == 0.0 and result["mar100"] == 0.0
    assert voc_pr_curves(preds, crowd, len(CLASSES))[1].recall.size == 0
