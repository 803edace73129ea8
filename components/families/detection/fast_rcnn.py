"""Fast R-CNN (Girshick 2015): one convolutional pass per image, RoI max pooling of each proposal
from the shared feature map, and a head that classifies (softmax over classes + background) and
regresses class-specific box offsets, trained jointly (cross-entropy + smooth L1).

The proposals are selective search's, as R-CNN's (rcnn.py); the sampling, losses, box coding and
post-processing are torchvision's ``RoIHeads`` (Faster R-CNN's second stage, which is Fast R-CNN's
head): 25 % foreground RoIs (IoU >= 0.5) per image, the ground-truth boxes among the candidates,
per-class NMS. Two departures from the paper, both torchvision's: background RoIs are all below
IoU 0.5 (the paper: [0.1, 0.5)), and a two-layer MLP head of ``representation_size`` rather than
VGG's fc6/fc7. The pooling is the paper's RoI max pooling (``torchvision.ops.roi_pool``: the box
quantised to the feature grid, max over each bin), not Mask R-CNN's RoI Align.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import roi_pool

from components.families.detection.models import ConvBackbone


class RoIPool(nn.Module):
    """``RoIHeads``' pooling interface over one feature map: ``(features, proposals, image_shapes)``
    -> (sum R_i, C, output_size, output_size), max-pooled bins of each proposal."""

    def __init__(self, output_size: int, spatial_scale: float):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes) -> Tensor:
        return roi_pool(features["0"], proposals, self.output_size, self.spatial_scale)


class FastRCNN(nn.Module):
    """``forward(images, proposals[, targets])``: conv stages ``channels`` (the last map, at
    stride 2**len(channels), is the shared feature map), RoI pooling to ``roi_size`` squares,
    ``RoIHeads``. Images (C, H, W) in [0, 1], normalised to about [-1, 1] here."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, *, channels: Sequence[int],
                 roi_size: int, representation_size: int, roi_samples: int, positive_fraction: float,
                 score_thresh: float, nms_thresh: float, detections_per_img: int):
        super().__init__()
        self.backbone = ConvBackbone(in_channels, channels, [len(channels) - 1])
        width = channels[-1]
        self.roi_heads = RoIHeads(
            box_roi_pool=RoIPool(roi_size, 1.0 / 2 ** len(channels)),
            box_head=TwoMLPHead(width * roi_size**2, representation_size),
            box_predictor=FastRCNNPredictor(representation_size, num_classes),
            fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=roi_samples,
            positive_fraction=positive_fraction, bbox_reg_weights=None, score_thresh=score_thresh,
            nms_thresh=nms_thresh, detections_per_img=detections_per_img,
        )

    def forward(self, images: Sequence[Tensor], proposals: Sequence[Tensor],
                targets: Sequence[dict[str, Tensor]] | None = None):
        batch = (torch.stack(list(images)) - 0.5) / 0.5
        features = self.backbone(batch)
        shapes = [tuple(image.shape[-2:]) for image in images]
        targets = None if targets is None else [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        detections, losses = self.roi_heads(features, [p.float() for p in proposals], shapes, targets)
        return losses if self.training else detections
