"""The class-conditional SAGAN (Zhang et al., 2019) with BigGAN's truncation trick (Brock et al., 2019),
on the backbone's widths and stages.

- :class:`ConditionalBatchNorm2d`: batch normalisation without its own affine, then a gain and a bias
  per class (``nn.Embedding`` rows; gains start at 1, biases at 0). The class reaches the generator
  through these layers only: its code is the latent z alone.
- :class:`ConditionalGenerator`: z -> linear -> (C * 2**stages, S / 2**stages, S / 2**stages) map, then
  per stage CBN -> ReLU -> ConvTranspose 4x4 stride 2 (halving the width), then CBN -> ReLU -> 3x3
  conv to image logits (``torch.sigmoid`` outside, as every GAN's ``_decode``); spectral normalisation
  on every conv and linear layer when ``g_spectral_norm`` (SAGAN's).
- :class:`SelfAttention2d`: the paper's block, f, g (C/8 channels) and h (C/2) 1x1 convs, attention
  weights softmax_i(f(x_i)^T g(x_j)) over positions i, o_j = v(sum_i beta_ji h(x_i)) through a 1x1 conv
  v back to C channels, output x + gamma * o with gamma starting at 0 (the block starts as the identity).
  It sits in G and in D at the side ``attention_resolution`` (``family.check_sizes`` allows the sides the
  networks pass through).
- :class:`ProjectionDiscriminator`: the family's projection discriminator (score = head(phi(x)) +
  <embed(y), phi(x)>) with spectral normalisation on every layer and the attention block in its trunk.
- Loss: hinge; the two learning rates and Adam betas from params.yaml (the defaults reverse the papers' lr_d > lr_g:
  the README says why).
- Truncation: :func:`truncated_noise` draws z from N(0, I) restricted to [-t, t] (``trunc_normal_``,
  which redraws the values outside: BigGAN's resampling). Each evaluation scores samples at each
  threshold of ``truncation`` (the untruncated samples are the main metrics); the ``truncation``
  figure shows the same base noise at every threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import _SpectralNorm
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from components.families.generative.base import GRID_SIDE, class_variance
from components.families.generative.config import SAGANConfig
from components.families.generative.family import resolutions
from components.families.generative.figures import truncation_figure
from components.families.generative.gan import GANTask
from components.families.generative.models import Discriminator, _start_size

TRUNCATION_FIGURE_NOISES = 3  # rows per threshold in the truncation figure: base noises, each across every class


def threshold_key(threshold: float) -> str:
    """The metric-name part of a truncation threshold: ``t2``, ``t1``, ``t0.5``, ``t0.04``."""
    return f"t{threshold:g}"


def truncated_noise(n: int, dim: int, threshold: float, generator: torch.Generator | None = None) -> Tensor:
    """(n, dim) draws of N(0, 1) restricted to [-threshold, threshold] (BigGAN's truncation trick):
    ``torch.nn.init.trunc_normal_`` redraws values outside, so none has ``|z| > threshold``."""
    return torch.nn.init.trunc_normal_(torch.empty(n, dim), 0.0, 1.0, -threshold, threshold, generator=generator)


def _identity(layer: nn.Module) -> nn.Module:
    return layer


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d without its own affine, then the class's gain and bias: x (N, C, H, W), y (N,) ->
    BN(x) * gain[y] + bias[y], per channel."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention block: (N, C, H, W) -> (N, C, H, W), ``x + gamma * o`` (gamma starts at 0)."""

    def __init__(self, channels: int, spectral_norm: bool = False) -> None:
        super().__init__()
        norm = _spectral_norm if spectral_norm else _identity
        keys, values = max(1, channels // 8), max(1, channels // 2)
        self.f = norm(nn.Conv2d(channels, keys, 1, bias=False))  # queries of the positions attended to (i)
        self.g = norm(nn.Conv2d(channels, keys, 1, bias=False))  # of the positions attending (j)
        self.h = norm(nn.Conv2d(channels, values, 1, bias=False))
        self.v = norm(nn.Conv2d(values, channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: Tensor) -> Tensor:
        """beta (N, P, P), P = H * W positions: beta[:, i, j] is the weight position j gives position i
        (each column sums to 1)."""
        scores = self.f(x).flatten(2).transpose(1, 2) @ self.g(x).flatten(2)  # s_ij = f(x_i)^T g(x_j)
        return scores.softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        o = (self.h(x).flatten(2) @ self.attention(x)).view(x.shape[0], -1, *x.shape[2:])  # o_j = sum_i b_ji h_i
        return x + self.gamma * self.v(o)


class ConditionalGenerator(nn.Module):
    """Latent z (N, latent_dim) and labels (N,) -> image logits (N, out_channels, S, S); the class enters
    through the conditional batch norms only. ``channels`` is the width at the output resolution, doubled
    per stage inward (the backbone's ``g_channels``)."""

    def __init__(self, latent_dim: int, num_classes: int, out_channels: int, image_size: int, channels: int,
                 stages: int, attention_side: int | None = None, spectral_norm: bool = False) -> None:
        super().__init__()
        norm = _spectral_norm if spectral_norm else _identity
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.start = _start_size(image_size, stages)
        self.start_channels = channels * 2**stages
        self.project = norm(nn.Linear(latent_dim, self.start_channels * self.start**2))
        self.norms, self.ups = nn.ModuleList(), nn.ModuleList()
        for stage in reversed(range(stages)):
            wide, narrow = channels * 2 ** (stage + 1), channels * 2**stage
            self.norms.append(ConditionalBatchNorm2d(wide, num_classes))
            self.ups.append(norm(nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False)))
        self.out_norm = ConditionalBatchNorm2d(channels, num_classes)
        self.to_image = norm(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.attention_side, self.attention = attention_side, None
        if attention_side is not None:
            if attention_side not in resolutions(image_size, stages):
                raise ValueError(f"attention side {attention_side} is none of {resolutions(image_size, stages)}")
            self.attention = SelfAttention2d(channels * (image_size // attention_side), spectral_norm)

    def _attend(self, x: Tensor) -> Tensor:
        return self.attention(x) if self.attention is not None and x.shape[-1] == self.attention_side else x

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        x = self._attend(self.project(z).view(-1, self.start_channels, self.start, self.start))
        for cbn, up in zip(self.norms, self.ups, strict=True):
            x = self._attend(up(F.relu(cbn(x, labels))))
        return self.to_image(F.relu(self.out_norm(x, labels)))


class ProjectionDiscriminator(Discriminator):
    """The family's projection discriminator (:class:`Discriminator`, ``num_classes > 0``) with spectral
    normalisation on every layer and, at side ``attention_side``, a self-attention block in its trunk
    (after the activation of the layer that produces that side)."""

    def __init__(self, in_channels: int, image_size: int, channels: int, stages: int, leak: float,
                 num_classes: int, attention_side: int | None = None) -> None:
        super().__init__(in_channels, image_size, channels, stages, leak, spectral_norm=True, num_classes=num_classes)
        if attention_side is not None:
            sides = [image_size // 2**k for k in range(stages + 1)]  # after the 3x3 conv, then each halving
            if attention_side not in sides:
                raise ValueError(f"attention side {attention_side} is none of {sides}")
            k = sides.index(attention_side)
            layers = list(self.trunk.layers)
            layers.insert(2 + 2 * k, SelfAttention2d(channels * 2**k, spectral_norm=True))
            self.trunk.layers = nn.Sequential(*layers)


def init_sagan_weights(module: nn.Module, std: float) -> None:
    """DCGAN's N(0, std) for conv, linear and embedding weights, biases 0 (spectral normalisation
    rescales the weights it wraps); the conditional batch norms keep gain 1, bias 0."""
    keep = {id(table) for layer in module.modules() if isinstance(layer, ConditionalBatchNorm2d)
            for table in (layer.gain, layer.bias)}
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding) and id(layer) not in keep:
            weight = layer.parametrizations.weight.original if hasattr(layer, "parametrizations") else layer.weight
            nn.init.normal_(weight, 0.0, std)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)


@torch.no_grad()
def refresh_spectral_norms(module: nn.Module, iterations: int = 1) -> None:
    """Power iterations on each spectrally normalised weight of ``module`` from its stored singular
    vectors (torch's own ``_power_method``). An EMA of a spectrally normalised G averages those vectors
    with the weights (they are buffers), which shrinks them below unit length and so the sigma they
    estimate: one iteration after each average makes them the averaged weight's again."""
    for layer in module.modules():
        parametrizations = getattr(layer, "parametrizations", None)
        if parametrizations is None or "weight" not in parametrizations:
            continue
        for parametrization in parametrizations.weight:
            if isinstance(parametrization, _SpectralNorm):
                weight = parametrization._reshape_weight_to_matrix(parametrizations.weight.original)
                parametrization._power_method(weight, iterations)


class SAGANTask(GANTask):
    """The class-conditional SAGAN: G and D above, hinge loss (``GAN_LOSS``), an EMA of G for sampling,
    the truncation metrics ``truncation/t<threshold>/{fid_evaluator,cond_accuracy,class_variance}`` at
    every evaluation and the ``truncation`` figure."""

    config: SAGANConfig

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        b, meta, c = self.section.backbone, self.meta, self.config
        generator = ConditionalGenerator(b.latent_dim, meta.num_classes, meta.channels, meta.height, b.g_channels,
                                         b.stages, c.attention_resolution, c.g_spectral_norm)
        critic = ProjectionDiscriminator(meta.channels, meta.height, b.d_channels, b.stages, b.leak, meta.num_classes,
                                         c.attention_resolution)
        init_sagan_weights(generator, b.init_std)
        init_sagan_weights(critic, b.init_std)
        return generator, critic

    def _build(self, device: torch.device, wrap: Any, steps_per_epoch: int) -> None:
        super()._build(device, wrap, steps_per_epoch)
        latent, total = self.section.backbone.latent_dim, self.section.fid.num_generated
        # One seed for every threshold: trunc_normal_ keeps the draws already inside [-t, t] (above t ~ 0.4).
        self.truncation_codes = {t: truncated_noise(total, latent, t, torch.Generator().manual_seed(self.seed + 2))
                                 for t in self.config.truncation}

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        out = super().train_step(batch)
        if self.ema is not None and self.config.g_spectral_norm:
            refresh_spectral_norms(self.ema.module)
        return out

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
        return torch.sigmoid(net(codes, labels))

    def _conditional_metrics(self, fakes: Tensor, labels: Tensor) -> dict[str, float]:
        return {**super()._conditional_metrics(fakes, labels),
                "class_variance": class_variance(fakes, labels, self.meta.num_classes)}

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """At each threshold, this rank's share of ``num_generated`` truncated codes with the main
        evaluation's balanced labels: FID on evaluator features, conditional accuracy, class variance."""
        out = dict(super()._evaluate_extra(batches))
        _, labels = self._evaluation_codes()
        mine = torch.arange(self.rank, self.section.fid.num_generated, self.world)
        for threshold, codes in self.truncation_codes.items():
            fakes = self.sample(codes[mine], labels)
            scores = {"fid_evaluator": self._score(self._evaluator_fid, fakes, inception_score=False)[0],
                      **self._conditional_metrics(fakes, labels)}
            out.update({f"truncation/{threshold_key(threshold)}/{name}": value for name, value in scores.items()})
        return out

    def figures(self, batch: Any) -> Mapping[str, Any]:
        figures = dict(super().figures(batch))
        if self.config.truncation:
            figures["truncation"] = self._truncation_figure()
        return figures

    def _truncation_figure(self) -> Any:
        """Rows: ``TRUNCATION_FIGURE_NOISES`` base noises untruncated, then at each threshold (the same
        generator seed); columns: classes 0..9, each row's noise shared by every class."""
        latent, noises = self.section.backbone.latent_dim, TRUNCATION_FIGURE_NOISES
        seed = self.seed + 3
        blocks = [("none", torch.empty(noises, latent).normal_(generator=torch.Generator().manual_seed(seed)))]
        blocks += [(f"t={t:g}", truncated_noise(noises, latent, t, torch.Generator().manual_seed(seed)))
                   for t in self.config.truncation]
        classes = torch.arange(min(GRID_SIDE, self.meta.num_classes))
        codes = torch.cat([code.expand(len(classes), -1) for _, block in blocks for code in block.split(1)])
        samples = self.sample(codes, classes.repeat(len(blocks) * noises)).cpu()
        return truncation_figure(samples, len(classes), [name for name, _ in blocks], noises)

    def export(self) -> dict[str, Any]:
        return {**super().export(), "kind": "sagan", "attention_resolution": self.config.attention_resolution,
                "g_spectral_norm": self.config.g_spectral_norm}
