"""The detection family's models and data path: torchvision's detectors on the small backbone,
augmentation that moves boxes and masks together, and config errors that name the key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from components.config import parse_params
from components.data.schema import DENSE, dense_columns, dense_row, mask_box, write_split
from components.errors import UserError
from components.families.detection.models import TORCHVISION_MODELS, ConvBackbone
from components.families.detection.task import DetectionDataset, augmentation, build_detector, collate
from tests.conftest import tiny_params_dict
from tests.detections import check_predictions

NUM_CLASSES, CHANNELS, SIZE = 11, 1, 64


def _arch(model: str) -> dict:
    """The model's params.yaml section (tiny widths), without the training keys."""
    from components.families.detection.task import TRAINING_KEYS

    section = tiny_params_dict()["detection"]["models"][model]
    return {k: v for k, v in section.items() if k not in TRAINING_KEYS}


def _batch(masks: bool = False):
    images = [torch.rand(CHANNELS, SIZE, SIZE) for _ in range(2)]
    boxes = [torch.tensor([[4.0, 6.0, 24.0, 30.0], [30.0, 30.0, 52.0, 50.0]]), torch.tensor([[10.0, 10.0, 40.0, 36.0]])]
    targets = [{"boxes": b, "labels": torch.arange(1, len(b) + 1)} for b in boxes]
    if masks:
        for t in targets:
            m = torch.zeros(len(t["boxes"]), SIZE, SIZE, dtype=torch.uint8)
            for i, (x0, y0, x1, y1) in enumerate(t["boxes"].int().tolist()):
                m[i, y0:y1, x0:x1] = 1
            t["masks"] = m
    return images, targets


@pytest.mark.parametrize("model", TORCHVISION_MODELS)
def test_torchvision_detectors_train_and_predict(model):
    torch.manual_seed(0)
    net = build_detector(model, NUM_CLASSES, CHANNELS, SIZE, _arch(model))
    images, targets = _batch(masks=model == "mask_rcnn")
    losses = net(images, targets)
    assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == CHANNELS and first.weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        preds = net(images)
    check_predictions(preds, 2, SIZE, NUM_CLASSES)
    for p in preds:
        if model == "mask_rcnn":
            assert p["masks"].shape == (len(p["boxes"]), 1, SIZE, SIZE)


def test_default_detectors_are_sized_for_the_scenes():
    """0.2M-2M parameters: torchvision's 19M MobileNetV3-FPN detector reached AP50 0.05 in 3 minutes here."""
    from components.families import FAMILIES
    from components.families.detection.task import TRAINING_KEYS

    params = parse_params(yaml.safe_load(open("params.yaml")))
    for model in FAMILIES["detection"].models:
        section = getattr(params.detection.models, model).model_dump()
        arch = {k: v for k, v in section.items() if k not in TRAINING_KEYS}
        count = sum(p.numel() for p in build_detector(model, NUM_CLASSES, CHANNELS, SIZE, arch).parameters())
        assert 200_000 <= count <= 2_000_000, (model, count)


def test_backbone_returns_the_chosen_levels_at_their_strides():
    backbone = ConvBackbone(3, [8, 16, 32, 64], levels=[1, 3], fpn_channels=24)
    features = backbone(torch.rand(2, 3, 64, 64))
    assert list(features) == ["0", "1"]
    assert features["0"].shape == (2, 24, 16, 16) and features["1"].shape == (2, 24, 4, 4)
    plain = ConvBackbone(3, [8, 16, 32], levels=[0, 2])
    assert plain.out_channels == [8, 32]
    assert [f.shape[1:] for f in plain(torch.rand(1, 3, 64, 64)).values()] == [(8, 32, 32), (32, 8, 8)]


def _write_scenes(directory, n=6):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        image = rng.integers(0, 255, (SIZE, SIZE, 1), dtype=np.uint8)
        masks = []
        for x0, y0, size in ((8, 10, 14), (36, 30, 20)):
            m = np.zeros((SIZE, SIZE), dtype=np.uint8)
            m[y0:y0 + size, x0:x0 + size // 2] = 1
            m[y0 + size - 3:y0 + size, x0:x0 + size] = 1  # an L shape: its box is not its mask
            masks.append(m)
        rows.append(dense_row(i, image, np.zeros((SIZE, SIZE), np.uint8), [mask_box(m) for m in masks], [3, 7], masks,
                              []))
    write_split(dense_columns(rows), DENSE,
                directory / "train.parquet")


def test_dataset_yields_torchvision_targets(tmp_path):
    _write_scenes(tmp_path)
    data = DetectionDataset(tmp_path, "train", masks=True)
    image, target = data[0]
    assert image.shape == (1, SIZE, SIZE) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert target["boxes"].tolist() == [[8.0, 10.0, 22.0, 24.0], [36.0, 30.0, 56.0, 50.0]]
    assert target["labels"].tolist() == [3, 7] and target["masks"].shape == (2, SIZE, SIZE)
    images, targets = collate([data[0], data[1]])
    assert len(images) == len(targets) == 2


def test_affine_augmentation_moves_boxes_and_masks_together(tmp_path):
    _write_scenes(tmp_path)
    data = DetectionDataset(tmp_path, "train", masks=True, transform=augmentation("affine"))
    torch.manual_seed(0)
    moved = 0
    for index in range(len(data)):
        _, target = data[index]
        assert len(target["boxes"]) == len(target["labels"]) == len(target["masks"])
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            assert np.allclose(box.tolist(), mask_box(mask.numpy()), atol=1.01)  # resampling: within a pixel
        moved += target["boxes"].tolist() != [[8.0, 10.0, 22.0, 24.0], [36.0, 30.0, 56.0, 50.0]]
    assert moved >= len(data) - 1
    assert augmentation("none") is None


def test_mask_model_without_masks_is_a_clear_error(tmp_path):
    rows = [dense_row(0, np.zeros((SIZE, SIZE, 1), np.uint8), np.zeros((SIZE, SIZE), np.uint8), [[1, 1, 9, 9]], [1],
                      [], [])]
    write_split(dense_columns(rows), DENSE, tmp_path / "train.parquet")
    with pytest.raises(UserError, match="one instance mask per box"):
        DetectionDataset(tmp_path, "train", masks=True)


@pytest.mark.parametrize(
    ("model", "key", "value", "message"),
    [
        ("faster_rcnn", "anchor_sizes", [[16]], "anchor_sizes needs one list per level"),
        ("retinanet", "levels", [2, 1], "levels \\[2, 1\\] must be increasing"),
        ("ssd", "scales", [0.2, 0.5], "scales needs len\\(levels\\) \\+ 1"),
        ("fcos", "augment", "flip", "augment"),
    ],
)
def test_bad_detection_params_name_the_key(model, key, value, message):
    raw = tiny_params_dict()
    raw["detection"]["models"][model][key] = value
    with pytest.raises(UserError, match=f"detection.models.{model}.*{message}"):
        parse_params(raw)
