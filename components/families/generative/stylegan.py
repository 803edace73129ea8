"""A style-based generator (Karras et al., 2019), sized to the family's backbone.

- Mapping network: z -> PixelNorm -> ``mapping_layers`` equalised dense layers (learning rate x
  ``mapping_lr_mul``, the paper's 0.01) -> w, the same width as z.
- Synthesis network: a learned constant at S / 2**stages, then per resolution two style layers
  (3x3 conv, the first after a 2x nearest upsampling from the second resolution on; per-layer noise
  scaled per channel; LeakyReLU; AdaIN: instance normalisation, then a per-channel scale and bias
  from an affine map of that layer's w); a 1x1 conv to image logits.
- Style mixing: while training, with probability ``mixing_prob`` a batch's generator draws a second
  code and a crossover layer; the layers from it on take the second code's w.
- Noise: fresh N(0, 1) images in training; in eval mode each layer reads a fixed noise image drawn
  at construction (a buffer: saved and exported), so the samples are a function of the code.
- Discriminator: ProGAN's at the top level (equalised learning rate, minibatch standard deviation).
  ``loss``: ``non_saturating`` with the R1 penalty gamma / 2 E||grad D(x_real)||^2, evaluated every
  ``r1_every`` steps with its weight scaled to match (StyleGAN2's lazy regularisation; the paper's
  FFHQ setting), or ``wgan_gp`` (the paper's CelebA-HQ setting: ProGAN's WGAN-GP and drift).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.families.generative.config import StyleGANConfig
from components.families.generative.figures import image_grid
from components.families.generative.gan import GANTask
from components.families.generative.models import _start_size
from components.families.generative.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    PixelNorm,
    ProDiscriminator,
    wgan_gp_penalties,
)

MIXING_SIDE = 6  # the style-mixing figure: 6 coarse-style rows x 6 fine-style columns


class AdaIN(nn.Module):
    """Adaptive instance normalisation: each channel of each sample normalised to mean 0 and standard
    deviation 1 over its pixels, then given the style's scale and bias (an affine map of w; the scale
    starts at 1)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        scale, bias = self.style(w)[:, :, None, None].chunk(2, dim=1)
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-8).sqrt()
        return scale * (x - mean) / std + bias


class StyleLayer(nn.Module):
    """[2x upsample] -> [3x3 conv] -> + per-channel-scaled noise -> LeakyReLU -> AdaIN(w)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, side: int, conv: bool, upsample: bool,
                 leak: float) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, padding=1) if conv else None
        self.noise_scale = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("fixed_noise", torch.randn(1, 1, side, side))
        self.act = nn.LeakyReLU(leak)
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        noise = torch.randn_like(x[:, :1]) if self.training else self.fixed_noise.to(x.dtype)
        return self.adain(self.act(x + self.noise_scale[None, :, None, None] * noise), w)


class StyleGenerator(nn.Module):
    """Code (N, latent_dim) -> image logits (N, C, S, S); ``forward(codes, mix_codes, crossover)`` gives
    the layers from ``crossover`` on the w of ``mix_codes``."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, channels: int, stages: int,
                 leak: float, mapping_layers: int, mapping_lr_mul: float) -> None:
        super().__init__()
        start = _start_size(image_size, stages)
        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(mapping_layers):
            layers += [EqualizedLinear(latent_dim, latent_dim, lr_mul=mapping_lr_mul), nn.LeakyReLU(leak)]
        self.mapping = nn.Sequential(*layers)
        width = [channels * 2 ** (stages - level) for level in range(stages + 1)]  # wide at low resolution
        self.constant = nn.Parameter(torch.ones(1, width[0], start, start))
        self.layers = nn.ModuleList([StyleLayer(width[0], width[0], latent_dim, start, conv=False, upsample=False,
                                                leak=leak),
                                     StyleLayer(width[0], width[0], latent_dim, start, conv=True, upsample=False,
                                                leak=leak)])
        for level in range(1, stages + 1):
            side = start * 2**level
            self.layers.append(StyleLayer(width[level - 1], width[level], latent_dim, side, True, True, leak))
            self.layers.append(StyleLayer(width[level], width[level], latent_dim, side, True, False, leak))
        self.to_rgb = EqualizedConv2d(width[-1], out_channels, 1, gain=1.0)

    @property
    def num_styles(self) -> int:
        """Style inputs: two per resolution (0 and 1 at the lowest)."""
        return len(self.layers)

    def synthesis(self, styles: list[Tensor]) -> Tensor:
        """One w (N, latent_dim) per layer -> image logits."""
        x = self.constant.expand(styles[0].shape[0], -1, -1, -1)  # shape, not len(): a dynamic batch in torch.export
        for layer, w in zip(self.layers, styles, strict=True):
            x = layer(x, w)
        return self.to_rgb(x)

    def forward(self, codes: Tensor, mix_codes: Tensor | None = None, crossover: int | None = None) -> Tensor:
        w = self.mapping(codes)
        styles = [w] * self.num_styles
        if mix_codes is not None:
            w_mix = self.mapping(mix_codes)
            styles = [w if i < crossover else w_mix for i in range(self.num_styles)]
        return self.synthesis(styles)


