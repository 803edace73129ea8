"""The embedded evaluator: a small CNN classifier whose features and posteriors score samples.

FID needs a feature network and nothing may be downloaded, so the ``evaluator`` stage trains this
classifier on the family's dataset (``generative.dataset``: digits, MNIST or CIFAR-10, grey or
RGB); ``val/fid_evaluator`` is the Fréchet distance between Gaussians fitted to its
penultimate-layer features (:meth:`Evaluator.embed`) and ``val/is_evaluator`` the Inception Score
of its class posteriors. Scores depend on this network: compare them only between
runs scored by the same evaluator (its SHA-256 is logged with each run).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.errors import UserError
from components.nn.blocks import double_conv
from components.train.schedules import warmup_cosine

EVALUATOR_FILE = "evaluator.pt"


class Evaluator(nn.Module):
    """Images (N, in_channels, S, S) in [0, 1] -> class logits (N, num_classes).

    One stage per entry of ``channels``: two 3x3 conv-BN-ReLU and a 2x2 max-pool (S must be divisible
    by ``2**len(channels)``); then a linear layer to ``feature_dim`` with ReLU (the features) and,
    after dropout, a linear classifier.
    """

    def __init__(
        self, in_channels: int, num_classes: int, image_size: int, channels: list[int], feature_dim: int, dropout: float
    ) -> None:
        super().__init__()
        stages, width = [], in_channels
        for out in channels:
            stages += [double_conv(width, out), nn.MaxPool2d(2)]
            width = out
        side = image_size // 2 ** len(channels)
        if side < 1 or side * 2 ** len(channels) != image_size:
            raise UserError(f"evaluator: image size {image_size} is not divisible by 2**{len(channels)} (channels)")
        self.trunk = nn.Sequential(*stages, nn.Flatten(), nn.Linear(width * side * side, feature_dim), nn.ReLU())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.num_features = feature_dim

    def embed(self, images: Tensor) -> Tensor:
        """Penultimate-layer features (N, feature_dim)."""
        return self.trunk(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.embed(images))


class EvaluatorFeatures(nn.Module):
    """The FID feature extractor: images (N, C, S, S) in [0, 1] -> :meth:`Evaluator.embed` (N, D)."""

    def __init__(self, evaluator: Evaluator) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.num_features = evaluator.num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.evaluator.embed(images)


@dataclass(frozen=True)
class EvaluatorTraining:
    """The training knobs (``generative.evaluator`` in params.yaml minus the architecture)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_fraction: float
    max_shift: int  # random translation augmentation, pixels


@torch.no_grad()
def accuracy(net: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``net`` (eval mode, on its own device) on images (N, C, S, S) with labels (N,)."""
    net.eval()
    device = next(net.parameters()).device
    correct = sum(
        int((net(images[i : i + batch_size].to(device)).argmax(1).cpu() == labels[i : i + batch_size]).sum())
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image (N, C, S, S) by up to ``max_shift`` pixels in x and y, zero-filled."""
    if max_shift == 0:
        return images
    n, _, size, _ = images.shape
    padded = F.pad(images, [max_shift] * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    rows = (offsets[:, 0, None] + torch.arange(size))[:, :, None]  # (N, S, 1)
    cols = (offsets[:, 1, None] + torch.arange(size))[:, None, :]  # (N, 1, S)
    return padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def train_evaluator(
    net: Evaluator,
    splits: Mapping[str, tuple[Tensor, Tensor]],
    config: EvaluatorTraining,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None],
    device: torch.device | None = None,
) -> dict[str, float]:
    """Train ``net`` on ``splits["train"]``, keep the weights of the best ``splits["val"]`` accuracy.

    Each split is (images (N, C, S, S) in [0, 1], labels (N,) int64), held on the CPU; batches move to
    ``device`` (default: the CPU), where ``net`` trains. AdamW with linear warm-up and cosine decay;
    ``on_epoch(epoch, metrics)`` is called after every epoch. Returns the final
    ``{"val/accuracy", "test/accuracy", "best_epoch"}`` of the kept weights; ``net`` ends on the CPU.
    """
    device = torch.device("cpu") if device is None else device
    net.to(device)
    images, labels = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(images) // config.batch_size)
    total = config.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(int(config.warmup_fraction * total), total))
    best_accuracy, best_epoch, best_state = -1.0, 0, copy.deepcopy(net.state_dict())
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        net.train()
        order = torch.randperm(len(images), generator=generator)
        loss_sum = 0.0
        for start in range(0, len(images), config.batch_size):
            batch = order[start : start + config.batch_size]
            inputs = random_shift(images[batch], config.max_shift, generator).to(device)
            loss = F.cross_entropy(net(inputs), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(batch)
        val_accuracy = accuracy(net, *splits["val"])
        if val_accuracy > best_accuracy:
            best_accuracy, best_epoch, best_state = val_accuracy, epoch, copy.deepcopy(net.state_dict())
        on_epoch(epoch, {"train/loss": loss_sum / len(images), "val/accuracy": val_accuracy,
                         "time/epoch_s": time.perf_counter() - started})
    net.load_state_dict(best_state)
    test_accuracy = accuracy(net, *splits["test"])
    net.cpu()
    return {"val/accuracy": best_accuracy, "test/accuracy": test_accuracy, "best_epoch": best_epoch}


def export_evaluator(net: Evaluator, arch: Mapping[str, Any], class_names: list[str], metrics: Mapping[str, float]):
    """What :func:`load_evaluator` rebuilds the network from."""
    return {"arch": dict(arch), "class_names": list(class_names), "metrics": dict(metrics),
            "state_dict": net.state_dict()}


def evaluator_path(directory: Path) -> Path:
    path = Path(directory) / EVALUATOR_FILE
    if not path.is_file():
        raise UserError(f"evaluator not found: {path} (run the evaluator stage: dvc repro evaluator)")
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_evaluator(directory: Path) -> Evaluator:
    """The trained evaluator from ``<directory>/evaluator.pt``, frozen, in eval mode."""
    export = torch.load(evaluator_path(directory), map_location="cpu", weights_only=True)
    net = Evaluator(**export["arch"])
    net.load_state_dict(export["state_dict"])
    return net.eval().requires_grad_(False)
