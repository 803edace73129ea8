"""Detection metrics: COCO AP by torchmetrics (faster-coco-eval backend), PASCAL VOC AP per class.

- COCO-style AP@[.5:.95], AP50, AP75, AP small/medium/large, AR@100 and per-class AP come from
  torchmetrics' ``MeanAveragePrecision`` with the ``faster_coco_eval`` backend (a C++ port of
  pycocotools' COCOeval with identical results); boxes and, for instance segmentation, masks.
- PASCAL VOC AP (the course's tables): per class, detections sorted by score; one is a true
  positive when its IoU with an unmatched ground truth of its class in its image is > 0.5, and
  later detections of the same object are false positives; AP is the area under the
  precision-recall curve with precision made monotone (all-point interpolation, VOC2010+).

Crowd regions (a target's optional ``iscrowd``, 1 per crowd box: COCO's ``iscrowd=1``) are ignored
as COCOeval ignores them, in both: a crowd is no object to find (it counts for no recall), and a
detection that is no true positive but overlaps a crowd region of its class (intersection over the
*detection's* area, COCO's "iof", above the threshold) is neither a true nor a false positive.
COCOeval gets the flags through torchmetrics. In VOC AP this is the role of VOC's "difficult"
objects, with COCO's overlap: VOC's devkit ignores a detection whose best IoU is with a difficult
object, which would count a small detection inside a large crowd as a false positive.

:class:`DetectionEvaluator` collects one rank's predictions, gathers every rank's at ``compute``
(each image counted once) and returns both, plus the raw precision-recall curves for figures.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou

# torchmetrics' result keys -> ours (ARCHITECTURE.md fixes ``val/map`` and ``val/map50``).
COCO_KEYS = {
    "map": "map", "map_50": "map50", "map_75": "map75", "map_small": "map_small", "map_medium": "map_medium",
    "map_large": "map_large", "mar_100": "mar100",
}
# COCOeval's own thresholds in float64. torchmetrics' defaults come from a float32 linspace
# (0.6499999762 for 0.65, 0.0099999998 for 0.01); recalls that land exactly on a threshold
# (k / num_objects) then pick another precision, and AP differed from pycocotools by 2e-4 on
# 500 scenes (bench/detection_eval.py); with these it agrees to 1e-9.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10).tolist()
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101).tolist()


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve after making precision monotone non-increasing
    (VOC2010+ all-point interpolation; ``recall`` ascending, one entry per ranked detection)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


@dataclass
class PRCurve:
    recall: np.ndarray
    precision: np.ndarray
    ap: float


def _is_crowd(target: dict) -> torch.Tensor:
    """A target's crowd flags as bool (K,); all False without ``iscrowd``."""
    flags = target.get("iscrowd")
    return torch.zeros(len(target["labels"]), dtype=torch.bool) if flags is None else flags.bool()


