"""The scene classifier the visualization family trains and explains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from components.nn.blocks import conv_bn_relu


class SceneCNN(nn.Module):
    """Images (N, C, S, S) in [0, 1] -> one logit per digit class (N, classes), multi-label.

    ``stages[i]``: ``convs_per_stage`` 3x3 conv-BN-ReLU at ``channels[i]`` (then a 2x2 max-pool, except
    after the last stage); the units dissected are each stage's output channels (``conv1``..``convN``,
    before its pool). Global average pooling and a linear layer: the class-activation map of Zhou et
    al. (2016) is the last stage's map weighted by the linear layer, which Grad-CAM recovers.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: list[int], convs_per_stage: int) -> None:
        super().__init__()
        stages, width = [], in_channels
        for out in channels:
            stages.append(nn.Sequential(*(conv_bn_relu(width if i == 0 else out, out) for i in range(convs_per_stage))))
            width = out
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Linear(width, num_classes)

    @property
    def layer_names(self) -> list[str]:
        return [f"conv{i + 1}" for i in range(len(self.stages))]

    @property
    def last_conv(self) -> nn.Module:
        """The module whose output Grad-CAM weights (the last stage)."""
        return self.stages[-1]

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """Every stage's output (N, K_i, h_i, w_i) by layer name (before its pool)."""
        out, x = {}, images
        for i, (name, stage) in enumerate(zip(self.layer_names, self.stages, strict=True)):
            x = stage(x if i == 0 else self.pool(x))
            out[name] = x
        return out

    def forward(self, images: Tensor) -> Tensor:
        x = images
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
        return self.classifier(x.mean(dim=(2, 3)))


def build_scene_cnn(arch: Mapping[str, Any], in_channels: int, num_classes: int) -> SceneCNN:
    return SceneCNN(in_channels, num_classes, list(arch["channels"]), arch["convs_per_stage"])
