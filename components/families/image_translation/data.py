"""The two domains: label maps rendered in colour (the course's Cityscapes "labels") and the scenes
(the "photos"), both (N, 3, S, S) in [0, 1] as pix2pix and CycleGAN take them.

The scenes are grey; they are repeated to three channels so that both domains have the same shape
(CycleGAN's identity loss feeds each generator an image of its target domain). The FCN-score and
FID read generated scenes as their channel mean (:func:`to_grey`), which is exact for real scenes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from components.data.schema import decode_images, decode_semantic_masks, read_split

# The label rendering: background black, digits 0-9 matplotlib's tab10 (distinct hues).
PALETTE = torch.tensor([
    (0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=torch.float32) / 255


def render_labels(masks: Tensor) -> Tensor:
    """Semantic masks (N, H, W) of class indices in [0, 11) -> colour label images (N, 3, H, W)."""
    if masks.numel() and int(masks.max()) >= len(PALETTE):
        raise ValueError(f"label {int(masks.max())} has no colour: the palette covers {len(PALETTE)} classes")
    return PALETTE.to(masks.device)[masks.long()].permute(0, 3, 1, 2)


def to_rgb(scenes: Tensor) -> Tensor:
    """Grey scenes (N, 1, H, W) -> (N, 3, H, W)."""
    return scenes.expand(-1, 3, -1, -1)


def to_grey(images: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W): the channel mean (what the grey scorer and feature networks read)."""
    return images.mean(dim=1, keepdim=True)


def load_pairs(directory: Path, split: str) -> TensorDataset:
    """A split as (semantic masks (N, H, W) int64, grey scenes (N, 1, H, W) in [0, 1]), pair by pair."""
    table = read_split(directory, split, ["image", "height", "width", "channels", "semantic_mask"])
    scenes = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    masks = torch.from_numpy(decode_semantic_masks(table).astype(np.int64))
    return TensorDataset(masks, scenes)


def unpaired(pairs: TensorDataset) -> TensorDataset:
    """CycleGAN's training set: the label maps of the even-numbered scenes beside the scenes of the
    odd-numbered ones, so item k holds two unrelated scenes' halves and no pair is ever seen."""
    masks, scenes = pairs.tensors
    count = len(masks) // 2
    return TensorDataset(masks[0 : 2 * count : 2], scenes[1 : 2 * count : 2])
