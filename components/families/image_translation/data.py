"""The two domains: label maps rendered in colour (the course's Cityscapes "labels") and the images
(the "photos"), both (N, 3, S, S) in [0, 1] as pix2pix and CycleGAN take them.

- ``scenes`` (the embedded default): grey scenes of digits, repeated to three channels so that both
  domains have the same shape (CycleGAN's identity loss feeds each generator an image of its target
  domain); label maps in :data:`PALETTE`. A grey scorer and the FID's scene features read generated
  scenes as their channel mean (:func:`to_grey`), which is exact for real scenes.
- ``voc`` (the GPU profile): VOC 2012's photos and class masks, label maps in the devkit's own
  colours (:func:`pascal_palette`, what ``SegmentationClass/*.png`` shows, the boundary label 255 in
  its cream), resized to ``image_translation.image_size`` as they load (pix2pix's 256 px).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset

from components.data.schema import decode_semantic_masks, iter_split
from components.data.tensors import images_at

# The label rendering: background black, digits 0-9 matplotlib's tab10 (distinct hues).
PALETTE = torch.tensor([
    (0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=torch.float32) / 255
LOAD_ROWS = 256  # rows decoded (and resized) at a time


def pascal_palette(count: int = 256) -> Tensor:
    """The PASCAL VOC devkit's colour map (``VOClabelcolormap.m``): label i's bits 0, 1, 2 go to the
    top bits of red, green, blue, the next three to the next bits, and so on. (count, 3) in [0, 1]:
    1 aeroplane (128, 0, 0), 15 person (192, 128, 128), 255 boundary (224, 224, 192)."""
    colours = torch.zeros(count, 3)
    for label in range(count):
        code, rgb = label, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << (7 - bit)
            code >>= 3
        colours[label] = torch.tensor(rgb, dtype=torch.float32)
    return colours / 255


def palette(dataset: str) -> Tensor:
    """The colours a dataset's label maps are drawn in (index = label)."""
    return pascal_palette() if dataset == "voc" else PALETTE


def render_labels(masks: Tensor, colours: Tensor = PALETTE) -> Tensor:
    """Semantic masks (N, H, W) of labels -> colour label images (N, 3, H, W) in ``colours``."""
    if masks.numel() and int(masks.max()) >= len(colours):
        raise ValueError(f"label {int(masks.max())} has no colour: the palette covers {len(colours)} labels")
    return colours.to(masks.device)[masks.long()].permute(0, 3, 1, 2)


def to_rgb(images: Tensor) -> Tensor:
    """Grey images (N, 1, H, W) -> (N, 3, H, W); colour images as they are."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def to_grey(images: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W): the channel mean (what the grey scorer and feature networks read)."""
    return images.mean(dim=1, keepdim=True)


def load_pairs(directory: Path, split: str, size: int | None = None) -> TensorDataset:
    """A split as (semantic masks (N, S, S) int64, images (N, C, S, S) in [0, 1]), pair by pair; with
    ``size``, the images resized to it (:func:`~components.data.tensors.images_at`) and the masks too
    (nearest: labels stay labels), ``LOAD_ROWS`` rows at a time, so that only the resized split is held."""
    images, masks = [], []
    for table in iter_split(directory, split, ["image", "height", "width", "channels", "semantic_mask"], LOAD_ROWS):
        images.append(images_at(table, size))
        mask = torch.from_numpy(decode_semantic_masks(table).astype(np.int64))
        if size is not None and mask.shape[-2:] != (size, size):
            mask = F.interpolate(mask[:, None].float(), size=(size, size), mode="nearest-exact")[:, 0].long()
        masks.append(mask)
    return TensorDataset(torch.cat(masks), torch.cat(images).float() / 255.0)


def unpaired(pairs: TensorDataset) -> TensorDataset:
    """CycleGAN's training set: the label maps of the even-numbered scenes beside the scenes of the
    odd-numbered ones, so item k holds two unrelated scenes' halves and no pair is ever seen."""
    masks, scenes = pairs.tensors
    count = len(masks) // 2
    return TensorDataset(masks[0 : 2 * count : 2], scenes[1 : 2 * count : 2])
