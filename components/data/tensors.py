"""Prepared splits as torch tensors: classification splits (the generative and adversarial families'
input) and a table's images at another size (captioning's and image translation's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from components.data.schema import decode_images, read_split


def load_classification_split(directory: Path, split: str) -> TensorDataset:
    """A classification split as tensors: images (N, C, S, S) float in [0, 1], labels (N,) int64."""
    table = read_split(directory, split)
    images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    return TensorDataset(images, torch.tensor(table.column("label").to_numpy(), dtype=torch.int64))


def images_at(table: pa.Table, size: int | None) -> torch.Tensor:
    """A table's images as ``uint8`` (N, C, H, W), resized to ``size`` x ``size`` when given (bilinear,
    antialiased): a stage training below the prepared size holds only the resized images."""
    images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).copy())  # C order, writable
    if size is None or images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)