class StyleGANTask(GANTask):
    """The GAN step (non-saturating loss, EMA of G) with style mixing in G's batches and lazy R1 in D's."""

    config: StyleGANConfig

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        b, meta, c = self.section.backbone, self.meta, self.config
        return (StyleGenerator(b.latent_dim, meta.channels, meta.height, c.channels, b.stages, b.leak,
                               c.mapping_layers, c.mapping_lr_mul),
                ProDiscriminator(meta.channels, meta.height, c.channels, b.stages, b.leak, c.mbstd_group))

    def _build(self, device: torch.device, wrap: Any, steps_per_epoch: int) -> None:
        super()._build(device, wrap, steps_per_epoch)
        self._last_r1 = torch.zeros((), device=device)
        self._mixing = torch.Generator().manual_seed(self.seed + 2)  # mixing draws: reproducible, apart from torch's

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor | None) -> Tensor:
        """In training, style mixing with probability ``mixing_prob``: a second code from layer
        ``crossover`` on, drawn uniformly from 1 .. num_styles - 1."""
        if net.training and float(torch.rand((), generator=self._mixing)) < self.config.mixing_prob:
            layers = 2 * (self.section.backbone.stages + 1)  # the generator's num_styles
            crossover = int(torch.randint(1, layers, (), generator=self._mixing))
            return torch.sigmoid(net(codes, torch.randn_like(codes), crossover))
        return torch.sigmoid(net(codes))

    def _loss_name(self) -> str:
        return "wasserstein" if self.config.loss == "wgan_gp" else "nonsaturating"

    def _penalties(self, critic: nn.Module, real: Tensor, fake: Tensor, real_scores: Tensor
                   ) -> dict[str, tuple[float, Tensor]]:
        """``wgan_gp``: ProGAN's gradient penalty and drift. ``non_saturating``: R1 = E||grad_x D(x)||^2 on
        the real batch (float32), weighted gamma / 2 x r1_every on the steps it is computed; on the
        others the last value is logged with weight 0."""
        if self.config.loss == "wgan_gp":
            return wgan_gp_penalties(critic, real, fake, real_scores, self.config.gp_weight, self.config.drift)
        if self.d_steps % self.config.r1_every:
            return {"r1": (0.0, self._last_r1)}
        images = real.float().requires_grad_(True)
        (grads,) = torch.autograd.grad(critic(images).sum(), images, create_graph=True)
        r1 = grads.flatten(1).pow(2).sum(1).mean()
        self._last_r1 = r1.detach()
        return {"r1": (self.config.r1_gamma / 2 * self.config.r1_every, r1)}

    def figures(self, batch: Any) -> Mapping[str, Any]:
        """Adds ``style_mixing``: coarse styles (the lowest resolution's layers) from the row's code,
        the rest from the column's."""
        net = self._sampling_net()
        codes = self.figure_codes[: 2 * MIXING_SIDE].to(self.device)
        rows, columns = codes[:MIXING_SIDE], codes[MIXING_SIDE:]
        was_training = net.training
        net.eval()
        with torch.no_grad():
            mixed = torch.sigmoid(net(rows.repeat_interleave(MIXING_SIDE, 0), columns.repeat(MIXING_SIDE, 1), 2))
            row_images, column_images = torch.sigmoid(net(rows)), torch.sigmoid(net(columns))
        net.train(was_training)
        blank = torch.full_like(row_images[:1], 0.5)
        mixed_rows = mixed.split(MIXING_SIDE)
        tiles = [blank, column_images] + [t for i in range(MIXING_SIDE) for t in (row_images[i : i + 1], mixed_rows[i])]
        grid = image_grid(torch.cat(tiles).cpu(), MIXING_SIDE + 1,
                          "style mixing: coarse styles from the left column, fine from the top row")
        return {**super().figures(batch), "style_mixing": grid}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mixing_rng": self._mixing.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._mixing.set_state(state["mixing_rng"])

    def export(self) -> dict[str, Any]:
        c = self.config
        return {**super().export(), "kind": "stylegan", "width": c.channels, "mapping_layers": c.mapping_layers,
                "mapping_lr_mul": c.mapping_lr_mul}

