"""The classifiers attacked: the generative family's digit CNN and an MLP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from components.families.generative.evaluator import Evaluator


class MLP(nn.Module):
    """Images (N, C, S, S) -> logits (N, classes): flatten, then ReLU layers of ``hidden`` widths with dropout."""

    def __init__(self, in_features: int, num_classes: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, images):
        return self.layers(images)


def build_classifier(arch: Mapping[str, Any], in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """A CNN (``arch`` has ``channels`` and ``feature_dim``) or an MLP (``hidden``); both take ``dropout``."""
    if "hidden" in arch:
        return MLP(in_channels * image_size * image_size, num_classes, list(arch["hidden"]), arch["dropout"])
    return Evaluator(in_channels, num_classes, image_size, list(arch["channels"]), arch["feature_dim"],
                     arch["dropout"])
