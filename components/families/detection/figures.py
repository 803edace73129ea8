"""Figures of detections: predicted boxes (and masks) on validation images, per-class PR curves."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from components.metrics.detection import PRCurve  # noqa: E402

SCORE_THRESHOLD = 0.5  # predictions drawn on the images (every prediction counts in AP)


def _colour(label: int):
    return plt.get_cmap("tab10")(int(label) % 10)


def prediction_figure(
    images: Sequence[torch.Tensor],
    targets: Sequence[Mapping[str, torch.Tensor]],
    preds: Sequence[Mapping[str, torch.Tensor]],
    class_names: Sequence[str],
    cols: int = 4,
):
    """Each image with its ground-truth boxes (dashed white) and predictions scoring at least
    ``SCORE_THRESHOLD`` (solid, coloured by class, labelled ``class score``; masks tinted)."""
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, target, pred in zip(axes.flat, images, targets, preds, strict=False):
        picture = image.detach().cpu().permute(1, 2, 0).numpy()
        if picture.shape[-1] == 1:
            picture = np.repeat(picture, 3, axis=-1)
        keep = pred["scores"].detach().cpu() >= SCORE_THRESHOLD
        if "masks" in pred:
            for mask, label in zip(pred["masks"].cpu()[keep], pred["labels"].cpu()[keep], strict=True):
                tint = np.array(_colour(label)[:3])
                m = mask.numpy().astype(bool)
                picture[m] = 0.5 * picture[m] + 0.5 * tint
        ax.imshow(picture, interpolation="nearest")
        for box in target["boxes"].cpu().tolist():
            ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec="white", ls="--", lw=1))
        for box, label, score in zip(
            pred["boxes"].cpu()[keep].tolist(), pred["labels"].cpu()[keep].tolist(),
            pred["scores"].cpu()[keep].tolist(), strict=True,
        ):
            colour = _colour(label)
            ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec=colour, lw=1.5))
            ax.text(box[0], box[1] - 1, f"{class_names[label]} {score:.2f}", color=colour, fontsize=6, va="bottom")
    fig.suptitle(f"predictions (score >= {SCORE_THRESHOLD}; ground truth dashed)", fontsize=9)
    fig.tight_layout()
    return fig


def pr_curve_figure(curves: Mapping[int, PRCurve], class_names: Sequence[str]):
    """Precision against recall per class at IoU 0.5, with each class's VOC AP in the legend."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for cls, curve in sorted(curves.items()):
        ax.plot(curve.recall, curve.precision, color=_colour(cls), lw=1.2, label=f"{class_names[cls]} {curve.ap:.2f}")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall per class (IoU > 0.5; legend: VOC AP)", fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig
