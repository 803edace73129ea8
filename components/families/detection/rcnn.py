"""R-CNN (Girshick et al. 2014): selective-search proposals, each warped and run through a CNN;
one-vs-rest linear SVMs on its features score them, class-specific ridge regressors move them.

Training has the paper's three stages. The harness's epochs fine-tune the CNN as a softmax
classifier over classes + background on warped proposals (IoU >= 0.5 foreground;
regions.RegionClassifierDetector). Then, before every evaluation, :func:`fit_region_heads` (the
task calls it) extracts the CNN's features on training images and fits, per class,

- a linear SVM (scikit-learn's ``LinearSVC``) on fc7, scaled to a mean L2 norm of 20 as the paper's
  code does (``FEATURE_NORM``): positives the class's ground-truth boxes,
  negatives the proposals overlapping none of them at IoU >= ``svm_neg_iou`` (0.3), mined hard:
  start from a random subset, then add every negative inside the margin and refit, ``mining_rounds``
  times;
- a ridge regression (scikit-learn's ``Ridge``, the paper's lambda 1000) from pool5 to the box
  offsets (torchvision's ``BoxCoder`` with unit weights: dx, dy, log dw, log dh) of proposals with
  IoU >= ``regression_iou`` (0.6) to a box of the class.

Their weights are buffers of the network, so they checkpoint and export with it. Until they are
fitted (the untrained reference) the CNN's softmax scores the proposals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import box_iou

from components.families.detection.regions import RegionClassifierDetector, stack_images

UNIT_BOX_CODER = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))  # R-CNN's parametrisation, unscaled
FEATURE_NORM = 20.0  # the SVMs see fc7 scaled to this mean L2 norm (R-CNN's feat_norm_mean)


class RCNN(RegionClassifierDetector):
    """R-CNN on externally computed proposals: ``forward(images, proposals[, targets])``."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, **kwargs):
        super().__init__(num_classes, in_channels, image_size, **kwargs)
        classes, fc7, pool5 = num_classes - 1, self.cnn.classifier.in_features, self.cnn.pool5_dim
        self.register_buffer("svm_weight", torch.zeros(classes, fc7))
        self.register_buffer("svm_bias", torch.zeros(classes))
        self.register_buffer("svm_scale", torch.ones(()))  # fc7 -> the SVMs' input
        self.register_buffer("box_weight", torch.zeros(classes, 4, pool5))
        self.register_buffer("box_bias", torch.zeros(classes, 4))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, images: Sequence[Tensor], proposals: Sequence[Tensor],
                targets: Sequence[dict[str, Tensor]] | None = None):
        batch = stack_images(images)
        if self.training:
            return self.train_losses(batch, proposals, targets)
        return self.detect(batch, list(proposals))

    def score(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """SVM margins (through a sigmoid, for scores in (0, 1)) and the regressed boxes, once fitted."""
        if not bool(self.fitted):
            return super().score(images, regions)
        pool5, fc7, _ = self.features(images, regions)
        scores = torch.sigmoid(self.svm_scale * fc7 @ self.svm_weight.T + self.svm_bias)
        deltas = torch.einsum("rd,cfd->rcf", pool5, self.box_weight) + self.box_bias  # (R, K - 1, 4)
        proposals = torch.cat(list(regions)) if len(regions) else pool5.new_zeros(0, 4)
        classes = deltas.shape[1]
        boxes = UNIT_BOX_CODER.decode_single(deltas.reshape(-1, 4), proposals.repeat_interleave(classes, dim=0))
        return scores, boxes.reshape(-1, classes, 4)

    @torch.no_grad()
    def set_heads(self, svm_scale: float, svm_weight: np.ndarray, svm_bias: np.ndarray, box_weight: np.ndarray,
                  box_bias: np.ndarray) -> None:
        for name, value in (("svm_scale", svm_scale), ("svm_weight", svm_weight), ("svm_bias", svm_bias),
                            ("box_weight", box_weight), ("box_bias", box_bias)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        self.fitted.fill_(True)


@torch.no_grad()
def region_features(net: RCNN, batches: Iterable[tuple[list[Tensor], list[dict[str, Tensor]]]]) -> dict[str, list]:
    """Per image: the regions (ground truth first, then the proposals), their pool5 and fc7
    features, and the ground truth, from ``(images, targets)`` batches whose targets carry
    ``proposals``."""
    was_training = net.training
    net.eval()
    out = {"regions": [], "pool5": [], "fc7": [], "gt_boxes": [], "gt_labels": []}
    try:
        for images, targets in batches:
            batch = stack_images(images)
            regions = [torch.cat([t["boxes"], t["proposals"]]) for t in targets]
            pool5, fc7, _ = net.features(batch, regions)
            counts = [len(r) for r in regions]
            out["regions"] += regions
            out["pool5"] += list(pool5.split(counts))
            out["fc7"] += list(fc7.split(counts))
            out["gt_boxes"] += [t["boxes"] for t in targets]
            out["gt_labels"] += [t["labels"] for t in targets]
    finally:
        net.train(was_training)
    return out


def fit_region_heads(net: RCNN, batches, *, svm_c: float, svm_neg_iou: float, initial_negatives: int,
                     mining_rounds: int, regression_iou: float, ridge_alpha: float, seed: int) -> dict[str, float]:
    """Fit ``net``'s SVMs and box regressors on the features of ``batches`` (see the module's
    docstring) and store them in the network; returns fit statistics (mean over classes)."""
    from sklearn.linear_model import Ridge
    from sklearn.svm import LinearSVC

    data = region_features(net, batches)
    classes = net.num_classes - 1
    svm_w = np.zeros((classes, net.svm_weight.shape[1]), np.float32)
    svm_b = np.zeros(classes, np.float32)
    box_w = np.zeros((classes, 4, net.cnn.pool5_dim), np.float32)
    box_b = np.zeros((classes, 4), np.float32)
    rng = np.random.default_rng(seed)
    overlaps = []
    for regions, gt_boxes in zip(data["regions"], data["gt_boxes"], strict=True):
        iou = box_iou(regions, gt_boxes) if len(gt_boxes) else regions.new_zeros(len(regions), 0)
        overlaps.append(iou)
    fc7 = torch.cat(data["fc7"]).numpy()
    scale = FEATURE_NORM / max(float(np.linalg.norm(fc7, axis=1).mean()), 1e-12)
    fc7 = fc7 * scale
    pool5 = torch.cat(data["pool5"]).numpy()
    regions = torch.cat(data["regions"])
    is_gt = torch.cat([torch.arange(len(r)) < len(g) for r, g in zip(data["regions"], data["gt_boxes"], strict=True)])
    hard_added, box_samples = [], []
    for k in range(classes):
        label = k + 1
        # per region: the best IoU with a box of this class, and that box
        best_iou, best_box = [], []
        for iou, gt_boxes, gt_labels in zip(overlaps, data["gt_boxes"], data["gt_labels"], strict=True):
            of_class = gt_labels == label
            if of_class.any():
                values, index = iou[:, of_class].max(dim=1)
                best_iou.append(values)
                best_box.append(gt_boxes[of_class][index])
            else:
                best_iou.append(iou.new_zeros(len(iou)))
                best_box.append(iou.new_zeros(len(iou), 4))
        best_iou, best_box = torch.cat(best_iou), torch.cat(best_box)
        positives = np.flatnonzero((is_gt & (best_iou >= 0.999)).numpy())
        negatives = np.flatnonzero((~is_gt & (best_iou < svm_neg_iou)).numpy())
        if len(positives) == 0:
            continue
        active = rng.choice(negatives, size=min(initial_negatives, len(negatives)), replace=False)
        svm = LinearSVC(C=svm_c, loss="hinge", dual=True, max_iter=5000, random_state=seed)
        added = 0
        for _ in range(mining_rounds + 1):
            x = np.concatenate([fc7[positives], fc7[active]])
            y = np.concatenate([np.ones(len(positives)), np.zeros(len(active))])
            svm.fit(x, y)
            margins = svm.decision_function(fc7[negatives])
            hard = np.setdiff1d(negatives[margins > -1.0], active)  # inside the margin or wrong side
            if len(hard) == 0:
                break
            active = np.concatenate([active, hard])
            added += len(hard)
        hard_added.append(added)
        svm_w[k], svm_b[k] = svm.coef_[0], svm.intercept_[0]
        near = np.flatnonzero((~is_gt & (best_iou >= regression_iou)).numpy())
        if len(near):
            targets = UNIT_BOX_CODER.encode_single(best_box[near], regions[near]).numpy()
            ridge = Ridge(alpha=ridge_alpha).fit(pool5[near], targets)
            box_w[k], box_b[k] = ridge.coef_, ridge.intercept_
            box_samples.append(len(near))
    net.set_heads(scale, svm_w, svm_b, box_w, box_b)
    return {"svm_hard_negatives": float(np.mean(hard_added)) if hard_added else 0.0,
            "box_regression_samples": float(np.mean(box_samples)) if box_samples else 0.0}
