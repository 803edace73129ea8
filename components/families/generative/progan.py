"""Progressive growing of GANs (Karras et al., 2018), sized to the family's backbone.

Training starts at the backbone's lowest resolution (S / 2**stages: 4x4 for the 8x8 digits) and
adds one resolution doubling per level; each new level fades in: the generator's output is
``lerp(upsample(to_rgb[l-1](h_{l-1})), to_rgb[l](h_l), alpha)`` and the discriminator reads
``lerp(from_rgb[l-1](avgpool(x)), block_l(from_rgb[l](x)), alpha)`` while alpha grows 0 -> 1, so at
alpha 0 both networks are exactly the lower level's and at alpha 1 exactly the new level's. Below the
full resolution the generator's images are upsampled (nearest) to S and the discriminator pools its
input down, so samples are always S x S for scoring. The paper's other parts: equalised learning
rate (weights ~ N(0, 1) scaled by He's constant at every forward), pixelwise feature normalisation
in G, a minibatch standard deviation channel before D's last convolution, and the WGAN-GP loss with a
small drift term eps * E[D(x)^2] on real scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.errors import UserError
from components.families.generative.config import ProGANConfig
from components.families.generative.figures import image_grid
from components.families.generative.gan import GANTask
from components.families.generative.losses import gradient_penalty
from components.families.generative.models import _start_size
from components.train.task import unwrap

RESOLUTION_SAMPLES = 10  # columns of the per-resolution figure


class EqualizedConv2d(nn.Module):
    """Conv2d whose weights are stored ~ N(0, 1) and scaled by gain / sqrt(fan_in) at every forward, so
    Adam's per-parameter step sizes act alike on every layer (the paper's equalised learning rate)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale, self.padding = gain / math.sqrt(in_channels * kernel_size**2), padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """Linear layer with the equalised learning rate; ``lr_mul`` scales its effective learning rate
    (StyleGAN's mapping network uses 0.01): weights are stored divided by it and multiplied back."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2), lr_mul: float = 1.0,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
        self.scale, self.lr_mul = gain / math.sqrt(in_features) * lr_mul, lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit root-mean-square (over channels)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: Tensor, group_size: int) -> Tensor:
    """Append one channel: the standard deviation of each feature over a group of samples, averaged
    over features and pixels, the same value for every member of the group. Groups are the largest
    divisor of the batch up to ``group_size`` (a last short batch gets smaller groups)."""
    n, _, height, width = x.shape
    group = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    grouped = x.view(group, n // group, *x.shape[1:])  # member g of group m is sample g * (n / group) + m
    std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n / group,)
    feature = std.view(1, -1, 1, 1, 1).expand(group, -1, 1, height, width).reshape(n, 1, height, width)
    return torch.cat([x, feature], dim=1)


def _width(channels: int, stages: int, level: int) -> int:
    """Channels at a level: ``channels`` at the full resolution, doubled per level below it."""
    return channels * 2 ** (stages - level)


class ProGenerator(nn.Module):
    """Code (N, latent_dim) -> image logits (N, C, S, S) at the current ``level`` (0: S / 2**stages,
    ``stages``: S) with the fade-in weight ``alpha`` (a buffer: saved with the weights)."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, channels: int, stages: int,
                 leak: float) -> None:
        super().__init__()
        self.start, self.stages = _start_size(image_size, stages), stages
        self.start_channels = _width(channels, stages, 0)
        self.input = nn.Sequential(  # normalise z, dense to the start map (the paper's 4x4 "conv")
            PixelNorm(), EqualizedLinear(latent_dim, self.start_channels * self.start**2, gain=math.sqrt(2) / 4))
        self.input_conv = nn.Sequential(nn.LeakyReLU(leak), PixelNorm(),
                                        EqualizedConv2d(self.start_channels, self.start_channels, 3, padding=1),
                                        nn.LeakyReLU(leak), PixelNorm())
        self.blocks = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(_width(channels, stages, level - 1), _width(channels, stages, level), 3, 1),
                          nn.LeakyReLU(leak), PixelNorm(),
                          EqualizedConv2d(_width(channels, stages, level), _width(channels, stages, level), 3, 1),
                          nn.LeakyReLU(leak), PixelNorm())
            for level in range(1, stages + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(_width(channels, stages, level), out_channels, 1, gain=1.0)
                                    for level in range(stages + 1))
        self.level = stages
        self.register_buffer("alpha", torch.tensor(1.0))

    def forward(self, codes: Tensor, level: int | None = None) -> Tensor:
        level = self.level if level is None else level
        h = self.input_conv(self.input(codes).view(-1, self.start_channels, self.start, self.start))
        previous = h
        for block in self.blocks[:level]:
            previous, h = h, block(F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.to_rgb[level](h)
        if level > 0:  # fade-in: torch.lerp is exact at both ends
            low = F.interpolate(self.to_rgb[level - 1](previous), scale_factor=2, mode="nearest")
            out = torch.lerp(low, out, self.alpha.to(out.dtype))
        factor = 2 ** (self.stages - level)
        return F.interpolate(out, scale_factor=factor, mode="nearest") if factor > 1 else out


class ProDiscriminator(nn.Module):
    """Images (N, C, S, S) in [0, 1] -> critic scores (N,), reading them at the current ``level``."""

    def __init__(self, in_channels: int, image_size: int, channels: int, stages: int, leak: float,
                 group_size: int) -> None:
        super().__init__()
        self.stages, self.group_size = stages, group_size
        start, base = _start_size(image_size, stages), _width(channels, stages, 0)
        self.from_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(in_channels, _width(channels, stages, level), 1), nn.LeakyReLU(leak))
            for level in range(stages + 1))
        self.blocks = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(_width(channels, stages, level), _width(channels, stages, level), 3, 1),
                          nn.LeakyReLU(leak),
                          EqualizedConv2d(_width(channels, stages, level), _width(channels, stages, level - 1), 3, 1),
                          nn.LeakyReLU(leak), nn.AvgPool2d(2))
            for level in range(1, stages + 1))
        self.final = nn.Sequential(EqualizedConv2d(base + 1, base, 3, padding=1), nn.LeakyReLU(leak), nn.Flatten(),
                                   EqualizedLinear(base * start**2, base), nn.LeakyReLU(leak),
                                   EqualizedLinear(base, 1, gain=1.0))
        self.level = stages
        self.register_buffer("alpha", torch.tensor(1.0))

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        level, x = self.level, images * 2 - 1
        factor = 2 ** (self.stages - level)
        x = F.avg_pool2d(x, factor) if factor > 1 else x
        h = self.from_rgb[level](x)
        if level > 0:
            h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), self.blocks[level - 1](h),
                           self.alpha.to(h.dtype))
            for block in reversed(self.blocks[: level - 1]):
                h = block(h)
        return self.final(minibatch_stddev(h, self.group_size)).squeeze(1)


