"""Object detection as the harness drives it: loss dicts from the model, COCO and VOC AP evaluation.

Every detector follows torchvision's interface: ``model(images, targets)`` returns a dict of
losses in train mode, and ``model(images)`` a list of ``{boxes, scores, labels[, masks]}`` per
image in eval mode; the task sums the losses and never looks inside a model.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from components.config import Params
from components.data.config import ProposalsConfig
from components.data.proposals import proposals_path, read_proposals, selective_search
from components.data.schema import DatasetMeta, crowd_flags, decode_images, read_meta, read_split
from components.errors import UserError
from components.families.detection.config import DetModelBase
from components.families.detection.figures import pr_curve_figure, prediction_figure
from components.families.detection.models import BUILDERS
from components.families.detection.regions import REGION_BUILDERS
from components.families.detection.resnet_fpn import BUILDERS as RESNET50_FPN_BUILDERS
from components.metrics.detection import DetectionEvaluator
from components.model_logging import ServedModel
from components.runtime import resolve
from components.schema import TrainerConfig
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

# Keys of a model's params section that configure training rather than the network.
TRAINING_KEYS = (
    "epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction", "grad_clip", "augment", "batch_size",
    # R-CNN's SVM and box-regression fits (rcnn.py): their results are buffers of the network
    "svm_images", "svm_c", "svm_neg_iou", "initial_negatives", "mining_rounds", "regression_iou", "ridge_alpha",
)
MASK_MODELS = ("mask_rcnn",)
PROPOSAL_MODELS = ("rcnn", "fast_rcnn")  # classify selective-search proposals cached by prepare
AUXILIARY_LOSS = re.compile(r"_(\d+|enc)$")


def augmentation(kind: str) -> v2.Transform | None:
    """Training augmentation that moves boxes and masks with the pixels (transforms v2).

    No flips: a mirrored digit is not the same digit. ``affine``: shifts of up to 10% and scales
    of 0.9-1.1, boxes clamped to the image and boxes pushed out of it (with their labels and
    masks) removed.
    """
    if kind == "none":
        return None
    return v2.Compose([
        v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        v2.ClampBoundingBoxes(),
        v2.SanitizeBoundingBoxes(min_size=2),
    ])


class DetectionDataset(Dataset):
    """One split of a ``DENSE`` dataset: ``(image (C, H, W) float in [0, 1], target dict)``.

    The target holds ``boxes`` (K, 4) xyxy pixels, ``labels`` (K,) and, with ``masks``, the
    instance masks (K, H, W) uint8 — torchvision's detection target format. Crowd regions (the
    ``iscrowd`` column, COCO) are left out, as training needs; with ``crowds`` they are kept and the
    target gains ``iscrowd`` (K,), which the evaluation ignores as COCOeval does (no transform then).
    """

    def __init__(
        self, directory: Path, split: str, masks: bool = False, transform: v2.Transform | None = None,
        crowds: bool = False, proposals: bool = False,
    ):
        if (crowds or proposals) and transform is not None:
            raise ValueError("DetectionDataset: crowds and proposals take no transform (they would not move)")
        table = read_split(directory, split)
        self.images = torch.from_numpy(decode_images(table).transpose(0, 3, 1, 2).copy())
        flags = crowd_flags(table)  # per row, one 0/1 per box

        def kept(column: str) -> list[list]:
            rows = table.column(column).to_pylist()
            if crowds:
                return rows
            return [[v for v, f in zip(row, fs, strict=True) if not f] for row, fs in zip(rows, flags, strict=True)]

        self.boxes = [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in kept("boxes")]
        self.labels = [torch.tensor(y, dtype=torch.int64) for y in kept("labels")]
        self.iscrowd = [torch.tensor(fs, dtype=torch.int64) for fs in flags] if crowds else None
        self.mask_bytes = None
        if masks:
            if any(len(m) != len(fs) for m, fs in zip(table.column("instance_masks").to_pylist(), flags, strict=True)):
                raise UserError(f"{directory / split}.parquet: mask models need one instance mask per box")
            self.mask_bytes = kept("instance_masks")
        self.transform = transform
        self.proposals = None
        if proposals:
            boxes, self.proposal_seconds = read_proposals(directory, split)
            if len(boxes) != len(self.images):
                raise UserError(f"{proposals_path(directory, split)}: proposals of {len(boxes)} images for "
                                f"{len(self.images)} in the split; run `dvc repro prepare`")
            self.proposals = [torch.from_numpy(b) for b in boxes]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = self.images[index]
        h, w = image.shape[-2:]
        target = {"boxes": self.boxes[index], "labels": self.labels[index]}
        if self.iscrowd is not None:
            target["iscrowd"] = self.iscrowd[index]
        if self.proposals is not None:
            target["proposals"] = self.proposals[index]
        if self.mask_bytes is not None:
            masks = [np.frombuffer(m, dtype=np.uint8).reshape(h, w) for m in self.mask_bytes[index]]
            target["masks"] = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, h, w, dtype=torch.uint8)
        if self.transform is not None:
            image = tv_tensors.Image(image)
            target = {**target, "boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w))}
            if "masks" in target:
                target["masks"] = tv_tensors.Mask(target["masks"])
            image, target = self.transform(image, target)
            target = {k: v.as_subclass(torch.Tensor) for k, v in target.items()}
            image = image.as_subclass(torch.Tensor)
        return image.float() / 255.0, target


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Detection batches stay lists: images and targets of different box counts."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.detection.dataset


class DetectionTask(ModuleTask):
    """One detector (see ``MODELS``) on a dense dataset, scored by COCO and VOC AP."""

    collate_fn = staticmethod(collate)

    def __init__(self, model: str, config: DetModelBase, trainer: TrainerConfig, directory: Path, meta: DatasetMeta,
                 proposals: ProposalsConfig | None = None):
        self.model_name = model
        self.config = config
        self.directory = directory
        self.meta = meta
        self.masks = model in MASK_MODELS
        self.proposals = model in PROPOSAL_MODELS
        self.proposal_search = proposals.search() if proposals else None
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self._datasets: dict[str, Dataset] | None = None
        self.evaluator: DetectionEvaluator | None = None  # the last evaluation (PR curves for figures)
        self._untrained: torch.nn.Module | None = None  # the network at initialisation: a reference point
        self._references: dict[str, float] | None = None  # its scores, computed at the first evaluation
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {
                "train": DetectionDataset(self.directory, "train", self.masks, augmentation(self.config.augment),
                                          proposals=self.proposals),
                "val": DetectionDataset(self.directory, "val", self.masks, crowds=True, proposals=self.proposals),
            }
        return self._datasets

    def build_network(self) -> torch.nn.Module:
        return build_detector(self.model_name, self.meta.num_classes, self.meta.channels, self.meta.height, self.arch)

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        net = self.build_network().to(device)
        self._untrained = copy.deepcopy(net).eval()
        self.modules = {"net": wrap(net)}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers = {"net": optimizer}
        self.schedulers = {"net": scheduler}

    def _to_device(self, images, targets=None):
        images = [image.to(self.device, non_blocking=True) for image in images]
        if targets is None:
            return images
        return images, [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]

    def inputs_of(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> tuple:
        """The network's positional inputs: the images, and the proposals for R-CNN and Fast R-CNN."""
        return (images, [t["proposals"] for t in targets]) if self.proposals else (images,)

    def train_step(self, batch: Any) -> Mapping[str, torch.Tensor]:
        images, targets = self._to_device(*batch)
        with self.precision.autocast():
            losses = self.modules["net"](*self.inputs_of(images, targets), targets)
            loss = sum(losses.values())
        self.precision.backward_step(loss, self.optimizers["net"], max_norm=self.config.grad_clip)
        self.schedulers["net"].step()
        # DETR's auxiliary terms (per decoder layer ``_0``, ``_1``; encoder ``_enc``) count in ``loss`` only.
        shown = {k: v.detach() for k, v in losses.items() if not AUXILIARY_LOSS.search(k)}
        return {"loss": loss.detach(), **shown}

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                net: torch.nn.Module | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image with the network (default: the one trained) in eval mode; masks as
        {0, 1} (M, H, W). ``targets`` supply the proposals of the models that take them."""
        net = unwrap(self.modules["net"]) if net is None else net
        net.eval()
        try:
            images, targets = self._to_device(images, targets)
            preds = net(*self.inputs_of(images, targets))
        finally:
            net.train()
        if self.masks:
            for p in preds:
                p["masks"] = (p["masks"][:, 0] > 0.5).to(torch.uint8)
        return preds

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """COCO and VOC AP of the trained network, with the untrained network's AP beside them
        (``*_untrained``, computed once per run)."""
        batches = list(batches)
        fitted = self.before_evaluation()
        evaluator = DetectionEvaluator(self.meta.class_names, masks=self.masks)
        started, images_seen = time.perf_counter(), 0
        for images, targets in batches:
            evaluator.update(self.predict(images, targets), targets)
            images_seen += len(images)
        timing = {"inference_ms_per_image": 1000 * (time.perf_counter() - started) / max(images_seen, 1)}
        if self.proposals:  # selective search's time, measured by prepare (one process)
            timing["proposal_ms_per_image"] = 1000 * self.datasets()["val"].proposal_seconds
        result = {**evaluator.compute(), **timing, **fitted}  # compute gathers every rank's images first
        self.evaluator = evaluator
        if self._references is None:
            untrained = DetectionEvaluator(self.meta.class_names, masks=self.masks)
            for images, targets in batches:
                untrained.update(self.predict(images, targets, self._untrained), targets)
            scores = untrained.compute()
            keys = ("map", "map50", "mask_map", "mask_map50")
            self._references = {f"{k}_untrained": scores[k] for k in keys if k in scores}
        return {**result, **self._references}

    def before_evaluation(self) -> dict[str, float]:
        """R-CNN: fit the SVMs and box regressors on the current CNN's features of the first
        ``svm_images`` training images (rcnn.py); returns the fit's statistics. Others: nothing."""
        if self.model_name != "rcnn":
            return {}
        from components.families.detection.rcnn import fit_region_heads

        config = self.config
        train = self.datasets()["train"]  # unaugmented: R-CNN's augment can only be "none"
        count = min(config.svm_images, len(train))
        step = 100
        batches = (self._to_device(*collate([train[i] for i in range(start, min(start + step, count))]))
                   for start in range(0, count, step))
        return fit_region_heads(
            unwrap(self.modules["net"]), batches, svm_c=config.svm_c, svm_neg_iou=config.svm_neg_iou,
            initial_negatives=config.initial_negatives, mining_rounds=config.mining_rounds,
            regression_iou=config.regression_iou, ridge_alpha=config.ridge_alpha, seed=0,
        )

    def figures(self, batch: Any) -> Mapping[str, Any]:
        images, targets = batch
        images, targets = images[:8], targets[:8]
        figures = {"predictions": prediction_figure(images, targets, self.predict(images, targets),
                                                    self.meta.class_names)}
        if self.evaluator is not None and self.evaluator.curves:
            figures["pr_curves"] = pr_curve_figure(self.evaluator.curves, self.meta.class_names)
        return figures

    def export(self) -> dict[str, Any]:
        return {
            "family": "detection",
            "model": self.model_name,
            "arch": self.arch,
            "in_channels": self.meta.channels,
            "image_size": self.meta.height,
            "class_names": self.meta.class_names,
            "state_dict": unwrap(self.modules["net"]).state_dict(),
            "proposals": self.proposal_search if self.proposals else None,  # how to search new images
        }


