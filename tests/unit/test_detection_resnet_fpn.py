"""``backbone: resnet50_fpn``: torchvision's paper detectors (ResNet-50-FPN) on grey or RGB scenes,
their ``backbone_weights`` file and the params that switch them on."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.detection import (
    fasterrcnn_resnet50_fpn,
    fcos_resnet50_fpn,
    maskrcnn_resnet50_fpn,
    retinanet_resnet50_fpn_v2,
)
from torchvision.ops.misc import FrozenBatchNorm2d

from components.config import parse_params
from components.errors import UserError
from components.families.detection.task import TRAINING_KEYS, build_detector, load_exported
from tests.conftest import tiny_params_dict
from tests.detections import check_predictions

NUM_CLASSES, SIZE = 11, 64
TORCHVISION = {
    "faster_rcnn": fasterrcnn_resnet50_fpn,
    "mask_rcnn": maskrcnn_resnet50_fpn,
    "retinanet": retinanet_resnet50_fpn_v2,
    "fcos": fcos_resnet50_fpn,
}
LOSSES = {
    "faster_rcnn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
    "mask_rcnn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss_mask"},
    "retinanet": {"classification", "bbox_regression"},
    "fcos": {"classification", "bbox_regression", "bbox_ctrness"},
}


def _arch(model: str, **changes) -> dict:
    """The model's tiny params section with ``backbone: resnet50_fpn``, without the training keys."""
    section = {**tiny_params_dict()["detection"]["models"][model], "backbone": "resnet50_fpn", **changes}
    return {k: v for k, v in section.items() if k not in TRAINING_KEYS}


def _batch(channels: int, masks: bool):
    images = [torch.rand(channels, SIZE, SIZE) for _ in range(2)]
    boxes = [torch.tensor([[4.0, 6.0, 24.0, 30.0], [30.0, 30.0, 52.0, 50.0]]), torch.tensor([[10.0, 10.0, 40.0, 36.0]])]
    targets = [{"boxes": b, "labels": torch.arange(1, len(b) + 1)} for b in boxes]
    if masks:
        for t in targets:
            t["masks"] = torch.zeros(len(t["boxes"]), SIZE, SIZE, dtype=torch.uint8)
            for i, (x0, y0, x1, y1) in enumerate(t["boxes"].int().tolist()):
                t["masks"][i, y0:y1, x0:x1] = 1
    return images, targets


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("model", TORCHVISION)
def test_paper_detectors_train_and_predict_on_grey_and_rgb(model, channels):
    torch.manual_seed(0)
    net = build_detector(model, NUM_CLASSES, channels, SIZE, _arch(model))
    images, targets = _batch(channels, masks=model == "mask_rcnn")
    losses = net(images, targets)
    assert set(losses) == LOSSES[model]
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert net.backbone.body.conv1.weight.grad.abs().sum() > 0  # the ResNet stem trains
    net.eval()
    with torch.no_grad():
        preds = net(images)
    check_predictions(preds, 2, SIZE, NUM_CLASSES)


@pytest.mark.parametrize("model", TORCHVISION)
def test_paper_detectors_are_torchvisions_with_every_layer_trainable(model):
    net = build_detector(model, NUM_CLASSES, 1, SIZE, _arch(model))
    reference = TORCHVISION[model](weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    assert _count(net) == _count(reference)
    assert all(p.requires_grad for p in net.parameters())
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in net.modules())
    assert isinstance(net.backbone.body.bn1, nn.BatchNorm2d)
    assert net.transform.min_size == (SIZE,) and net.transform.max_size == SIZE  # no 800-px rescale


def test_budgets_that_apply_and_those_that_are_the_papers():
    faster = build_detector("faster_rcnn", NUM_CLASSES, 1, SIZE, _arch("faster_rcnn", detections_per_img=7))
    assert faster.roi_heads.detections_per_img == 7
    assert faster.rpn._post_nms_top_n == {"training": 2000, "testing": 1000}  # not rpn_proposals
    assert faster.roi_heads.fg_bg_sampler.batch_size_per_image == 512  # not roi_samples
    fcos = build_detector("fcos", NUM_CLASSES, 1, SIZE, _arch("fcos", center_sampling_radius=2.5))
    assert fcos.center_sampling_radius == 2.5 and fcos.detections_per_img == 100


def _saved(tmp_path, state: dict, name: str = "resnet50.pth") -> str:
    path = tmp_path / name
    torch.save(state, path)
    return str(path)


def test_backbone_weights_fill_the_resnet_body(tmp_path):
    torch.manual_seed(0)
    state = resnet50().state_dict()
    arch = _arch("retinanet", backbone_weights=_saved(tmp_path, state))
    net = build_detector("retinanet", NUM_CLASSES, 1, SIZE, arch)
    body = net.backbone.body
    assert torch.equal(body.conv1.weight, state["conv1.weight"])
    assert torch.equal(body.layer4[2].conv3.weight, state["layer4.2.conv3.weight"])
    assert torch.equal(body.bn1.running_var, state["bn1.running_var"])
    assert all(p.requires_grad for p in body.parameters())


def test_an_exported_model_reloads_without_its_weights_file(tmp_path):
    path = _saved(tmp_path, resnet50().state_dict())
    arch = _arch("fcos", backbone_weights=path)
    net = build_detector("fcos", NUM_CLASSES, 1, SIZE, arch)
    (tmp_path / "resnet50.pth").unlink()
    export = {"model": "fcos", "class_names": [str(i) for i in range(NUM_CLASSES)], "in_channels": 1,
              "image_size": SIZE, "arch": arch, "state_dict": net.state_dict()}
    reloaded = load_exported(export)
    assert torch.equal(reloaded.backbone.body.conv1.weight, net.backbone.body.conv1.weight)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("resnet18", "is not a torchvision ResNet-50 state dict"),
        ("text", "is not a readable torch state dict"),
    ],
)
def test_bad_backbone_weights_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if content == "resnet18":
        torch.save(resnet18().state_dict(), path)
    elif content == "text":
        path.write_text("not weights\n")
    with pytest.raises(UserError) as caught:
        build_detector("faster_rcnn", NUM_CLASSES, 1, SIZE, _arch("faster_rcnn", backbone_weights=str(path)))
    text = str(caught.value)
    assert text.startswith("detection.models.faster_rcnn.backbone_weights: ") and str(path) in text
    assert message in text and "\n" not in text


def test_params_accept_the_backbone_fields():
    raw = tiny_params_dict()
    for model in TORCHVISION:
        assert raw["detection"]["models"][model]["backbone"] == "conv"
        raw["detection"]["models"][model].update(backbone="resnet50_fpn", backbone_weights="weights/resnet50.pth")
    params = parse_params(raw)
    assert params.detection.models.mask_rcnn.backbone_weights == "weights/resnet50.pth"


@pytest.mark.parametrize(
    ("model", "changes", "message"),
    [
        ("faster_rcnn", {"backbone": "resnet101_fpn"}, "backbone"),
        ("retinanet", {"backbone_weights": "weights/resnet50.pth"}, "backbone_weights needs backbone: resnet50_fpn"),
        ("ssd", {"backbone": "resnet50_fpn"}, "backbone"),  # SSD stays on the conv backbone
    ],
)
def test_params_reject_bad_backbone_fields(model, changes, message):
    raw = tiny_params_dict()
    raw["detection"]["models"][model].update(changes)
    with pytest.raises(UserError, match=f"detection.models.{model}.*{message}"):
        parse_params(raw)
