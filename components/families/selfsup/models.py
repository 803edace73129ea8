"""The encoder every method pretrains, its heads, and what the probe reads from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from components.families.generative.evaluator import Evaluator


def build_encoder(encoder: Mapping[str, Any], in_channels: int, image_size: int) -> Evaluator:
    """The generative family's digit CNN without its classifier (an identity: DDP refuses parameters
    that no loss uses): ``embed`` gives the final features, ``EvaluatorFeatures`` wraps it as ``forward``.
    With ``feature_dim`` None the feature layer goes too: the final features are the last conv stage's
    pooled maps, flattened (``num_features`` = last width x side^2; the conv weights are those the
    same seed gives with a feature layer, which is built and dropped)."""
    feature_dim = encoder["feature_dim"]
    net = Evaluator(in_channels, 1, image_size, list(encoder["channels"]), feature_dim or 1, 0.0)
    net.classifier = nn.Identity()
    if feature_dim is None:
        linear = net.trunk[-2]
        net.trunk = net.trunk[:-2]  # the conv stages and the Flatten
        net.num_features = linear.in_features
    return net


# The layers the probe reads, by the suffix of their metric names (test/probe_accuracy<suffix>): the
# final features, the last conv stage's pooled maps, the first conv stage's (the mid-layer). Without a
# feature layer (``feature_dim`` None) the first two are the same features.
PROBE_LAYERS = {"": "final features", "_conv": "last conv stage", "_mid": "first conv stage"}


def stage_features(encoder: Evaluator, images: Tensor, stage: int) -> Tensor:
    """Conv stage ``stage``'s (1-based) pooled maps, flattened (each stage is a conv block and a pool)."""
    return encoder.trunk[:2 * stage](images).flatten(1)


def probe_features(encoder: Evaluator, images: Tensor) -> dict[str, Tensor]:
    """The features of every :data:`PROBE_LAYERS` entry."""
    stages = sum(isinstance(module, nn.MaxPool2d) for module in encoder.trunk)
    return {"": encoder.embed(images), "_conv": stage_features(encoder, images, stages),
            "_mid": stage_features(encoder, images, 1)}


def build_head(method: str, config: Mapping[str, Any], feature_dim: int, num_classes: int,
               image_size: int = 8) -> nn.Module:
    """The pretext head on the final features: rotation's 4-way classifier, jigsaw's MLP over the
    concatenated tile features, context prediction's MLP over two patches' features, the inpainting
    decoder, SimCLR's and MoCo's
    projection MLP, the supervised and DeepCluster's classifiers."""
    if method == "rotation":
        return nn.Linear(feature_dim, 4)
    if method in ("simclr", "moco"):
        return nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim,
                                                                                        config["projection_dim"]))
    if method == "jigsaw":
        tiles = config["grid"] ** 2 if config["encode"] == "tiles" else 1
        return nn.Sequential(nn.Linear(tiles * feature_dim, config["hidden"]), nn.ReLU(),
                             nn.Linear(config["hidden"], config["permutations"]))
    if method == "context":  # the two patches' features side by side -> which of the 8 neighbours
        return nn.Sequential(nn.Linear(2 * feature_dim, config["hidden"]), nn.ReLU(), nn.Linear(config["hidden"], 8))
    if method == "inpainting":
        return Painter(feature_dim, image_size)
    if method == "supervised":
        return nn.Linear(feature_dim, num_classes)
    if method == "deepcluster":
        return nn.Linear(feature_dim, config["clusters"])
    raise ValueError(f"unknown self-supervised method {method!r}")


class Painter(nn.Module):
    """The inpainting decoder: features (N, D) -> a linear layer to 32 maps of a quarter of the image
    side, two 2x transposed convolutions -> the image (N, 1, S, S) in [0, 1]."""

    def __init__(self, feature_dim: int, image_size: int) -> None:
        super().__init__()
        self.side = image_size // 4
        self.expand = nn.Sequential(nn.Linear(feature_dim, 32 * self.side * self.side), nn.ReLU())
        self.paint = nn.Sequential(nn.ConvTranspose2d(32, 16, 2, stride=2), nn.ReLU(),
                                   nn.ConvTranspose2d(16, 1, 2, stride=2), nn.Sigmoid())

    def forward(self, features: Tensor) -> Tensor:
        return self.paint(self.expand(features).reshape(len(features), 32, self.side, self.side))


@torch.no_grad()
def reestimate_batch_norm(encoder: nn.Module, images: Tensor, batch_size: int = 4096) -> None:
    """Every BatchNorm's running mean and variance recomputed on ``images`` (no labels: the statistics
    of the data the probe sees, not of the pretext's augmented or rotated views), then eval mode. Over
    several batches PyTorch's cumulative average (momentum None) weighs each batch's statistics equally;
    the default batch holds all 1,257 training digits, so they are the dataset's exactly."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    encoder.train()
    for i in range(0, len(images), batch_size):
        encoder.trunk(images[i:i + batch_size])
    for module, momentum in zip(norms, saved, strict=True):
        module.momentum = momentum
    encoder.eval()


class KeyQueue(nn.Module):
    """MoCo's queue of negatives: the last ``size`` keys (L2-normalised), written over the oldest (a ring);
    buffers, so a checkpoint holds it."""

    def __init__(self, size: int, dim: int, generator: torch.Generator) -> None:
        super().__init__()
        self.register_buffer("keys", nn.functional.normalize(torch.randn(size, dim, generator=generator), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        """Enqueue ``keys`` (N, D) over the oldest ones (the last ``size`` of them when N > size)."""
        keys = nn.functional.normalize(keys.detach(), dim=1)[-len(self.keys):]
        index = (int(self.pointer) + torch.arange(len(keys), device=keys.device)) % len(self.keys)
        self.keys[index] = keys
        self.pointer.fill_((int(self.pointer) + len(keys)) % len(self.keys))
