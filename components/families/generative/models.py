"""The generative family's networks: one DCGAN-style generator and discriminator for every GAN,
and a VAE whose decoder is that same generator and whose encoder is the discriminator's trunk.

Images are (N, C, S, S) floats in [0, 1], C = 1 (grey) or 3 (RGB), S divisible by ``2**stages``: the
generator starts and the discriminator ends at resolution ``S / 2**stages`` (4x4 for the 8x8 digits
with one stage, 7x7 for MNIST's 28 px with two, 4x4 for CIFAR-10 at 32 px with three and at 64 px
with four, DCGAN's arrangement; ``family.check_sizes`` refuses other sides in params).

- :class:`Generator` (Radford et al., 2016): project-and-reshape of the code to the start
  resolution, then ``stages`` x (ConvTranspose 4x4 stride 2 -> BatchNorm -> ReLU), then a 3x3
  convolution to image logits; ``torch.sigmoid`` of its output is the image.
- :class:`Discriminator`: 3x3 convolution, then ``stages`` x (Conv 4x4 stride 2 -> LeakyReLU),
  then a linear score. No normalisation layers: the gradient penalty is per-sample and spectral
  normalisation replaces them (``spectral_norm=True`` wraps every conv and linear layer).
  Class-conditional (cGAN) with a projection head; the conditional generator reads the one-hot
  label as extra code entries (as the CVAE's decoder does).
- :class:`VAE`: encoder (the discriminator trunk with a (mu, log sigma^2) head) and generator
  decoder; conditional when ``num_classes > 0`` (one-hot label as extra input channels of the
  encoder and as extra code entries of the decoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def _start_size(image_size: int, stages: int) -> int:
    start = image_size // 2**stages
    if start * 2**stages != image_size or start < 1:
        raise ValueError(f"image size {image_size} is not divisible by 2**stages = {2**stages}")
    return start


class Generator(nn.Module):
    """Code (N, code_dim) -> image logits (N, out_channels, image_size, image_size).

    ``channels`` is the width at the output resolution; each stage inward doubles it.
    """

    def __init__(self, code_dim: int, out_channels: int, image_size: int, channels: int, stages: int) -> None:
        super().__init__()
        self.start = _start_size(image_size, stages)
        self.start_channels = channels * 2**stages
        self.project = nn.Sequential(
            nn.Linear(code_dim, self.start_channels * self.start**2, bias=False),
            nn.BatchNorm1d(self.start_channels * self.start**2),
            nn.ReLU(inplace=True),
        )
        self.upsample = upsampling(channels, stages)
        self.to_image = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)

    def forward(self, code: Tensor) -> Tensor:
        x = self.project(code).view(-1, self.start_channels, self.start, self.start)
        return self.to_image(self.upsample(x))


def upsampling(channels: int, stages: int) -> nn.Sequential:
    """DCGAN's generator body: ``stages`` x (ConvTranspose 4x4 stride 2 -> BatchNorm -> ReLU), from
    ``channels * 2**stages`` channels to ``channels``, each doubling the side."""
    ups = []
    for stage in reversed(range(stages)):
        wide, narrow = channels * 2 ** (stage + 1), channels * 2**stage
        ups += [
            nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(narrow),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*ups)


class ConvTrunk(nn.Module):
    """Image (N, in_channels, S, S) in [0, 1] -> flat features (N, channels * 2**stages * (S / 2**stages)**2).

    3x3 conv to ``channels``, then ``stages`` strided 4x4 convs doubling the width, LeakyReLU after each.
    """

    def __init__(
        self, in_channels: int, image_size: int, channels: int, stages: int, leak: float, spectral_norm: bool
    ) -> None:
        super().__init__()
        norm = _spectral_norm if spectral_norm else (lambda layer: layer)
        layers = [norm(nn.Conv2d(in_channels, channels, 3, padding=1)), nn.LeakyReLU(leak, inplace=True)]
        for stage in range(stages):
            layers += [
                norm(nn.Conv2d(channels * 2**stage, channels * 2 ** (stage + 1), 4, stride=2, padding=1)),
                nn.LeakyReLU(leak, inplace=True),
            ]
        self.layers = nn.Sequential(*layers)
        self.out_channels, self.out_size = channels * 2**stages, _start_size(image_size, stages)
        self.num_features = self.out_channels * self.out_size**2

    def feature_map(self, images: Tensor) -> Tensor:
        """(N, channels * 2**stages, S / 2**stages, S / 2**stages): the features before flattening."""
        return self.layers(images * 2 - 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.feature_map(images).flatten(1)


class Discriminator(nn.Module):
    """Images (N, in_channels, S, S) in [0, 1] -> real-vs-fake scores (N,) (logits or critic values).

    With ``num_classes > 0`` it is a projection discriminator (Miyato & Koyama, 2018): the score of
    an image with label y adds <embed(y), features(x)> to the linear head, so D judges "a real y".
    """

    def __init__(
        self, in_channels: int, image_size: int, channels: int, stages: int, leak: float, spectral_norm: bool,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.trunk = ConvTrunk(in_channels, image_size, channels, stages, leak, spectral_norm)
        head = nn.Linear(self.trunk.num_features, 1)
        self.head = _spectral_norm(head) if spectral_norm else head
        self.embed = None
        if num_classes > 0:
            embed = nn.Embedding(num_classes, self.trunk.num_features)
            self.embed = _spectral_norm(embed) if spectral_norm else embed

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.trunk(images)
        scores = self.head(features).squeeze(1)
        if self.embed is not None:
            scores = scores + (self.embed(labels) * features).sum(1)
        return scores


class VAE(nn.Module):
    """Variational auto-encoder; conditional (CVAE) when ``num_classes > 0``.

    ``encode(x, y) -> (mu, logvar)``, each (N, latent_dim); ``decode(z, y)`` -> image logits
    (N, C, S, S); ``forward(x, y) -> (logits, mu, logvar)`` with one reparameterised sample
    z = mu + exp(logvar / 2) * eps. ``y`` is (N,) int64 class labels, ignored when unconditional.
    """

    def __init__(
        self, in_channels: int, image_size: int, latent_dim: int, num_classes: int,
        g_channels: int, d_channels: int, stages: int, leak: float,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.encoder = ConvTrunk(in_channels + num_classes, image_size, d_channels, stages, leak, spectral_norm=False)
        self.to_stats = nn.Linear(self.encoder.num_features, 2 * latent_dim)
        self.decoder = Generator(latent_dim + num_classes, in_channels, image_size, g_channels, stages)

    def _one_hot(self, labels: Tensor | None) -> Tensor | None:
        return None if self.num_classes == 0 else F.one_hot(labels, self.num_classes).float()

    def encode(self, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        one_hot = self._one_hot(labels)
        if one_hot is not None:  # label planes: (N, K) -> (N, K, S, S); [0, 1] like the image
            images = torch.cat([images, one_hot[:, :, None, None].expand(-1, -1, *images.shape[-2:])], dim=1)
        mu, logvar = self.to_stats(self.encoder(images)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        one_hot = self._one_hot(labels)
        return self.decoder(z if one_hot is None else torch.cat([z, one_hot], dim=1))

    def forward(self, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(images, labels)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z, labels), mu, logvar


class AutoEncoder(nn.Module):
    """The plain convolutional autoencoder, where the course's generative story starts: the VAE's
    encoder trunk to a deterministic code (N, code_dim), the shared generator as decoder, trained on
    L2 alone. It has no prior to sample from: :meth:`fit_codes` fits a Gaussian (full covariance) to
    the codes of a set of images, and :meth:`decode_noise` decodes mean + L eps for standard-normal
    eps (L the Cholesky factor); the fit lives in buffers, so an export samples like the run did."""

    def __init__(self, in_channels: int, image_size: int, code_dim: int, g_channels: int, d_channels: int,
                 stages: int, leak: float) -> None:
        super().__init__()
        self.encoder = ConvTrunk(in_channels, image_size, d_channels, stages, leak, spectral_norm=False)
        self.to_code = nn.Linear(self.encoder.num_features, code_dim)
        self.decoder = Generator(code_dim, in_channels, image_size, g_channels, stages)
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_chol", torch.eye(code_dim))

    def encode(self, images: Tensor) -> Tensor:
        return self.to_code(self.encoder(images))

    def forward(self, images: Tensor) -> Tensor:
        """Reconstruction logits (N, C, S, S); ``torch.sigmoid`` of them is the image."""
        return self.decoder(self.encode(images))

    @torch.no_grad()
    def fit_codes(self, images: Tensor, batch_size: int = 512) -> None:
        """The Gaussian :meth:`decode_noise` samples from: mean and covariance of the codes of ``images``
        (eval mode; a 1e-5 ridge keeps the covariance positive definite)."""
        was_training = self.training
        self.eval()
        codes = torch.cat([self.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]).double()
        centred = codes - codes.mean(0)
        covariance = centred.T @ centred / max(len(codes) - 1, 1)
        covariance += 1e-5 * torch.eye(len(covariance), dtype=covariance.dtype, device=covariance.device)
        self.code_mean.copy_(codes.mean(0).float())
        self.code_chol.copy_(torch.linalg.cholesky(covariance).float())
        self.train(was_training)

    def decode_noise(self, noise: Tensor) -> Tensor:
        """Image logits of the codes mean + L noise: noise (N, code_dim) standard normal."""
        return self.decoder(self.code_mean + noise @ self.code_chol.T)


def init_dcgan_weights(module: nn.Module, std: float) -> None:
    """DCGAN's initialisation: conv/linear weights ~ N(0, std), BatchNorm scale ~ N(1, std), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            weight = layer.parametrizations.weight.original if hasattr(layer, "parametrizations") else layer.weight
            nn.init.normal_(weight, 0.0, std)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
