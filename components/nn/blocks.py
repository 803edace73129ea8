"""Convolution blocks shared by several model families."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1, stride: int = 1) -> nn.Sequential:
    """3x3 convolution -> BatchNorm -> ReLU.

    Padding equals the dilation, so (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    The convolution has no bias: the BatchNorm that follows would cancel it.
    """
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def double_conv(in_channels: int, out_channels: int, mid_channels: int | None = None) -> nn.Sequential:
    """Two :func:`conv_bn_relu` (the stage of VGG and U-Net): (N, in, H, W) -> (N, out, H, W).

    ``mid_channels`` (default ``out_channels``) is the width between the two convolutions.
    """
    mid_channels = out_channels if mid_channels is None else mid_channels
    return nn.Sequential(conv_bn_relu(in_channels, mid_channels), conv_bn_relu(mid_channels, out_channels))
