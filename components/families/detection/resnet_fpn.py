"""torchvision's detectors in their paper configuration: ResNet-50 + FPN (``backbone: resnet50_fpn``).

Each model is torchvision's own builder called with ``weights=None, weights_backbone=None``
(nothing is downloaded) and its default anchors, FPN and heads. The rules:

- Fields: the conv backbone's architecture and Faster R-CNN's scene-sized sampling budgets
  (``channels``, ``levels``, ``fpn_channels``, ``anchor_sizes``, ``aspect_ratios``,
  ``representation_size``, ``mask_channels``, ``rpn_proposals``, ``roi_samples``) do not apply:
  the paper's are torchvision's defaults (2000 / 1000 proposals, 256 RPN anchors and 512 RoIs per
  image). ``detections_per_img`` and ``center_sampling_radius`` mean the same and do apply
  (RetinaNet and FCOS keep 100 detections per image, as the conv ones).
- Size: images keep their size (``min_size = max_size = image_size``, no 800-px rescale).
- Channels: grey images are repeated to RGB before torchvision's ImageNet normalisation
  (:class:`GreyAsRGB`), so grey and RGB data share one network, ImageNet weights included.
- Training: with no weights given to it, torchvision trains all five ResNet stages and uses plain
  ``BatchNorm2d`` (``FrozenBatchNorm2d`` only with its pretrained weights). ``backbone_weights`` is
  loaded into that body afterwards, so BatchNorm stays trainable: torchvision freezes it for 2
  images per GPU, batches here are 8+, and a checkpoint then has the same keys with or without
  the weights file.
- RetinaNet: ``retinanet_resnet50_fpn_v2`` (GroupNorm head, GIoU box loss): the head recipe of the
  conv RetinaNet, so the backbone is the only difference between the two.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.detection import (
    fasterrcnn_resnet50_fpn,
    fcos_resnet50_fpn,
    maskrcnn_resnet50_fpn,
    retinanet_resnet50_fpn_v2,
)
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from components.errors import UserError
from components.nn.resnet_weights import load_resnet50_weights


class GreyAsRGB(GeneralizedRCNNTransform):
    """torchvision's detection transform, with a grey (1, H, W) image repeated to RGB before the
    normalisation: the ResNet stem takes three channels, and a grey photo is R = G = B."""

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return super().normalize(image.expand(3, -1, -1) if image.shape[0] == 1 else image)


def _paper_model(
    name: str, constructor: Callable[..., nn.Module], num_classes: int, in_channels: int, image_size: int,
    backbone_weights: str | None, **kwargs,
) -> nn.Module:
    """torchvision's ``constructor`` at random init, images kept at ``image_size`` (grey or RGB),
    ``backbone_weights`` (if any) in the ResNet body."""
    if in_channels not in (1, 3):
        raise UserError(f"detection.models.{name}: resnet50_fpn takes grey or RGB images, not {in_channels} channels")
    model = constructor(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    model.transform = GreyAsRGB(image_size, image_size, model.transform.image_mean, model.transform.image_std)
    if backbone_weights is not None:
        key = f"detection.models.{name}.backbone_weights"
        load_resnet50_weights(model.backbone.body, backbone_weights, key)
    return model


def build_faster_rcnn(
    num_classes: int, in_channels: int, image_size: int, *, detections_per_img: int,
    backbone_weights: str | None = None, masks: bool = False, **conv_only,
) -> nn.Module:
    """``fasterrcnn_resnet50_fpn`` (``masks``: ``maskrcnn_resnet50_fpn``); ``conv_only``: the conv
    backbone's fields and budgets, unused."""
    name, constructor = ("mask_rcnn", maskrcnn_resnet50_fpn) if masks else ("faster_rcnn", fasterrcnn_resnet50_fpn)
    return _paper_model(
        name, constructor, num_classes, in_channels, image_size, backbone_weights,
        box_detections_per_img=detections_per_img,
    )


def build_retinanet(
    num_classes: int, in_channels: int, image_size: int, *, backbone_weights: str | None = None, **conv_only,
) -> nn.Module:
    """``retinanet_resnet50_fpn_v2``; ``conv_only``: the conv backbone's fields, unused."""
    return _paper_model(
        "retinanet", retinanet_resnet50_fpn_v2, num_classes, in_channels, image_size, backbone_weights,
        detections_per_img=100,
    )


def build_fcos(
    num_classes: int, in_channels: int, image_size: int, *, center_sampling_radius: float,
    backbone_weights: str | None = None, **conv_only,
) -> nn.Module:
    """``fcos_resnet50_fpn``; ``conv_only``: the conv backbone's fields, unused."""
    return _paper_model(
        "fcos", fcos_resnet50_fpn, num_classes, in_channels, image_size, backbone_weights,
        center_sampling_radius=center_sampling_radius, detections_per_img=100,
    )


BUILDERS = {
    "faster_rcnn": build_faster_rcnn,
    "mask_rcnn": lambda *a, **k: build_faster_rcnn(*a, masks=True, **k),
    "retinanet": build_retinanet,
    "fcos": build_fcos,
}
