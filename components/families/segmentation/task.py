"""Semantic segmentation as the harness drives it: per-pixel cross-entropy, mIoU evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from components.config import Params
from components.data.schema import DatasetMeta, decode_images, decode_semantic_masks, read_meta, read_split
from components.families.segmentation.config import SegModelBase
from components.families.segmentation.figures import mask_figure
from components.families.segmentation.models import build_model
from components.metrics.segmentation import SegmentationMetrics
from components.model_logging import ServedModel
from components.runtime import resolve
from components.schema import TrainerConfig
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

# Keys of a model's params section that configure training rather than the network.
TRAINING_KEYS = ("epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction")


def load_split(directory: Path, split: str) -> TensorDataset:
    """A split as tensors: images (N, C, H, W) float in [0, 1], masks (N, H, W) int64."""
    table = read_split(directory, split)
    images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    masks = torch.from_numpy(decode_semantic_masks(table).astype(np.int64))
    return TensorDataset(images, masks)


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.segmentation.dataset


class SegmentationTask(ModuleTask):
    """One segmentation network (``fcn``, ``unet``, ``segnet`` or ``dilated``) on a dense dataset."""

    def __init__(
        self, model: str, config: SegModelBase, trainer: TrainerConfig, directory: Path, meta: DatasetMeta
    ):
        self.model_name = model
        self.config = config
        self.memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format
        self.directory = directory
        self.meta = meta
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self._datasets: dict[str, Dataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {split: load_split(self.directory, split) for split in ("train", "val")}
        return self._datasets

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        net = build_model(self.model_name, self.meta.channels, self.meta.num_classes, **self.arch)
        self.modules = {"net": wrap(net.to(device, memory_format=self.memory_format))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers = {"net": optimizer}
        self.schedulers = {"net": scheduler}

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @property
    def _ignore_index(self) -> int:
        return -100 if self.meta.ignore_index is None else self.meta.ignore_index

    def train_step(self, batch: Any) -> Mapping[str, torch.Tensor]:
        images, masks = batch
        masks = masks.to(self.device, non_blocking=True)
        with self.precision.autocast():
            logits = self.modules["net"](self._inputs(images))
            loss = F.cross_entropy(logits, masks, ignore_index=self._ignore_index)
        self.precision.backward_step(loss, self.optimizers["net"])
        self.schedulers["net"].step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class index per pixel, (N, H, W), with the network in eval mode."""
        net = unwrap(self.modules["net"])
        net.eval()
        try:
            return net(self._inputs(images)).argmax(dim=1)
        finally:
            net.train()

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        metric = SegmentationMetrics(self.meta.num_classes, ignore_index=self.meta.ignore_index).to(self.device)
        for images, masks in batches:
            metric.update(self.predict(images), masks.to(self.device))
        result = metric.compute()  # sums the confusion matrix over ranks
        out = {"miou": float(result["miou"]), "pixel_accuracy": float(result["pixel_accuracy"])}
        for name, iou in zip(self.meta.class_names, result["iou_per_class"].tolist(), strict=True):
            out[f"iou/{name}"] = iou
        return out

    def figures(self, batch: Any) -> Mapping[str, Any]:
        images, masks = batch
        return {"masks": mask_figure(images, masks, self.predict(images).cpu(), self.meta.class_names)}

    def export(self) -> dict[str, Any]:
        return {
            "family": "segmentation",
            "model": self.model_name,
            "arch": self.arch,
            "in_channels": self.meta.channels,
            "class_names": self.meta.class_names,
            "ignore_index": self.meta.ignore_index,
            "state_dict": unwrap(self.modules["net"]).state_dict(),
        }


def build_task(model: str, params: Params) -> SegmentationTask:
    directory = data_dir(params)
    section = params.segmentation
    return SegmentationTask(model, getattr(section.models, model), section.trainer, directory, read_meta(directory))


def load_exported(export: Mapping[str, Any]) -> torch.nn.Module:
    """Rebuild a trained network from :meth:`SegmentationTask.export` output (e.g. ``model.pt``)."""
    arch = {k: v for k, v in export["arch"].items() if k != "backbone_weights"}  # the state dict holds them
    net = build_model(export["model"], export["in_channels"], len(export["class_names"]), **arch)
    net.load_state_dict(export["state_dict"])
    return net.eval()


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """What MLflow serves (components/model_logging.py): images (N, C, H, W) in [0, 1] -> class
    logits (N, K, H, W), any size (fully convolutional; the example is 64x64)."""
    example = torch.rand(2, export["in_channels"], 64, 64, generator=torch.Generator().manual_seed(0))
    return ServedModel(load_exported(export), example, input_dynamic=(0, 2, 3), output_dynamic=(0, 2, 3))
