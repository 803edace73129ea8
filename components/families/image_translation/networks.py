"""pix2pix's networks (Isola et al., 2017), used by both models of the family.

- :class:`UNetGenerator`: an encoder of 4x4 stride-2 convolutions (LeakyReLU 0.2, normalised but
  the first and the innermost), a decoder of 4x4 stride-2 transposed convolutions (ReLU,
  normalised, dropout on the three innermost), each decoder layer reading its encoder twin's map
  concatenated on (the skips carry the layout the label map fixes). Output: image logits;
  ``torch.sigmoid`` of them is the image in [0, 1].
- :class:`PatchDiscriminator`: the PatchGAN. ``layers`` 4x4 stride-2 convolutions, one stride-1
  convolution and a stride-1 convolution to one score per patch: a map of real/fake scores, each
  judging a :func:`receptive_field` x :func:`receptive_field` patch (``layers=3``: the paper's
  70x70). Conditional (pix2pix) when its input is the label map and the image concatenated.
- :class:`ImagePool`: CycleGAN's history of generated images the discriminators are shown.

Normalisation is instance norm throughout: CycleGAN's, and what pix2pix's batch norm at its batch
size of 1 computes. It keeps every sample's output independent of the rest of its batch, so one
forward of a concatenated batch (real and fake halves, two domains) equals separate forwards; there
are no running statistics, so train and eval mode differ only in dropout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

KERNEL = 4  # every pix2pix convolution is 4x4 (stride 2 halves the side with padding 1)


def _widths(channels: int, depth: int) -> list[int]:
    """The encoder's width at each level: doubling from ``channels`` up to 8x (C64-C128-C256-C512-C512...)."""
    return [channels * min(2**level, 8) for level in range(depth)]


class UNetGenerator(nn.Module):
    """Images (N, in_channels, S, S) in [0, 1] -> logits (N, out_channels, S, S); S divisible by 2**depth."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, depth: int, dropout: float) -> None:
        super().__init__()
        widths = _widths(channels, depth)
        self.depth = depth
        self.down = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            outer, inner = level == 0, level == depth - 1
            layers: list[nn.Module] = [] if outer else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, width, KERNEL, stride=2, padding=1, bias=outer or inner))
            if not (outer or inner):
                layers.append(nn.InstanceNorm2d(width))
            self.down.append(nn.Sequential(*layers))
            previous = width
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):  # innermost first: it reads the bottleneck alone
            inner, outer = level == depth - 1, level == 0
            source = widths[level] * (1 if inner else 2)
            target = out_channels if outer else widths[level - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(source, target, KERNEL, stride=2, padding=1, bias=outer)]
            if not outer:
                layers.append(nn.InstanceNorm2d(target))
                if dropout and level >= depth - 3:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] % 2**self.depth or images.shape[-2] % 2**self.depth:
            raise ValueError(f"image side {tuple(images.shape[-2:])} is not divisible by 2**depth = {2**self.depth}")
        skips, x = [], images * 2 - 1  # the paper's [-1, 1] inputs
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[0](skips.pop())
        for layer in self.up[1:]:
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return x


def receptive_field(layers: int) -> int:
    """The side of the input patch one PatchGAN score sees: back from the score through the
    stride-1 output conv, the stride-1 conv and ``layers`` stride-2 convs, r <- (r - 1) * stride + 4."""
    size = 1
    for stride in [1, 1] + [2] * layers:
        size = (size - 1) * stride + KERNEL
    return size


def patch_grid(side: int, layers: int) -> int:
    """The side of the score map for a ``side``-px input: each stride-2 conv halves it, each
    stride-1 4x4 conv (padding 1) takes one pixel off."""
    for _ in range(layers):
        side = (side + 2 - KERNEL) // 2 + 1
    return side - 2


class PatchDiscriminator(nn.Module):
    """Images (N, in_channels, S, S) in [0, 1] -> scores (N, 1, patch_grid(S), patch_grid(S))."""

    def __init__(self, in_channels: int, channels: int, layers: int) -> None:
        super().__init__()
        widths = [channels * min(2**level, 8) for level in range(layers + 1)]
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], KERNEL, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for level in range(1, layers + 1):
            stride = 2 if level < layers else 1
            blocks += [nn.Conv2d(widths[level - 1], widths[level], KERNEL, stride=stride, padding=1, bias=False),
                       nn.InstanceNorm2d(widths[level]), nn.LeakyReLU(0.2)]
        blocks.append(nn.Conv2d(widths[-1], 1, KERNEL, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)
        self.layers = layers

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images * 2 - 1)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix's initialisation: conv weights ~ N(0, 0.02), biases 0 (instance norm has no weights)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class ImagePool:
    """Shrivastava et al.'s history buffer, as CycleGAN uses it: once full, each generated image is,
    with probability 1/2, swapped for a stored one (which is returned, the new one kept in its place).
    ``size`` 0 returns the batch unchanged. Draws come from its own seeded generator (checkpointed)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": [image.cpu() for image in self.images], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [image.to(device) for image in state["images"]]
        self.generator.set_state(state["generator"])