def build_detector(model: str, num_classes: int, in_channels: int, image_size: int, arch: Mapping) -> torch.nn.Module:
    """``model``'s network from ``arch``, its params section less TRAINING_KEYS. The torchvision
    detectors with ``backbone: resnet50_fpn`` are torchvision's paper models (resnet_fpn.py, with
    ``backbone_weights``), else they sit on the conv backbone (models.py)."""
    if arch.get("backbone") == "resnet50_fpn":
        return RESNET50_FPN_BUILDERS[model](num_classes, in_channels, image_size, **_without(arch, "backbone"))
    arch = _without(arch, "backbone", "backbone_weights")
    if model in BUILDERS:
        return BUILDERS[model](num_classes, in_channels, image_size, **arch)
    if model in REGION_BUILDERS:
        return REGION_BUILDERS[model](num_classes, in_channels, image_size, **arch)
    if model == "yolo":
        from components.families.detection.yolo import YOLODetector

        return YOLODetector(num_classes, in_channels, image_size, **arch)
    if model == "detr":
        from components.families.detection.detr import DETRDetector

        return DETRDetector(num_classes, in_channels, image_size, **arch)
    raise UserError(f"unknown detection model {model!r}")


def _without(mapping: Mapping, *keys: str) -> dict:
    """A copy of ``mapping`` less ``keys``."""
    return {k: v for k, v in mapping.items() if k not in keys}