def growth(epoch: float, stages: int, level_epochs: int, fade_epochs: int) -> tuple[int, float]:
    """(level, alpha) after ``epoch`` epochs: ``level_epochs`` at each resolution below the top, then
    ``fade_epochs`` fading the next one in (alpha 0 -> 1); the top resolution (``stages``) from then on."""
    level = 0
    while level < stages and epoch >= (level + 1) * level_epochs + level * fade_epochs:
        level += 1
    if level == 0:
        return 0, 1.0
    begin = level * level_epochs + (level - 1) * fade_epochs
    return level, 1.0 if fade_epochs == 0 else min(1.0, (epoch - begin) / fade_epochs)


def wgan_gp_penalties(critic: nn.Module, real: Tensor, fake: Tensor, real_scores: Tensor, gp_weight: float,
                      drift: float) -> dict[str, tuple[float, Tensor]]:
    """ProGAN's terms of D's loss: WGAN-GP's gradient penalty (float32) and the drift eps * E[D(x)^2]."""
    return {"gradient_penalty": (gp_weight, gradient_penalty(critic, real, fake.float())),
            "drift": (drift, real_scores.float().pow(2).mean())}


class ProGANTask(GANTask):
    """A GAN step (WGAN-GP + drift, ``n_critic`` D steps per G step, EMA of G) at the level and
    fade-in weight the step count gives (:meth:`schedule`)."""

    config: ProGANConfig
    # Below the top level the higher blocks get no gradient: DDP must not wait for them.
    ddp_options = {"find_unused_parameters": True}

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        b, meta, width = self.section.backbone, self.meta, self.config.channels
        return (ProGenerator(b.latent_dim, meta.channels, meta.height, width, b.stages, b.leak),
                ProDiscriminator(meta.channels, meta.height, width, b.stages, b.leak, self.config.mbstd_group))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stages, c = self.section.backbone.stages, self.config
        growing = stages * (c.level_epochs + c.fade_epochs)
        if c.epochs <= growing:  # here, not in params validation: other models train with any stages
            raise UserError(f"generative.models.progan.epochs: {c.epochs} leaves no epoch at the top resolution "
                            f"after {stages} x (level_epochs {c.level_epochs} + fade_epochs {c.fade_epochs}) = "
                            f"{growing}; raise it above {growing} or lower those")

    def _build(self, device: torch.device, wrap: Any, steps_per_epoch: int) -> None:
        super()._build(device, wrap, steps_per_epoch)  # the untrained copy is at the top level, alpha 1
        self.steps_per_epoch = steps_per_epoch
        self._grow()

    def schedule(self, step: int) -> tuple[int, float]:
        """(level, alpha) at D step ``step`` (:func:`growth`)."""
        return growth(step / self.steps_per_epoch, self.section.backbone.stages, self.config.level_epochs,
                      self.config.fade_epochs)

    def _grow(self) -> None:
        level, alpha = self.schedule(self.d_steps)
        nets = [unwrap(self.modules["generator"]), unwrap(self.modules["discriminator"])]
        for net in nets + ([self.ema.module] if self.ema is not None else []):
            net.level = level
            net.alpha.fill_(alpha)

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        self._grow()
        return super().train_step(batch)

    def _penalties(self, critic: nn.Module, real: Tensor, fake: Tensor, real_scores: Tensor
                   ) -> dict[str, tuple[float, Tensor]]:
        return wgan_gp_penalties(critic, real, fake, real_scores, self.config.gp_weight, self.config.drift)

    def _sampling_net(self) -> nn.Module:
        self._grow()  # the EMA averages the alpha buffer too: give it the live one
        return super()._sampling_net()

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        net = self._sampling_net()
        return {"resolution": float(net.start * 2**net.level), "fade_alpha": float(net.alpha)}

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = self._sampling_net()
        codes = self.figure_codes[:RESOLUTION_SAMPLES].to(self.device)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            rows = [torch.sigmoid(net(codes, level=level)).cpu() for level in range(net.level + 1)]
        net.train(was_training)
        labels = [f"{net.start * 2**level}px" for level in range(net.level + 1)]
        grid = image_grid(torch.cat(rows), RESOLUTION_SAMPLES, "the same codes at each resolution grown so far", labels)
        return {**super().figures(batch), "resolutions": grid}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._grow()

    def export(self) -> dict[str, Any]:
        return {**super().export(), "kind": "progan", "level": self._sampling_net().level,
                "width": self.config.channels}
