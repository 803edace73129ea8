"""Transfer to segmentation: the pretrained encoder's conv stages fine-tuned, with an FCN-8s-style decoder,
on a few labelled scenes; scored by mIoU (the course's "does the representation transfer" evaluation).

The encoder was pretrained on 8x8 digits while the scenes' digits are 14-28 px, so the images are
average-pooled by an integer ``downscale`` before the stages see them; the logits are upsampled back, and
losses and scores are taken at the masks' full resolution.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.families.generative.evaluator import Evaluator
from components.metrics.segmentation import SegmentationMetrics
from components.train.schedules import warmup_cosine


def conv_stages(encoder: Evaluator) -> list[nn.Sequential]:
    """The trunk's (conv block, max-pool) pairs, up to its Flatten: the fully convolutional part."""
    stages, modules = [], list(encoder.trunk)
    for i, module in enumerate(modules):
        if isinstance(module, nn.MaxPool2d):
            stages.append(nn.Sequential(modules[i - 1], module))
    if not stages:
        raise ValueError("the encoder's trunk has no conv stage (no MaxPool2d)")
    return stages


class SegmentationTransfer(nn.Module):
    """The pretrained encoder's conv stages (a deep copy: the caller's encoder is untouched) with an FCN-8s-style
    decoder: a 1x1 conv scoring each stage's pooled maps into num_classes, the deepest scores upsampled x2 (bilinear)
    and added to the next-shallower stage's scores, ..., and the result upsampled (bilinear) to the input size.

    Every copied weight is made trainable (a frozen, loaded encoder included): fine-tuning trains them all.
    """

    def __init__(self, encoder: Evaluator, num_classes: int, downscale: int) -> None:
        super().__init__()
        if downscale < 1:
            raise ValueError(f"downscale must be a positive integer, got {downscale}")
        # deepcopy draws no random numbers: the only draws are the score convs' default init, from the global seed
        self.stages = nn.ModuleList(copy.deepcopy(conv_stages(encoder))).requires_grad_(True)
        widths = [stage[0][-1][0].out_channels for stage in self.stages]  # double_conv -> last conv_bn_relu -> conv
        self.scores = nn.ModuleList(nn.Conv2d(width, num_classes, kernel_size=1) for width in widths)
        self.num_classes = num_classes
        self.downscale = downscale

    def forward(self, images: Tensor) -> Tensor:
        """images (N, C, H, W) at the masks' full resolution -> logits (N, num_classes, H, W): the images are
        average-pooled by `downscale`, run through the stages, and the logits upsampled back to (H, W)."""
        height, width = images.shape[-2:]
        factor = self.downscale * 2 ** len(self.stages)
        if height % factor or width % factor:
            raise ValueError(f"image size {height}x{width} is not divisible by downscale * 2**stages = {factor}")
        x = F.avg_pool2d(images, self.downscale) if self.downscale > 1 else images
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        logits = self.scores[-1](maps[-1])
        for score, features in zip(reversed(self.scores[:-1]), reversed(maps[:-1]), strict=True):
            logits = F.interpolate(logits, size=features.shape[-2:], mode="bilinear", align_corners=False)
            logits = logits + score(features)
        return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)


def label_subset(count: int, fraction: float, generator: torch.Generator) -> Tensor:
    """Sorted indices of round(fraction * count) (at least 1) training scenes drawn without replacement: the
    low-label regime, the same scenes for every method compared under one seed."""
    if count < 1 or not 0.0 < fraction <= 1.0:
        raise ValueError(f"label_subset needs count >= 1 and 0 < fraction <= 1, got {count} and {fraction}")
    size = min(count, max(1, round(fraction * count)))
    return torch.randperm(count, generator=generator)[:size].sort().values


def fine_tune(net: SegmentationTransfer, images: Tensor, masks: Tensor, steps: int, batch_size: int, lr: float,
              weight_decay: float, generator: torch.Generator) -> list[float]:
    """Every weight trained (encoder and decoder): AdamW at ``lr`` with a cosine decay over ``steps`` steps (no
    warm-up), per-pixel cross-entropy at the masks' resolution, each step a batch of ``batch_size`` indices drawn
    with replacement (``torch.randint`` from ``generator``: a few labelled scenes need no epochs), BatchNorm in
    train mode. images (N, C, H, W) and masks (N, H, W) stay where they are; batches move to the net's device.
    Returns the loss of every step; leaves ``net`` in eval mode."""
    device = next(net.parameters()).device
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(0, steps))
    losses = []
    net.train()
    for _ in range(steps):
        batch = torch.randint(len(images), (batch_size,), generator=generator)
        logits = net(images[batch].to(device))
        loss = F.cross_entropy(logits, masks[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    net.eval()
    return losses


@torch.no_grad()
def evaluate(net: SegmentationTransfer, images: Tensor, masks: Tensor, num_classes: int,
             batch_size: int = 250) -> dict[str, float]:
    """{"miou": ..., "pixel_accuracy": ...} of ``net`` in eval mode on the whole split (one confusion matrix over
    every pixel, so the batch size does not change the scores)."""
    net.eval()
    device = next(net.parameters()).device
    metrics = SegmentationMetrics(num_classes)
    for start in range(0, len(images), batch_size):
        logits = net(images[start:start + batch_size].to(device))
        metrics.update(logits.argmax(1).cpu(), masks[start:start + batch_size])
    scores = metrics.compute()
    return {"miou": float(scores["miou"]), "pixel_accuracy": float(scores["pixel_accuracy"])}
