"""Batched, seeded augmentations of small grey images (every draw from one CPU generator, so a run is
reproducible; torchvision's transforms draw one set of parameters per batch from the global stream)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from components.families.selfsup.config import AugmentConfig


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_crop_resize(images: Tensor, min_scale: float, generator: torch.Generator) -> Tensor:
    """Per image, a square crop of side ``scale`` x the image's (scale ~ U(min_scale, 1)) at a random
    place inside it, resized back bilinearly (affine_grid / grid_sample)."""
    n = len(images)
    side = _uniform(n, min_scale, 1.0, generator)
    room = 1.0 - side  # in normalised coordinates [-1, 1] the crop's centre may move this far
    tx, ty = (_uniform(n, -1.0, 1.0, generator) * room for _ in range(2))
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([side, zero, tx], 1), torch.stack([zero, side, ty], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erase(images: Tensor, p: float, size: int, generator: torch.Generator) -> Tensor:
    """With probability ``p`` per image, a square of 1..``size`` pixels set to 0 at a random place."""
    n, _, h, w = images.shape
    chosen = torch.rand(n, generator=generator) < p
    sides = torch.randint(1, size + 1, (n,), generator=generator)
    ys = (torch.rand(n, generator=generator) * (h - sides + 1)).long()
    xs = (torch.rand(n, generator=generator) * (w - sides + 1)).long()
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    inside = ((rows >= ys[:, None, None]) & (rows < (ys + sides)[:, None, None])
              & (cols >= xs[:, None, None]) & (cols < (xs + sides)[:, None, None]) & chosen[:, None, None])
    return images.masked_fill(inside[:, None], 0.0)


def augment(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """One random view of each image (N, C, H, W) in [0, 1] (see :class:`AugmentConfig`)."""
    out = random_crop_resize(images, config.min_scale, generator) if config.min_scale < 1 else images
    if config.brightness:
        out = out * _uniform(len(out), 1 - config.brightness, 1 + config.brightness, generator)[:, None, None, None]
    if config.noise:
        out = out + config.noise * torch.randn(out.shape, generator=generator)
    if config.erase_p:
        out = random_erase(out, config.erase_p, config.erase_size, generator)
    return out.clamp(0.0, 1.0)