def build_task(model: str, params: Params) -> DetectionTask:
    directory = data_dir(params)
    section = params.detection
    meta = read_meta(directory)
    if meta.height != meta.width:
        raise UserError(f"{directory}: detection needs square images, got {meta.height}x{meta.width}")
    return DetectionTask(model, getattr(section.models, model), section.trainer, directory, meta,
                         params.data.proposals)


def load_exported(export: Mapping[str, Any]) -> torch.nn.Module:
    """Rebuild a trained detector from :meth:`DetectionTask.export` output (e.g. ``model.pt``); the
    ``backbone_weights`` file it started from is not needed (the state dict holds every weight)."""
    arch = _without(export["arch"], "backbone_weights")
    net = build_detector(export["model"], len(export["class_names"]), export["in_channels"], export["image_size"], arch)
    net.load_state_dict(export["state_dict"])
    return net.eval()


SERVED_DETECTIONS = 100  # rows per image the served detector returns


class Detections(torch.nn.Module):
    """What MLflow serves for a detector: images (N, C, S, S) in [0, 1] -> (N, SERVED_DETECTIONS, 6),
    rows ``[x1, y1, x2, y2, score, label]`` by falling score, padded with score 0 and label -1
    (Mask R-CNN's masks are not served: its model.pt has them)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.net(list(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = []
        for p in self.detect(images):
            found = torch.cat([p["boxes"], p["scores"][:, None], p["labels"][:, None].to(p["boxes"].dtype)], dim=1)
            found = found[p["scores"].argsort(descending=True)][:SERVED_DETECTIONS]
            padding = found.new_zeros(SERVED_DETECTIONS - len(found), 6)
            padding[:, 5] = -1
            rows.append(torch.cat([found, padding]))
        return torch.stack(rows)


class ProposalDetections(Detections):
    """:class:`Detections` of R-CNN or Fast R-CNN: selective search (as prepare ran it) on each
    image first, so the served model takes images alone."""

    def __init__(self, net: torch.nn.Module, search: Mapping[str, Any]):
        super().__init__(net)
        self.search = dict(search)  # selective_search's keyword arguments

    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        proposals = [torch.from_numpy(selective_search(p, **self.search)).to(images.device)
                     for p in pixels]
        return self.net(list(images), proposals)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """The :class:`Detections` of a trained detector (components/model_logging.py): NMS makes the
    output's size depend on the data, so it is pickled rather than exported."""
    size = export["image_size"]
    example = torch.rand(2, export["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    net = load_exported(export)
    served = Detections(net) if not export.get("proposals") else ProposalDetections(net, export["proposals"])
    return ServedModel(served.eval(), example, traceable=False)
