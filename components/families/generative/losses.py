"""The course's GAN objectives, the WGAN-GP gradient penalty and the VAE's ELBO terms (KL and a
Bernoulli or fixed-variance Gaussian reconstruction likelihood).

Discriminator outputs are raw scores (N,): logits for the non-saturating loss, critic values for
the Wasserstein losses, unbounded scores for least squares and hinge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class GanLoss:
    """A GAN objective: ``discriminator(real_scores, fake_scores)`` and ``generator(fake_scores)``,
    scores (N,) -> 0-dim losses to minimise."""

    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]


# Goodfellow et al., non-saturating: D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z)).
# softplus(-s) = -log sigmoid(s), softplus(s) = -log(1 - sigmoid(s)).
NONSATURATING = GanLoss(
    discriminator=lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
    generator=lambda fake: F.softplus(-fake).mean(),
)
# Goodfellow et al.'s minimax as written: G minimises log(1 - D(G(z))) = -softplus(s). Its gradient
# vanishes when D rejects the fakes (components/families/generative/saturation.py shows it).
SATURATING = GanLoss(
    discriminator=NONSATURATING.discriminator,
    generator=lambda fake: -F.softplus(fake).mean(),
)
# Arjovsky et al.: the critic maximises E f(x) - E f(G(z)); G maximises E f(G(z)).
WASSERSTEIN = GanLoss(
    discriminator=lambda real, fake: fake.mean() - real.mean(),
    generator=lambda fake: -fake.mean(),
)
# Mao et al. (a=0, b=c=1): D regresses real scores to 1 and fake ones to 0; G pushes fake ones to 1.
LEAST_SQUARES = GanLoss(
    discriminator=lambda real, fake: 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean(),
    generator=lambda fake: 0.5 * ((fake - 1) ** 2).mean(),
)
# Lim & Ye; Miyato et al.: D minimises E relu(1 - D(x)) + E relu(1 + D(G(z))); G maximises E D(G(z)).
HINGE = GanLoss(
    discriminator=lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
    generator=lambda fake: -fake.mean(),
)

LOSSES: dict[str, GanLoss] = {
    "nonsaturating": NONSATURATING,
    "saturating": SATURATING,
    "wasserstein": WASSERSTEIN,
    "least_squares": LEAST_SQUARES,
    "hinge": HINGE,
}


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Gulrajani et al.: E[(||grad_x f(x_hat)||_2 - 1)^2] on x_hat = eps * real + (1 - eps) * fake.

    ``real`` and ``fake`` are (N, ...) batches; eps ~ U[0, 1] per sample. The result is a 0-dim tensor
    that keeps its graph (``create_graph=True``) so that its gradient reaches the critic's weights.
    Call it on the unwrapped critic: DDP does not support ``torch.autograd.grad`` through its forward.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(interpolates)
    (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, summed over latent dims: (N, D) -> (N,).

    Closed form: 0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


def bernoulli_reconstruction(logits: Tensor, images: Tensor) -> Tensor:
    """-log p(x | z) under independent Bernoulli pixels (continuous relaxation for grey levels in
    [0, 1]), summed over pixels: logits and images (N, C, H, W) -> (N,) in nats."""
    return F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(dim=1)


def gaussian_reconstruction(logits: Tensor, images: Tensor, sigma: float) -> Tensor:
    """-log p(x | z) under independent Gaussian pixels N(sigmoid(logits), sigma^2), summed over pixels:
    logits and images (N, C, H, W) -> (N,) in nats (the normalising constant included)."""
    squared = (torch.sigmoid(logits) - images).flatten(1).pow(2)
    return squared.sum(dim=1) / (2 * sigma**2) + squared.shape[1] * math.log(sigma * math.sqrt(2 * math.pi))


RECONSTRUCTIONS: dict[str, Callable[..., Tensor]] = {
    "bernoulli": lambda logits, images, sigma: bernoulli_reconstruction(logits, images),
    "gaussian": gaussian_reconstruction,
}
