"""Semantic-segmentation metrics (mIoU, pixel accuracy) from a torchmetrics confusion matrix.

:class:`SegmentationMetrics` is a ``torchmetrics`` metric: its confusion-matrix state is summed over
ranks by torchmetrics when ``torch.distributed`` is initialised, so every rank must call
``compute()`` (it is a collective) and all of them get the same, global result.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix


def iou_from_confusion(confusion: Tensor) -> Tensor:
    """Per-class intersection over union from a (C, C) confusion matrix.

    Rows are target classes, columns predicted classes. IoU_c = TP / (TP + FP + FN), as float64;
    nan for a class with an empty union (absent from both targets and predictions).
    """
    confusion = confusion.to(torch.float64)
    true_positives = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positives
    return torch.where(union > 0, true_positives / union, torch.full_like(union, torch.nan))


class SegmentationMetrics(MulticlassConfusionMatrix):
    """Accumulates a confusion matrix over batches; ``compute()`` returns mIoU and pixel accuracy.

    ``update(preds, target)`` takes logits (N, C, H, W) or predicted labels (N, H, W), and target
    labels (N, H, W); pixels whose target is ``ignore_index`` are left out. ``compute()`` returns::

        {"miou": mean IoU over the classes with a non-empty union (0-dim float64 tensor),
         "pixel_accuracy": correctly labelled / counted pixels (0-dim float64 tensor),
         "iou_per_class": (C,) float64 tensor, nan for classes absent from targets and predictions}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, validate_args: bool = True) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, validate_args=validate_args)

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        confusion = self.confmat
        iou = iou_from_confusion(confusion)
        correct = confusion.diagonal().sum().to(torch.float64)
        return {
            "miou": iou.nanmean(),
            "pixel_accuracy": correct / confusion.sum(),
            "iou_per_class": iou,
        }
