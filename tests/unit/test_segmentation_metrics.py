"""Segmentation metrics against known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

from components.metrics.segmentation import SegmentationMetrics, iou_from_confusion


def _random_batch(seed: int, num_classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, num_classes, 8, 8, generator=generator)
    targets = torch.randint(num_classes, (3, 8, 8), generator=generator)
    return logits, targets


def test_iou_from_a_hand_built_confusion_matrix() -> None:
    # rows = target, cols = prediction: class 0 has TP 3, FN 1, FP 2; class 1 has TP 4, FN 2, FP 1.
    iou = iou_from_confusion(torch.tensor([[3, 1], [2, 4]]))
    assert iou.tolist() == pytest.approx([3 / 6, 4 / 7])


def test_iou_is_nan_for_a_class_with_an_empty_union() -> None:
    iou = iou_from_confusion(torch.tensor([[5, 0, 1], [0, 0, 0], [2, 0, 2]]))
    assert iou[0].item() == pytest.approx(5 / 8)
    assert math.isnan(iou[1].item())
    assert iou[2].item() == pytest.approx(2 / 5)


def test_perfect_prediction_scores_one() -> None:
    _, targets = _random_batch(seed=0)
    metric = SegmentationMetrics(num_classes=4)
    metric.update(targets.clone(), targets)
    result = metric.compute()
    assert result["miou"].item() == 1.0
    assert result["pixel_accuracy"].item() == 1.0
    assert result["iou_per_class"].tolist() == [1.0] * 4


def test_logits_and_labels_give_the_same_result() -> None:
    logits, targets = _random_batch(seed=1)
    from_logits, from_labels = SegmentationMetrics(4), SegmentationMetrics(4)
    from_logits.update(logits, targets)
    from_labels.update(logits.argmax(dim=1), targets)
    assert torch.equal(from_logits.compute()["iou_per_class"], from_labels.compute()["iou_per_class"])


def test_known_answer_on_a_small_mask() -> None:
    targets = torch.tensor([[[0, 0, 1], [1, 1, 1]]])
    predictions = torch.tensor([[[0, 1, 1], [0, 1, 1]]])
    metric = SegmentationMetrics(num_classes=2)
    metric.update(predictions, targets)
    result = metric.compute()
    # confusion [[1, 1], [1, 3]]: IoU0 = 1/3, IoU1 = 3/5
    assert result["iou_per_class"].tolist() == pytest.approx([1 / 3, 3 / 5])
    assert result["miou"].item() == pytest.approx((1 / 3 + 3 / 5) / 2)
    assert result["pixel_accuracy"].item() == pytest.approx(4 / 6)


def test_ignore_index_pixels_are_excluded() -> None:
    targets = torch.tensor([[[0, 1, 255], [255, 1, 0]]])
    predictions = torch.tensor([[[0, 1, 0], [1, 1, 0]]])  # wrong only where the target is ignored
    metric = SegmentationMetrics(num_classes=2, ignore_index=255)
    metric.update(predictions, targets)
    result = metric.compute()
    assert metric.confmat.sum().item() == 4
    assert result["miou"].item() == 1.0
    assert result["pixel_accuracy"].item() == 1.0


def test_a_class_absent_from_target_and_prediction_is_left_out_of_the_mean() -> None:
    targets = torch.tensor([[[0, 0, 2, 2]]])
    predictions = torch.tensor([[[0, 2, 2, 2]]])
    metric = SegmentationMetrics(num_classes=3)
    metric.update(predictions, targets)
    result = metric.compute()
    assert math.isnan(result["iou_per_class"][1].item())
    assert result["miou"].item() == pytest.approx((1 / 2 + 2 / 3) / 2)  # not divided by 3


def test_accumulating_two_batches_equals_one_concatenated_batch() -> None:
    (logits_a, targets_a), (logits_b, targets_b) = _random_batch(seed=2), _random_batch(seed=3)
    accumulated = SegmentationMetrics(num_classes=4)
    accumulated.update(logits_a, targets_a)
    accumulated.update(logits_b, targets_b)
    concatenated = SegmentationMetrics(num_classes=4)
    concatenated.update(torch.cat([logits_a, logits_b]), torch.cat([targets_a, targets_b]))
    assert torch.equal(accumulated.confmat, concatenated.confmat)
    for key, value in accumulated.compute().items():
        assert torch.equal(value, concatenated.compute()[key]), key


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_confusion_matrix_equals_torchmetrics(ignore_index: int | None) -> None:
    """Our bincount is torchmetrics' MulticlassConfusionMatrix, batch after batch."""
    ours = SegmentationMetrics(num_classes=4, ignore_index=ignore_index)
    reference = MulticlassConfusionMatrix(num_classes=4, ignore_index=ignore_index)
    for seed in range(3):
        logits, targets = _random_batch(seed=10 + seed)
        if ignore_index is not None:
            targets[seed, seed:] = ignore_index
        ours.update(logits, targets)
        reference.update(logits, targets)
        assert torch.equal(ours.confmat, reference.compute())


def test_a_target_outside_the_classes_is_an_error() -> None:
    logits, targets = _random_batch(seed=5)
    targets[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        SegmentationMetrics(num_classes=4).update(logits, targets)


def test_per_class_iou_matches_torchmetrics_jaccard_index() -> None:
    logits, targets = _random_batch(seed=4)
    targets[0, :2] = 255
    metric = SegmentationMetrics(num_classes=4, ignore_index=255)
    metric.update(logits, targets)
    jaccard = MulticlassJaccardIndex(num_classes=4, average="none", ignore_index=255)
    expected = jaccard(logits, targets)
    assert metric.compute()["iou_per_class"].float() == pytest.approx(expected, abs=1e-6)


def _evaluate_on_rank(rank: int, world_size: int, directory: Path) -> None:
    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{directory / 'init'}", rank=rank, world_size=world_size)
    try:
        metric = SegmentationMetrics(num_classes=4)
        metric.update(*_random_batch(seed=rank))  # each rank sees different data
        torch.save(metric.compute()["iou_per_class"], directory / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_compute_sums_the_confusion_matrix_over_ranks(tmp_path: Path) -> None:
    """Two gloo ranks on different data both compute the IoU of all data, as DDP evaluation needs."""
    mp.start_processes(_evaluate_on_rank, args=(2, tmp_path), nprocs=2, start_method="fork")
    single_process = SegmentationMetrics(num_classes=4)
    for rank in range(2):
        single_process.update(*_random_batch(seed=rank))
    expected = single_process.compute()["iou_per_class"]
    for rank in range(2):
        assert torch.equal(torch.load(tmp_path / f"rank{rank}.pt"), expected)
