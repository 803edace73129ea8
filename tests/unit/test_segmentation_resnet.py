"""torchvision's paper-size segmenters behind the family's interface (``backbone: resnet50``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50
from torchvision.models.segmentation import deeplabv3_resnet50, fcn_resnet50

from components.errors import UserError
from components.families.segmentation.models import build_model
from components.families.segmentation.task import load_exported

TORCHVISION = {"fcn": fcn_resnet50, "dilated": deeplabv3_resnet50}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["fcn", "dilated"])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet50_segmenter_is_torchvisions_network_and_learns(name, channels):
    torch.manual_seed(0)
    net = build_model(name, channels, 5, backbone="resnet50", base_channels=16)
    reference = TORCHVISION[name](weights=None, weights_backbone=None, num_classes=5, aux_loss=False)
    assert _count(net) == _count(reference)  # the same architecture, not a look-alike
    images = torch.rand(2, channels, 64, 64)
    masks = torch.randint(0, 5, (2, 64, 64))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):  # one batch, memorised: the loss must fall
        loss = F.cross_entropy(net(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert net.net.backbone.conv1.weight.grad.abs().sum() > 0
    assert losses[-1] < losses[0]
    net.eval()
    assert net(images).shape == (2, 5, 64, 64)


def test_resnet50_backbone_weights_load_and_errors(tmp_path):
    source = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(source.state_dict(), path)
    net = build_model("fcn", 3, 4, backbone="resnet50", backbone_weights=str(path))
    assert torch.equal(net.net.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(net.net.backbone.layer4[2].bn3.running_var, source.layer4[2].bn3.running_var)

    with pytest.raises(UserError, match=r"segmentation.models.dilated.backbone_weights: .*missing.pth does not exist"):
        build_model("dilated", 3, 4, backbone="resnet50", backbone_weights=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(UserError, match=r"backbone_weights: .*wrong.pth is not a torchvision ResNet-50 state dict"):
        build_model("fcn", 3, 4, backbone="resnet50", backbone_weights=str(wrong))
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(UserError, match=r"junk.pth is not a readable torch state dict"):
        build_model("fcn", 3, 4, backbone="resnet50", backbone_weights=str(junk))


def test_resnet50_only_for_fcn_and_dilated():
    with pytest.raises(UserError, match=r"segmentation.models.unet.backbone: resnet50 exists for fcn, dilated only"):
        build_model("unet", 3, 4, backbone="resnet50")


def test_exported_resnet50_segmenter_reloads_without_the_weights_file(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    net = build_model("fcn", 1, 3, backbone="resnet50", backbone_weights=str(path)).eval()
    path.unlink()  # the exported state dict carries the weights
    export = {"model": "fcn", "in_channels": 1, "class_names": ["a", "b", "c"],
              "arch": {"base_channels": 16, "backbone": "resnet50", "backbone_weights": str(path)},
              "state_dict": net.state_dict()}
    images = torch.rand(1, 1, 32, 32)
    assert torch.equal(load_exported(export)(images), net(images))


def test_backbone_weights_without_resnet50_is_refused(tiny_params):
    from components.config import parse_params

    tiny_params["segmentation"]["models"]["fcn"]["backbone_weights"] = "resnet50.pth"
    with pytest.raises(UserError, match=r"segmentation.models.fcn.*backbone_weights needs backbone: resnet50"):
        parse_params(tiny_params)
    tiny_params["segmentation"]["models"]["fcn"]["backbone"] = "resnet50"
    parse_params(tiny_params)  # with the ResNet-50 it is the weights' path (checked when the model is built)
