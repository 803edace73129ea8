"""The course's semantic-segmentation networks, scaled for 64x64 scenes on 2 CPU cores.

Every model maps images (N, in_channels, H, W), float in [0, 1], to per-pixel class logits
(N, num_classes, H, W); H and W must be divisible by 16 (the deepest default stride is 16).

- :class:`FCN`: fully convolutional network with FCN-8s-style skip fusion (Long et al., 2015).
- :class:`UNet`: encoder-decoder with skip connections by concatenation (Ronneberger et al., 2015).
- :class:`SegNet`: encoder-decoder that upsamples with the encoder's max-pooling indices
  (Badrinarayanan et al., 2017; Noh et al.'s DeconvNet, 2015).
- :class:`DilatedNet`: small front-end plus the dilated context module (Yu & Koltun, 2016).

:func:`build_model` builds one of them by name; with ``backbone="resnet50"``, ``fcn`` and
``dilated`` are torchvision's paper-size FCN-ResNet50 and DeepLabV3-ResNet50 instead (resnet.py).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.errors import UserError
from components.families.segmentation.resnet import BUILDERS as RESNET50_BUILDERS
from components.families.segmentation.resnet import ResNet50Segmenter
from components.nn.blocks import conv_bn_relu, double_conv


def _bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """ConvTranspose2d weight (channels, channels, k, k) that performs per-channel bilinear upsampling."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(kernel_size, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = taps[:, None] * taps[None, :]
    return weight


class FCN(nn.Module):
    """FCN-8s-style network: a VGG-like encoder to stride 8, class scores fused across scales.

    The encoder pools three times (to 1/8) and applies two more convolutions there (FCN's "fc6/fc7").
    1x1 convolutions turn the 1/8 and the 1/4 features into class scores; the 1/8 scores are
    upsampled x2 by a learned ConvTranspose2d and added to the 1/4 scores, and the sum is upsampled
    x4 to the input size by a second ConvTranspose2d. Both start as bilinear interpolation, as in
    the paper.

    (N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W divisible by 8.
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 16) -> None:
        super().__init__()
        c = base_channels
        self.stage1 = nn.Sequential(double_conv(in_channels, c), nn.MaxPool2d(2))  # 1/2
        self.stage2 = nn.Sequential(double_conv(c, 2 * c), nn.MaxPool2d(2))  # 1/4
        self.stage3 = nn.Sequential(double_conv(2 * c, 4 * c), nn.MaxPool2d(2))  # 1/8
        self.head = double_conv(4 * c, 8 * c)  # 1/8
        self.score8 = nn.Conv2d(8 * c, num_classes, kernel_size=1)
        self.score4 = nn.Conv2d(2 * c, num_classes, kernel_size=1)
        self.up2 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=4, stride=2, padding=1, bias=False)
        self.up4 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=8, stride=4, padding=2, bias=False)
        with torch.no_grad():
            self.up2.weight.copy_(_bilinear_kernel(num_classes, 4))
            self.up4.weight.copy_(_bilinear_kernel(num_classes, 8))

    def forward(self, x: Tensor) -> Tensor:
        features4 = self.stage2(self.stage1(x))
        features8 = self.head(self.stage3(features4))
        scores4 = self.up2(self.score8(features8)) + self.score4(features4)
        return self.up4(scores4)


class UNet(nn.Module):
    """U-Net: ``depth`` encoder levels, a bottleneck, and a mirrored decoder.

    Level i has ``base_channels * 2**i`` channels; each decoder level upsamples x2 with a
    ConvTranspose2d, concatenates the encoder features of the same resolution, and applies a double
    convolution. A 1x1 convolution gives the class logits.

    (N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W divisible by 2**depth.
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 12, depth: int = 3) -> None:
        super().__init__()
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList(
            double_conv(in_channels if level == 0 else widths[level - 1], widths[level]) for level in range(depth)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[depth - 1], widths[depth])
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], kernel_size=2, stride=2)
            for level in reversed(range(depth))
        )
        self.decoders = nn.ModuleList(double_conv(2 * widths[level], widths[level]) for level in reversed(range(depth)))
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for upsample, decoder, skip in zip(self.upsamples, self.decoders, reversed(skips), strict=True):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.classifier(x)