def _iof(boxes: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """(N, M) intersection of each box with each region over the box's own area (COCOeval's crowd IoU)."""
    lt = torch.maximum(boxes[:, None, :2], regions[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    return inter / area.clamp(min=torch.finfo(boxes.dtype).tiny)[:, None]


def _voc_matches(pred: dict, target: dict, cls: int, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One image, one class: scores and true-positive flags of its counted detections. In score order
    each takes the object it overlaps most; above the threshold it is a true positive unless an
    earlier detection took that object. Any other is a false positive, unless it overlaps a crowd
    region of its class above the threshold (intersection over its area): then it is not counted."""
    keep = pred["labels"] == cls
    scores = pred["scores"][keep].double().numpy()
    order = np.argsort(-scores, kind="stable")
    boxes = pred["boxes"][keep][torch.from_numpy(order)].float()
    of_class = target["labels"] == cls
    is_crowd = _is_crowd(target)
    gt = target["boxes"][of_class & ~is_crowd].float()
    regions = target["boxes"][of_class & is_crowd].float()
    tp = np.zeros(len(order))
    if len(gt) and len(order):
        ious = box_iou(boxes, gt).numpy()
        best, best_iou = ious.argmax(axis=1), ious.max(axis=1)
        taken = np.zeros(len(gt), dtype=bool)
        for i in range(len(order)):
            if best_iou[i] > iou_threshold and not taken[best[i]]:
                taken[best[i]] = True
                tp[i] = 1
    counted = np.ones(len(order), dtype=bool)
    if len(regions) and len(order):
        counted = (tp == 1) | ~(_iof(boxes, regions).max(dim=1).values > iou_threshold).numpy()
    return scores[order][counted], tp[counted]


def voc_pr_curves(
    preds: Sequence[dict], targets: Sequence[dict], num_classes: int, iou_threshold: float = 0.5
) -> dict[int, PRCurve]:
    """Per-class PR curves and VOC AP over images (``preds[i]``/``targets[i]``: one image, torchvision
    dicts with ``boxes`` xyxy, ``labels``, optionally ``iscrowd`` and, for predictions, ``scores``).
    Classes without ground truth (crowds do not count) are left out. Matching is per image, so it
    is done image by image and the detections are then ranked together by score."""
    curves = {}
    for cls in range(1, num_classes):
        num_gt = sum(int(((t["labels"] == cls) & ~_is_crowd(t)).sum()) for t in targets)
        if num_gt == 0:
            continue
        matches = [_voc_matches(p, t, cls, iou_threshold) for p, t in zip(preds, targets, strict=True)]
        scores = np.concatenate([m[0] for m in matches])
        tp = np.concatenate([m[1] for m in matches])[np.argsort(-scores, kind="stable")]
        cum_tp = np.cumsum(tp)
        recall = cum_tp / num_gt
        precision = cum_tp / np.arange(1, len(tp) + 1)
        curves[cls] = PRCurve(recall, precision, voc_ap(recall, precision))
    return curves


def _plain_print(*objects, sep=" ", end="\n", file=None, flush=False) -> None:
    (file or sys.stdout).write(sep.join(map(str, objects)) + end)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow COCOeval's summaries: pycocotools prints them (torchmetrics redirects stdout, but Ray
    Train's workers patch ``print`` to log every message as well, which floods the driver) and
    faster-coco-eval logs its progress at INFO (which Ray's workers show)."""
    saved = builtins.print
    builtins.print = _plain_print
    chatty = logging.getLogger("faster_coco_eval")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        builtins.print = saved
        chatty.setLevel(level)


def _to_cpu(items: Sequence[dict]) -> list[dict]:
    return [{k: v.detach().cpu() for k, v in item.items()} for item in items]


class DetectionEvaluator:
    """Accumulates predictions on one rank; ``compute`` gathers all ranks and scores them."""

    def __init__(self, class_names: Sequence[str], masks: bool = False, backend: str = "faster_coco_eval"):
        self.class_names = list(class_names)
        self.masks = masks
        self.backend = backend
        self.preds: list[dict] = []
        self.targets: list[dict] = []
        self.curves: dict[int, PRCurve] = {}

    def update(self, preds: Sequence[dict], targets: Sequence[dict]) -> None:
        keys = ("boxes", "scores", "labels", "masks") if self.masks else ("boxes", "scores", "labels")
        self.preds += _to_cpu([{k: p[k] for k in keys} for p in preds])
        keys = ("boxes", "labels", "iscrowd", "masks") if self.masks else ("boxes", "labels", "iscrowd")
        self.targets += _to_cpu([{k: t[k] for k in keys if k in t} for t in targets])

    def _gathered(self) -> tuple[list[dict], list[dict]]:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.preds, self.targets
        shards: list = [None] * dist.get_world_size()
        dist.all_gather_object(shards, (self.preds, self.targets))
        return [p for s in shards for p in s[0]], [t for s in shards for t in s[1]]

    def compute(self) -> dict[str, float]:
        """``map``, ``map50``, ... (boxes), ``mask_map``... (masks), ``ap/<class>`` (COCO AP per
        class), ``voc_map`` and ``voc_ap/<class>``. COCO's area ranges without objects (-1) are left out."""
        preds, targets = self._gathered()
        iou_types = ("bbox", "segm") if self.masks else ("bbox",)
        coco = MeanAveragePrecision(
            box_format="xyxy", iou_type=iou_types, iou_thresholds=IOU_THRESHOLDS, rec_thresholds=RECALL_THRESHOLDS,
            extended_summary=True, backend=self.backend, sync_on_compute=False,
        )
        for p, t in zip(preds, targets, strict=True):
            if self.masks:
                p = {**p, "masks": p["masks"].bool()}
                t = {**t, "masks": t["masks"].bool()}
            coco.update([p], [t])
        with _quiet():
            result = coco.compute()
        # COCOeval's category axis: the sorted labels seen in predictions or ground truth.
        seen = torch.cat([x["labels"] for x in (*preds, *targets)]).unique().tolist()
        out: dict[str, float] = {}
        for iou_type, prefix in zip(iou_types, ("", "mask_"), strict=False):
            key_prefix = f"{iou_type}_" if self.masks else ""
            for key, name in COCO_KEYS.items():
                value = float(result[key_prefix + key])
                if value >= 0:
                    out[prefix + name] = value
            # Per-class AP as COCOeval.summarize() computes the mean: precision (T, R, K, area, maxDets)
            # at area "all" and maxDets 100, averaged over its defined (> -1) entries. torchmetrics'
            # class_metrics would rerun the whole evaluation once per class instead.
            precision = result[key_prefix + "precision"][:, :, :, 0, -1]
            for k, cls in enumerate(seen):
                defined = precision[:, :, k][precision[:, :, k] > -1]
                if len(defined):
                    out[f"{prefix}ap/{self.class_names[cls]}"] = float(defined.mean())
        self.curves = voc_pr_curves(preds, targets, len(self.class_names))
        for cls, curve in self.curves.items():
            out[f"voc_ap/{self.class_names[cls]}"] = curve.ap
        out["voc_map"] = float(np.mean([c.ap for c in self.curves.values()])) if self.curves else 0.0
        return out
