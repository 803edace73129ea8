"""Prepared classification splits as torch tensors (the generative and adversarial families' input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from components.data.schema import decode_images, read_split


def load_classification_split(directory: Path, split: str) -> TensorDataset:
    """A classification split as tensors: images (N, C, S, S) float in [0, 1], labels (N,) int64."""
    table = read_split(directory, split)
    images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    return TensorDataset(images, torch.tensor(table.column("label").to_numpy(), dtype=torch.int64))