class SegNet(nn.Module):
    """SegNet: ``depth`` encoder stages pooled with indices, a decoder that unpools with them.

    Encoder stage i is a double convolution to ``base_channels * 2**i`` channels followed by 2x2
    max-pooling that returns its argmax indices. Each decoder stage places its input at those
    indices with ``nn.MaxUnpool2d`` (zeros elsewhere) and densifies the sparse map with a double
    convolution back to the width of the stage below. There are no skip concatenations: only the
    indices cross from encoder to decoder. A 1x1 convolution gives the class logits.

    (N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W divisible by 2**depth.
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base_channels * 2**stage for stage in range(depth)]
        self.encoders = nn.ModuleList(
            double_conv(in_channels if stage == 0 else widths[stage - 1], widths[stage]) for stage in range(depth)
        )
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.decoders = nn.ModuleList(
            double_conv(widths[stage], widths[max(stage - 1, 0)], mid_channels=widths[stage])
            for stage in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        indices, sizes = [], []
        for encoder in self.encoders:
            x = encoder(x)
            sizes.append(x.shape[-2:])
            x, stage_indices = self.pool(x)
            indices.append(stage_indices)
        for decoder, stage_indices, size in zip(self.decoders, reversed(indices), reversed(sizes), strict=True):
            x = decoder(self.unpool(x, stage_indices, output_size=size))
        return self.classifier(x)


class DilatedNet(nn.Module):
    """Front-end plus Yu & Koltun's context module, bilinearly upsampled to the input size.

    The front-end is ``log2(downsample)`` double-convolution stages, each followed by 2x2
    max-pooling (stage i has ``base_channels * 2**i`` channels). The context module is seven 3x3
    convolutions of width ``context_channels`` with dilations 1, 1, 2, 4, 8, 16, 1 (its receptive
    field grows exponentially at a constant resolution) and a 1x1 convolution to class logits.

    (N, in_channels, H, W) -> (N, num_classes, H, W) logits; H, W divisible by ``downsample``.
    """

    DILATIONS = (1, 1, 2, 4, 8, 16, 1)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 16,
        downsample: int = 4,
        context_channels: int = 80,
    ) -> None:
        super().__init__()
        if downsample not in (2, 4):
            raise ValueError(f"DilatedNet downsample must be 2 or 4, got {downsample}")
        stages, width = [], in_channels
        for stage in range(downsample.bit_length() - 1):
            stages += [double_conv(width, base_channels * 2**stage), nn.MaxPool2d(2)]
            width = base_channels * 2**stage
        self.frontend = nn.Sequential(*stages)
        context = []
        for dilation in self.DILATIONS:
            context.append(conv_bn_relu(width, context_channels, dilation=dilation))
            width = context_channels
        self.context = nn.Sequential(*context, nn.Conv2d(context_channels, num_classes, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        scores = self.context(self.frontend(x))
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


MODELS: dict[str, type[nn.Module]] = {"fcn": FCN, "unet": UNet, "segnet": SegNet, "dilated": DilatedNet}
RESNET50_MODELS = tuple(RESNET50_BUILDERS)  # the models with a torchvision ResNet-50 variant


def build_model(
    name: str, in_channels: int, num_classes: int, *, backbone: str = "ours", backbone_weights: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build the segmentation model registered as ``name`` (a key of :data:`MODELS`).

    ``kwargs`` are the model's keyword arguments (``base_channels``, ``depth``, ...). An unknown name
    or argument raises :class:`UserError` naming it and the valid choices. ``backbone="resnet50"``
    builds torchvision's network for ``name`` (its size keys do not apply), loading
    ``backbone_weights`` (a local ResNet-50 state dict) when given.
    """
    if name not in MODELS:
        raise UserError(f"unknown segmentation model {name!r}: choose one of {', '.join(MODELS)}")
    if backbone == "resnet50":
        if name not in RESNET50_MODELS:
            choices = ", ".join(RESNET50_MODELS)
            raise UserError(f"segmentation.models.{name}.backbone: resnet50 exists for {choices} only")
        return ResNet50Segmenter(name, in_channels, num_classes, backbone_weights)
    model_class = MODELS[name]
    signature = inspect.signature(model_class)
    try:
        signature.bind(in_channels, num_classes, **kwargs)
    except TypeError as err:
        options = [p for p in signature.parameters if p not in ("in_channels", "num_classes")]
        raise UserError(f"segmentation model {name!r}: {err}; its options are {', '.join(options)}") from None
    return model_class(in_channels, num_classes, **kwargs)
