"""Semantic-segmentation metrics (mIoU, pixel accuracy) from a confusion matrix, as the course derives them.

:class:`SegmentationMetrics` accumulates the (C, C) confusion matrix with one ``torch.bincount``
per batch (``tests/unit/test_segmentation_metrics.py`` checks it equals torchmetrics'
``MulticlassConfusionMatrix``, and its IoU torchmetrics' ``MulticlassJaccardIndex``). It is not a
torchmetrics ``Metric`` on purpose: importing torchmetrics (it imports torchvision and
``scipy.signal``) cost every segmentation stage ~1.4 s of start-up for this one sum. Under
``torch.distributed`` the matrix is summed over ranks in :meth:`~SegmentationMetrics.compute`, so
every rank must call it (it is a collective) and all of them get the same, global result.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def iou_from_confusion(confusion: Tensor) -> Tensor:
    """Per-class intersection over union from a (C, C) confusion matrix.

    Rows are target classes, columns predicted classes. IoU_c = TP / (TP + FP + FN), as float64;
    nan for a class with an empty union (absent from both targets and predictions).
    """
    confusion = confusion.to(torch.float64)
    true_positives = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positives
    return torch.where(union > 0, true_positives / union, torch.full_like(union, torch.nan))


def class_accuracy_from_confusion(confusion: Tensor) -> Tensor:
    """Mean per-class accuracy (recall) of a (C, C) confusion matrix (rows: targets) over the classes
    with target pixels, as float64."""
    confusion = confusion.to(torch.float64)
    totals = confusion.sum(dim=1)
    present = totals > 0
    return (confusion.diagonal()[present] / totals[present]).mean()


class SegmentationMetrics:
    """Accumulates a confusion matrix over batches; ``compute()`` returns mIoU and pixel accuracy.

    ``update(preds, target)`` takes logits (N, C, H, W) or predicted labels (N, H, W), and target
    labels (N, H, W); pixels whose target is ``ignore_index`` are left out (a target outside
    ``[0, C)`` otherwise is a ValueError when ``validate_args``). ``compute()`` returns::

        {"miou": mean IoU over the classes with a non-empty union (0-dim float64 tensor),
         "pixel_accuracy": correctly labelled / counted pixels (0-dim float64 tensor),
         "class_accuracy": mean over the classes present in the targets of the share of their pixels
                           labelled right (0-dim float64 tensor; the FCN-score's per-class accuracy),
         "iou_per_class": (C,) float64 tensor, nan for classes absent from targets and predictions}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, validate_args: bool = True) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.confmat = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def to(self, device: torch.device | str) -> SegmentationMetrics:
        self.confmat = self.confmat.to(device)
        return self

    def reset(self) -> None:
        self.confmat.zero_()

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.dim() == target.dim() + 1:  # logits (N, C, H, W)
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} and targets {tuple(target.shape)} differ in shape")
        target, preds = target.reshape(-1), preds.reshape(-1)
        if self.ignore_index is not None:
            kept = target != self.ignore_index
            target, preds = target[kept], preds[kept]
        if self.validate_args and target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(f"target labels must lie in [0, {self.num_classes}) or be ignore_index "
                             f"({self.ignore_index}); found {target.min().item()}..{target.max().item()}")
        cells = target.long() * self.num_classes + preds.long()
        self.confmat += torch.bincount(cells, minlength=self.num_classes**2).view(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, Tensor]:
        confusion = self.confmat.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(confusion)
        iou = iou_from_confusion(confusion)
        correct = confusion.diagonal().sum().to(torch.float64)
        return {
            "miou": iou.nanmean(),
            "pixel_accuracy": correct / confusion.sum(),
            "class_accuracy": class_accuracy_from_confusion(confusion),
            "iou_per_class": iou,
        }
