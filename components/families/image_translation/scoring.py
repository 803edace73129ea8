"""How translated scenes are scored: the FCN-score and FID.

- FCN-score (Isola et al., 2017, after Long et al.'s FCN): the segmentation family's trained network
  (``image_translation.scorer``, read from ``models/segmentation/<scorer>``, trained on the family's
  dataset) labels each generated image; per-pixel accuracy, per-class accuracy and mIoU of its
  labels against the label map the image was generated from (VOC's boundary label left out, as in
  training). The same network on the real images gives the ceiling.
- FID on the features of the visualization family's scene classifier (``models/visualization/
  scene_cnn``: its last stage, global-average pooled), generated scenes against the real ones of
  the same split; on the scenes only (a classifier of grey 64-px scenes has no features for VOC's
  photos).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from components.analysis import load_export
from components.errors import UserError
from components.families.image_translation.data import to_grey
from components.metrics.generative import FeatureFID
from components.metrics.segmentation import SegmentationMetrics

SCENE_FEATURES = "models/visualization/scene_cnn"


def scorer_folder(scorer: str) -> str:
    return f"models/segmentation/{scorer}"


class Scorer(nn.Module):
    """The frozen segmentation network on colour images (N, 3, S, S) in [0, 1]: a grey network (the
    scenes') reads their channel mean, a colour one (VOC's) the images themselves."""

    def __init__(self, net: nn.Module, in_channels: int) -> None:
        super().__init__()
        self.net, self.grey = net, in_channels == 1

    def forward(self, images: Tensor) -> Tensor:
        return self.net(to_grey(images) if self.grey else images)


def load_scorer(root: Path, scorer: str, dataset: str, class_names: list[str]) -> Scorer:
    """The trained segmentation network, frozen, in eval mode; its classes must be ``dataset``'s."""
    from components.families.segmentation.task import load_exported

    export = load_export(root, scorer_folder(scorer), f"train_segmentation@{scorer}")
    if list(export["class_names"]) != list(class_names):
        raise UserError(f"{scorer_folder(scorer)}: trained on classes {export['class_names']}, {dataset} has "
                        f"{class_names}; train it on segmentation.dataset: {dataset}")
    return Scorer(load_exported(export).requires_grad_(False), export["in_channels"]).eval()


class SceneFeatures(nn.Module):
    """The FID feature extractor: scenes (N, 3 or 1, S, S) in [0, 1] -> the scene classifier's last
    stage, average-pooled (N, its width)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.num_features = net.classifier.in_features

    def forward(self, images: Tensor) -> Tensor:
        grey = to_grey(images) if images.shape[1] == 3 else images
        return self.net.features(grey)[self.net.layer_names[-1]].mean(dim=(2, 3))


def load_scene_features(root: Path) -> SceneFeatures:
    from components.families.visualization.task import load_exported

    return SceneFeatures(load_exported(load_export(root, SCENE_FEATURES, "train_visualization@scene_cnn")))


@torch.no_grad()
def fcn_score(scorer: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], num_classes: int,
              ignore_index: int | None = None) -> dict[str, float]:
    """``pixel_accuracy``, ``class_accuracy``, ``miou`` of the scorer's labels of each batch's images
    (N, 3, S, S) against its label maps (N, S, S), pixels labelled ``ignore_index`` left out; summed
    over DDP ranks."""
    metric = None
    for scenes, masks in batches:
        if metric is None:
            metric = SegmentationMetrics(num_classes, ignore_index=ignore_index).to(scenes.device)
        metric.update(scorer(scenes).argmax(dim=1), masks)
    result = metric.compute()
    return {key: float(result[key]) for key in ("pixel_accuracy", "class_accuracy", "miou")}


def real_fid(features: nn.Module, real: Iterable[Tensor]) -> FeatureFID:
    """A :class:`FeatureFID` holding the real scenes' statistics (kept across ``reset()``)."""
    fid = None
    for images in real:
        if fid is None:
            fid = FeatureFID(features, reset_real_features=False).to(images.device)
        fid.update(images, real=True)
    return fid


def fid_of(fid: FeatureFID, fakes: Iterable[Tensor]) -> float:
    fid.reset()
    for images in fakes:
        fid.update(images, real=False)
    return float(fid.compute())
