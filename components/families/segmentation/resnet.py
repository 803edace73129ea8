"""torchvision's paper-size segmentation networks behind the family's interface.

``backbone: resnet50`` in a model's params swaps the course's small network for torchvision's
architecture of the same idea, built with ``weights=None`` (random initialisation; a local
``backbone_weights`` file fills the ResNet-50):

- ``fcn``: FCN-ResNet50 (Long et al.'s FCN head on a dilated ResNet-50, output stride 8);
- ``dilated``: DeepLabV3-ResNet50 (atrous spatial pyramid pooling on the same dilated ResNet-50).

Without pretrained weights torchvision builds the ResNet with ordinary (trainable) BatchNorm. No
auxiliary head: the loss is the main output's cross-entropy, as for the other models.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.nn.resnet_weights import IMAGENET_MEAN, IMAGENET_STD, load_resnet50_weights

# model -> torchvision builder, imported when a model is built: the embedded default's small
# networks do not pay torchvision's import (~0.5 s of every stage's start-up)
BUILDERS = {"fcn": "fcn_resnet50", "dilated": "deeplabv3_resnet50"}


class ResNet50Segmenter(nn.Module):
    """(N, C, H, W) images in [0, 1], C in {1, 3} -> (N, num_classes, H, W) logits.

    Grey images are repeated to three channels; all are normalised with ImageNet's statistics
    (torchvision's convention, which ``backbone_weights`` expects).
    """

    def __init__(self, name: str, in_channels: int, num_classes: int, weights: str | None = None) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"ResNet-50 segmenters take 1 or 3 input channels, got {in_channels}")
        from torchvision.models import segmentation

        builder = getattr(segmentation, BUILDERS[name])
        self.net = builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        if weights is not None:
            load_resnet50_weights(self.net.backbone, weights, f"segmentation.models.{name}.backbone_weights")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net((x - self.mean) / self.std)["out"]
