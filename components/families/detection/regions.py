"""Detectors that classify regions cropped out of the image: the sliding-window CNN and R-CNN.

Both warp every region to a fixed ``crop_size`` square (R-CNN's anisotropic warp, after dilating
the box by ``context`` of its size on each side) and run a small CNN on each crop; they differ
in where the regions come from (a fixed grid of windows, or selective-search proposals) and in
what scores them (the CNN's softmax, or R-CNN's per-class linear SVMs on its features, with
class-specific box regression: rcnn.py). That every region pays a full CNN pass is what Fast
R-CNN removes (fast_rcnn.py).

Interface: torchvision's (``forward`` returns a loss dict in train mode, detections in eval
mode), with the regions as an extra argument where they come from outside.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, roi_align
from torchvision.ops._utils import convert_boxes_to_roi_format

from components.nn.blocks import conv_bn_relu

CROP_CHUNK = 256  # crops warped and classified per CNN call at evaluation: larger chunks ran slower per crop


def stack_images(images: Sequence[Tensor]) -> Tensor:
    return torch.stack(list(images))


def dilate(boxes: Tensor, context: float) -> Tensor:
    """``boxes`` (R, 4) xyxy grown by ``context`` of their width/height on each side."""
    size = (boxes[:, 2:] - boxes[:, :2]) * context
    return torch.cat([boxes[:, :2] - size, boxes[:, 2:] + size], dim=1)


def region_rois(boxes: Sequence[Tensor], context: float) -> Tensor:
    """Each image's boxes dilated by ``context``, as ``roi_align``'s (K, 5) rows: image index, box."""
    return convert_boxes_to_roi_format([dilate(b, context) for b in boxes])


def warp_rois(images: Tensor, rois: Tensor, size: int) -> Tensor:
    """R-CNN's warp: each roi resized to ``size`` x ``size`` whatever its aspect ratio, bilinearly
    (``roi_align``, 2x2 samples per output pixel); pixels outside the image read as 0.
    ``images`` (N, C, H, W) in [0, 1] -> (K, C, size, size)."""
    return roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)


def warp_regions(images: Tensor, boxes: Sequence[Tensor], size: int, context: float) -> Tensor:
    """:func:`warp_rois` of each image's ``boxes`` dilated by ``context``: (sum R_i, C, size, size)."""
    return warp_rois(images, region_rois(boxes, context), size)


