"""The scene classifier as the harness drives it: which digits a 64x64 scene holds, learnt from
image-level labels alone (binary cross-entropy per class), scored by mean average precision. Its
masks are never seen in training, so where its attributions point (the pointing game) and what its
units detect (network dissection) are measured against ground truth it did not learn from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from components.config import Params
from components.data.schema import DatasetMeta, decode_images, decode_semantic_masks, read_meta, read_split
from components.families.visualization.config import SceneCNNConfig
from components.families.visualization.figures import scene_predictions_figure
from components.families.visualization.models import build_scene_cnn
from components.model_logging import ServedModel
from components.runtime import resolve
from components.schema import TrainerConfig
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

TRAINING_KEYS = ("epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction")


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.visualization.dataset


def multi_hot(labels: Iterable[Iterable[int]], num_classes: int) -> Tensor:
    """Per scene, 1 for each digit class it holds: box labels (digit + 1; 0 is background) -> (N, classes)."""
    rows = [list(scene) for scene in labels]
    out = torch.zeros(len(rows), num_classes)
    for i, scene in enumerate(rows):
        for label in scene:
            out[i, int(label) - 1] = 1.0
    return out


def load_scenes(directory: Path, split: str, with_masks: bool = False) -> TensorDataset:
    """Images (N, C, H, W) in [0, 1] and multi-hot labels (N, classes); with ``with_masks`` also the
    semantic masks (N, H, W) int64 (0 background, digit + 1)."""
    table = read_split(directory, split)
    images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    num_classes = read_meta(directory).num_classes - 1
    targets = multi_hot(table.column("labels").to_pylist(), num_classes)
    if not with_masks:
        return TensorDataset(images, targets)
    return TensorDataset(images, targets, torch.from_numpy(decode_semantic_masks(table).astype(np.int64)))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """The mean over classes of average precision (scikit-learn's, the area under each class's
    precision-recall steps); a class absent from ``targets`` is left out."""
    present = targets.sum(0) > 0
    return float(average_precision_score(targets[:, present], scores[:, present], average="macro"))


class SceneClassifierTask(ModuleTask):
    """``visualization.models.scene_cnn``: a multi-label digit-presence classifier on the scenes."""

    def __init__(self, model: str, config: SceneCNNConfig, trainer: TrainerConfig, directory: Path,
                 meta: DatasetMeta) -> None:
        self.model_name = model
        self.config = config
        self.memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format
        self.directory = directory
        self.meta = meta
        self.class_names = meta.class_names[1:]  # the digits; index 0 of the scenes' classes is background
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self._datasets: dict[str, Dataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {split: load_scenes(self.directory, split) for split in ("train", "val")}
        return self._datasets

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        net = build_scene_cnn(self.arch, self.meta.channels, len(self.class_names))
        self.modules = {"net": wrap(net.to(device, memory_format=self.memory_format))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers, self.schedulers = {"net": optimizer}, {"net": scheduler}

    def _inputs(self, images: Tensor) -> Tensor:
        return images.to(self.device).contiguous(memory_format=self.memory_format)

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        images, targets = batch
        targets = targets.to(self.device)
        with self.precision.autocast():
            logits = self.modules["net"](self._inputs(images))
            loss = F.binary_cross_entropy_with_logits(logits.float(), targets)
        self.precision.backward_step(loss, self.optimizers["net"])
        self.schedulers["net"].step()
        exact = ((logits.detach() > 0).float() == targets).all(1).float().mean()
        return {"loss": loss.detach(), "exact_match": exact}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Loss, mean AP, exact-match accuracy (every class decided right at probability 0.5) and
        micro F1, over all ranks' images (the scores are gathered: AP is not a mean over batches)."""
        net = unwrap(self.modules["net"])
        net.eval()
        scores, targets = [], []
        for images, target in batches:
            scores.append(net(self._inputs(images)).float().cpu())
            targets.append(target)
        net.train()
        local = (torch.cat(scores), torch.cat(targets))
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, local)
            local = (torch.cat([g[0] for g in gathered]), torch.cat([g[1] for g in gathered]))
        logits, target = local
        predicted = (logits > 0).float()
        true_positives = float((predicted * target).sum())
        f1 = 2 * true_positives / max(1.0, float(predicted.sum() + target.sum()))
        return {
            "loss": float(F.binary_cross_entropy_with_logits(logits, target)),
            "mean_ap": mean_average_precision(torch.sigmoid(logits).numpy(), target.numpy()),
            "exact_match": float((predicted == target).all(1).float().mean()),
            "f1": f1,
        }

    @torch.no_grad()
    def figures(self, batch: Any) -> Mapping[str, Any]:
        images, targets = batch
        net = unwrap(self.modules["net"])
        net.eval()
        probabilities = torch.sigmoid(net(self._inputs(images[:8]))).float().cpu()
        net.train()
        return {"predictions": scene_predictions_figure(images[:8], targets[:8], probabilities, self.class_names)}

    def export(self) -> dict[str, Any]:
        return {
            "family": "visualization",
            "model": self.model_name,
            "arch": self.arch,
            "in_channels": self.meta.channels,
            "class_names": self.class_names,
            "state_dict": unwrap(self.modules["net"]).state_dict(),
        }


def build_task(model: str, params: Params) -> SceneClassifierTask:
    directory = data_dir(params)
    section = params.visualization
    return SceneClassifierTask(model, getattr(section.models, model), section.trainer, directory,
                               read_meta(directory))


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """The trained scene classifier from :meth:`SceneClassifierTask.export` output, in eval mode."""
    net = build_scene_cnn(export["arch"], export["in_channels"], len(export["class_names"]))
    net.load_state_dict(export["state_dict"])
    return net.eval().requires_grad_(False)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """What MLflow serves (components/model_logging.py): scenes (N, C, H, W) in [0, 1] -> one logit per
    digit class (N, 10: which digits the scene holds); the example is 64x64."""
    example = torch.rand(2, export["in_channels"], 64, 64, generator=torch.Generator().manual_seed(0))
    return ServedModel(load_exported(export), example)
