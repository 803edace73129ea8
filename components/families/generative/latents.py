"""What trained generators' latent spaces hold: GAN inversion and latent arithmetic (stage
``generative_latents``).

- Inversion: a generator G maps codes to images; for a real image x, optimise a code z (Adam from a
  seeded standard-normal start) to minimise ||G(z) - x||^2 (summed over pixels, every image of a
  batch at once), as Zhu et al. (2016) and the course's "GAN inversion". A conditional generator
  is given the image's true class and only z is optimised.
- Arithmetic: class vectors are mean codes of the images of a class (posterior means for a VAE,
  inverted codes for a GAN); an image x of class b moved by mean(a) - mean(b), z(x) - mean(b) +
  mean(a), should decode to an a in x's style. A conditional model's class vector is its one-hot
  input, so the same arithmetic swaps the label: [z(x), onehot(b)] - onehot(b) + onehot(a). The
  score is the evaluator's accuracy at class a over every image and every a != b (chance 1 / K).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Decoder = Callable[[Tensor, Tensor], Tensor]  # (codes (N, D), labels (N,)) -> images (N, C, S, S) in [0, 1]


@dataclass
class Inversion:
    codes: Tensor  # (N, D) the optimised codes
    images: Tensor  # (N, C, S, S) their decodings
    mse: float  # per-pixel mean squared error of the decodings against the targets
    start_mse: float  # the same at the starting codes (the optimisation's reference point)


def invert(decode: Decoder, images: Tensor, labels: Tensor, width: int, steps: int, lr: float,
           generator: torch.Generator) -> Inversion:
    """Codes (N, width) whose decodings match ``images``: ``steps`` Adam steps at ``lr`` on the squared
    error summed per image, from standard-normal codes drawn with ``generator``."""
    codes = torch.randn(len(images), width, generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([codes], lr=lr)
    with torch.no_grad():
        start = F.mse_loss(decode(codes, labels), images).item()
    for _ in range(steps):
        loss = (decode(codes, labels) - images).pow(2).flatten(1).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        decoded = decode(codes, labels)
    return Inversion(codes.detach(), decoded, F.mse_loss(decoded, images).item(), start)


def class_means(codes: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(K, D): the mean code of each class's images (every class must be present)."""
    missing = [k for k in range(num_classes) if not (labels == k).any()]
    if missing:
        raise ValueError(f"no images of classes {missing} to average")
    return torch.stack([codes[labels == k].mean(0) for k in range(num_classes)])


def shift_to_every_class(codes: Tensor, labels: Tensor, means: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every image moved to every other class: codes z - mean(b) + mean(a) for a != b, as
    (codes (N * (K - 1), D), source labels b, target labels a)."""
    num_classes = len(means)
    targets = torch.arange(num_classes).repeat(len(codes))
    sources = labels.repeat_interleave(num_classes)
    moved = codes.repeat_interleave(num_classes, 0) - means[sources] + means[targets]
    keep = targets != sources
    return moved[keep], sources[keep], targets[keep]


@torch.no_grad()
def arithmetic_success(classify: Callable[[Tensor], Tensor], decode: Decoder, codes: Tensor, labels: Tensor,
                       num_classes: int, conditional: bool, batch_size: int = 1000) -> tuple[float, float]:
    """(share of moved images the classifier calls the target class, share it still calls the source).
    Unconditional: codes move by the class means' difference; conditional: z stays, the label changes."""
    means = (torch.zeros(num_classes, codes.shape[1]) if conditional
             else class_means(codes, labels, num_classes))
    moved, sources, targets = shift_to_every_class(codes, labels, means)
    predicted = torch.cat([classify(decode(moved[i : i + batch_size], targets[i : i + batch_size])).argmax(1)
                           for i in range(0, len(moved), batch_size)])
    return float((predicted == targets).float().mean()), float((predicted == sources).float().mean())