class CropCNN(nn.Module):
    """The region classifier: stride-2 conv-BN-ReLU stages (``blocks`` convolutions each) on a
    ``crop_size`` crop, the last map flattened (R-CNN's "pool5"), one hidden fully connected layer
    ("fc7", ``representation_size``), then ``num_classes`` logits (background is class 0)."""

    def __init__(self, in_channels: int, crop_size: int, channels: Sequence[int], representation_size: int,
                 num_classes: int, blocks: int = 1):
        super().__init__()
        if crop_size % 2 ** len(channels):
            raise ValueError(f"crop_size {crop_size} must be divisible by 2**len(channels) = {2 ** len(channels)}")
        layers, previous = [], in_channels
        for width in channels:
            layers.append(conv_bn_relu(previous, width, stride=2))
            layers += [conv_bn_relu(width, width) for _ in range(blocks - 1)]
            previous = width
        self.convs = nn.Sequential(*layers)
        self.pool5_dim = previous * (crop_size // 2 ** len(channels)) ** 2
        self.fc7 = nn.Sequential(nn.Flatten(), nn.Linear(self.pool5_dim, representation_size), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(representation_size, num_classes)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``crops`` (R, C, S, S) in [0, 1] -> pool5 (R, D), fc7 (R, representation_size), logits (R, K)."""
        pool5 = self.convs((crops - 0.5) / 0.5).flatten(1)
        fc7 = self.fc7(pool5)
        return pool5, fc7, self.classifier(fc7)


def label_regions(regions: Tensor, gt_boxes: Tensor, gt_labels: Tensor, fg_iou: float,
                  bg_iou: float) -> tuple[Tensor, Tensor]:
    """Training labels of ``regions`` (R, 4): the best-overlapping ground-truth box's class where
    IoU >= ``fg_iou``, background (0) below ``bg_iou``, -1 (not sampled) between; and the index of
    that box (0 where there is none)."""
    if len(gt_boxes) == 0:
        return torch.zeros(len(regions), dtype=torch.int64, device=regions.device), torch.zeros_like(
            regions[:, 0], dtype=torch.int64)
    best_iou, best = box_iou(regions, gt_boxes).max(dim=1)
    labels = gt_labels[best].clone()
    labels[best_iou < fg_iou] = -1
    labels[best_iou < bg_iou] = 0
    return labels, best


class RegionClassifierDetector(nn.Module):
    """Regions -> warped crops -> :class:`CropCNN`. Training: per image ``roi_samples`` regions
    (the ground-truth boxes among them), ``positive_fraction`` of them foreground, softmax
    cross-entropy over classes + background. Evaluation: every region scored by :meth:`score`,
    per-class NMS, the ``detections_per_img`` best."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, *, crop_size: int, context: float,
                 channels: Sequence[int], blocks: int, representation_size: int, roi_samples: int,
                 positive_fraction: float, fg_iou: float, bg_iou: float, score_thresh: float, nms_thresh: float,
                 detections_per_img: int):
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        self.crop_size, self.context = crop_size, context
        self.fg_iou, self.bg_iou = fg_iou, bg_iou
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img
        self.cnn = CropCNN(in_channels, crop_size, channels, representation_size, num_classes, blocks)
        self.sampler = BalancedPositiveNegativeSampler(roi_samples, positive_fraction)

    def features(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """:class:`CropCNN` outputs of every region of every image, warped and run ``CROP_CHUNK``
        crops at a time (warping all of a 100-image batch's crops at once made evaluation slower
        per image than one image at a time)."""
        rois = region_rois(regions, self.context)
        parts = [self.cnn(warp_rois(images, rois[i: i + CROP_CHUNK], self.crop_size))
                 for i in range(0, len(rois), CROP_CHUNK)]
        if not parts:
            return self.cnn(images.new_zeros(0, images.shape[1], self.crop_size, self.crop_size))
        return tuple(torch.cat(outputs) for outputs in zip(*parts, strict=True))

    def sample(self, regions: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]) -> tuple[list[Tensor], Tensor]:
        """The regions each image trains on (ground truth added) and their labels."""
        chosen, labels = [], []
        for boxes, target in zip(regions, targets, strict=True):
            boxes = torch.cat([boxes, target["boxes"]])
            region_labels, _ = label_regions(boxes, target["boxes"], target["labels"], self.fg_iou, self.bg_iou)
            (positive,), (negative,) = self.sampler([region_labels.clamp(max=1)])
            keep = positive.bool() | negative.bool()
            chosen.append(boxes[keep])
            labels.append(region_labels[keep])
        return chosen, torch.cat(labels)

    def train_losses(self, images: Tensor, regions: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]):
        chosen, labels = self.sample(regions, targets)
        _, _, logits = self.features(images, chosen)
        return {"loss_classifier": F.cross_entropy(logits, labels)}

    def score(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Every region's foreground-class scores (R, K - 1) and boxes (R, K - 1, 4): the softmax and
        the regions themselves (no box regression)."""
        _, _, logits = self.features(images, regions)
        boxes = torch.cat(list(regions)) if len(regions) else logits.new_zeros(0, 4)
        return logits.softmax(dim=1)[:, 1:], boxes[:, None].expand(-1, self.num_classes - 1, 4)

    def detect(self, images: Tensor, regions: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        scores, boxes = self.score(images, regions)
        counts = [len(r) for r in regions]
        return [self.postprocess(s, b, images.shape[-2:])
                for s, b in zip(scores.split(counts), boxes.split(counts), strict=True)]

    def postprocess(self, scores: Tensor, boxes: Tensor, shape) -> dict[str, Tensor]:
        """One image's (R, K - 1) scores and (R, K - 1, 4) boxes -> torchvision's detections:
        scores above ``score_thresh``, per-class NMS at ``nms_thresh``, the best ``detections_per_img``."""
        labels = torch.arange(1, self.num_classes, device=scores.device).expand_as(scores)
        boxes = clip_boxes_to_image(boxes.reshape(-1, 4), tuple(shape))
        scores, labels = scores.reshape(-1), labels.reshape(-1)
        keep = (scores > self.score_thresh) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def window_grid(image_size: int, sizes: Sequence[int], aspect_ratios: Sequence[float], stride: int) -> Tensor:
    """Every window of each size (the side of a square of the same area) and aspect ratio
    (height / width), at ``stride``-pixel steps inside the image: (W, 4) xyxy."""
    windows = []
    for size in sizes:
        for ratio in aspect_ratios:
            w, h = size / ratio ** 0.5, size * ratio ** 0.5
            if w > image_size or h > image_size:
                continue
            xs = torch.arange(0, image_size - w + 1e-6, stride, dtype=torch.float32)
            ys = torch.arange(0, image_size - h + 1e-6, stride, dtype=torch.float32)
            y, x = torch.meshgrid(ys, xs, indexing="ij")
            windows.append(torch.stack([x, y, x + w, y + h], dim=-1).reshape(-1, 4))
    if not windows:
        raise ValueError(f"no window of sizes {list(sizes)} and aspect ratios {list(aspect_ratios)} fits "
                         f"a {image_size}-px image")
    return torch.cat(windows)


class SlidingWindowDetector(RegionClassifierDetector):
    """The CNN classifier slid over the image: windows of ``window_sizes`` x ``aspect_ratios`` every
    ``stride`` pixels, each warped and classified; a detection is a window (no box regression), so
    its localisation is the grid's."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, *, window_sizes: Sequence[int],
                 aspect_ratios: Sequence[float], stride: int, **kwargs):
        super().__init__(num_classes, in_channels, image_size, **kwargs)
        self.register_buffer("windows", window_grid(image_size, window_sizes, aspect_ratios, stride),
                             persistent=False)

    def forward(self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None = None):
        batch = stack_images(images)
        regions = [self.windows] * len(batch)
        if self.training:
            return self.train_losses(batch, regions, targets)
        return self.detect(batch, regions)


def _rcnn(*args, **kwargs):
    from components.families.detection.rcnn import RCNN

    return RCNN(*args, **kwargs)


def _fast_rcnn(*args, **kwargs):
    from components.families.detection.fast_rcnn import FastRCNN

    return FastRCNN(*args, **kwargs)


# The region-based detectors by model name, as build_detector calls them (the params section less
# the training keys as keyword arguments).
REGION_BUILDERS = {"sliding_window": SlidingWindowDetector, "rcnn": _rcnn, "fast_rcnn": _fast_rcnn}
