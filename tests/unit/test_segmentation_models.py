"""The segmentation networks: shapes, sizes, gradient flow, their defining layers, and that they learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from components.errors import UserError
from components.families.segmentation.models import MODELS, DilatedNet, SegNet, build_model

NAMES = sorted(MODELS)


def _parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("in_channels", "num_classes", "height", "width"), [(1, 11, 64, 64), (3, 21, 64, 64), (3, 21, 48, 80)]
)
def test_output_is_per_pixel_logits_at_input_size(
    name: str, in_channels: int, num_classes: int, height: int, width: int
) -> None:
    model = build_model(name, in_channels, num_classes)
    logits = model(torch.rand(2, in_channels, height, width))
    assert logits.shape == (2, num_classes, height, width)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_default_size_fits_two_cpu_cores(name: str) -> None:
    assert 200_000 <= _parameter_count(build_model(name, 1, 11)) <= 1_000_000


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_the_first_layer(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 1, 11)
    targets = torch.randint(11, (2, 64, 64))
    F.cross_entropy(model(torch.rand(2, 1, 64, 64)), targets).backward()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 1
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


def test_segnet_upsamples_with_the_encoder_pooling_indices() -> None:
    model = SegNet(1, 11, depth=3)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert pools and all(pool.return_indices for pool in pools)
    assert not any(isinstance(m, nn.ConvTranspose2d | nn.Upsample) for m in model.modules())

    calls = []
    for module in model.modules():
        if isinstance(module, nn.MaxUnpool2d):
            module.register_forward_hook(lambda _module, inputs, _output: calls.append(inputs))
    model(torch.rand(2, 1, 64, 64))
    assert len(calls) == 3  # one unpooling per encoder stage
    unpooled_input, indices = calls[0][0], calls[0][1]
    assert indices.dtype == torch.int64 and indices.shape == unpooled_input.shape


def test_dilated_net_context_module_has_the_course_dilations() -> None:
    model = DilatedNet(1, 11)
    convs = [m for m in model.context.modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation[0] for c in convs if c.kernel_size == (3, 3)] == [1, 1, 2, 4, 8, 16, 1]
    assert all(c.padding == c.dilation for c in convs if c.kernel_size == (3, 3))  # resolution kept
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 11


def test_dilated_net_rejects_an_unsupported_downsampling() -> None:
    with pytest.raises(ValueError, match="downsample"):
        DilatedNet(1, 11, downsample=8)
    assert DilatedNet(1, 11, downsample=2)(torch.rand(1, 1, 32, 32)).shape == (1, 11, 32, 32)


def test_build_model_names_unknown_models_and_options() -> None:
    with pytest.raises(UserError, match="deeplab.*fcn"):
        build_model("deeplab", 1, 11)
    with pytest.raises(UserError, match="depth"):
        build_model("fcn", 1, 11, depth=3)
    assert isinstance(build_model("unet", 1, 11, base_channels=8, depth=2), nn.Module)


def _synthetic_batch(num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Four 64x64 images of bright rectangles whose grey level encodes their class, and their masks."""
    images = 0.05 * torch.rand(4, 1, 64, 64, generator=generator)
    masks = torch.zeros(4, 64, 64, dtype=torch.long)
    for i in range(4):
        for _ in range(3):
            label = int(torch.randint(1, num_classes, (1,), generator=generator))
            top, left = torch.randint(0, 48, (2,), generator=generator).tolist()
            height, width = torch.randint(8, 17, (2,), generator=generator).tolist()
            masks[i, top : top + height, left : left + width] = label
            images[i, 0, top : top + height, left : left + width] = label / (num_classes - 1)
    return images, masks


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_batch(name: str) -> None:
    torch.manual_seed(0)
    images, masks = _synthetic_batch(num_classes=11, generator=torch.Generator().manual_seed(0))
    model = build_model(name, 1, 11)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < 0.5 * losses[0]:
            break
    assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in 60 steps"
