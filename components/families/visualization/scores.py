"""Numbers that judge saliency maps and units ("numbers, not only pictures").

- **Deletion and insertion** (Petsiuk et al. 2018, "RISE: Randomized input sampling for explanation
  of black-box models"): switch pixels in decreasing saliency order from a start image to a finish
  image and follow the softmax probability of the target class. Deletion goes from the image to a
  substrate (black by default): a faithful map makes the probability fall fast, low AUC is better.
  Insertion goes from a substrate (a blur by default) to the image: high AUC is better.
- **Pointing game** (Zhang et al. 2016, "Top-down neural attention by excitation backprop"): a hit
  when the saliency maximum lies on the target object, within a tolerance (15 px on 224-px images).
- **Network dissection** (Bau et al. 2017, "Network dissection: quantifying interpretability of deep
  visual representations"): threshold each unit at its top-0.5% activation level, upsample, and score
  the unit against every concept mask by dataset-wide IoU; a unit with IoU > 0.04 is a detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

TORCH_QUANTILE_MAX = 2**24  # torch.quantile refuses larger inputs
EXACT_FLOAT32_COUNT = 2**24  # integer counts stay exact in float32 sums up to here


# ---------------------------------------------------------------------------------------------- causal metrics


def causal_curve(model: nn.Module, images: Tensor, targets: Tensor, saliency: Tensor, start: Tensor, finish: Tensor,
                 steps: int, batch_size: int) -> Tensor:
    """Probability of each target while pixels switch from ``start`` to ``finish`` (Petsiuk et al. 2018).

    Pixels (all channels together) are taken in decreasing ``saliency`` order, ties in pixel-index
    order; each of the ``steps`` steps switches the next ceil(H*W/steps) of them (the last steps
    switch fewer, or none, when steps does not divide H*W). Returns (N, steps+1): the softmax
    probability of ``targets`` after 0..steps steps, so column 0 is ``start`` and the last column is
    ``finish``. ``images`` gives the shape and device only. The N*(steps+1) forward passes run in
    chunks of ``batch_size`` under ``torch.no_grad``; put the model in eval mode first.
    """
    n, _, h, w = images.shape
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    device = images.device
    start, finish = start.to(device).expand_as(images), finish.to(device).expand_as(images)
    order = torch.argsort(saliency.to(device).reshape(n, h * w), dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=device).expand(n, -1))  # rank[i, p]: when pixel p goes
    per_step = math.ceil(h * w / steps)
    switched = torch.clamp(torch.arange(steps + 1, device=device) * per_step, max=h * w)  # after s steps
    image_idx = torch.arange(n, device=device).repeat_interleave(steps + 1)
    step_idx = torch.arange(steps + 1, device=device).repeat(n)
    targets = targets.to(device)
    probs = []
    with torch.no_grad():
        for lo in range(0, n * (steps + 1), batch_size):
            i, s = image_idx[lo:lo + batch_size], step_idx[lo:lo + batch_size]
            mask = (rank[i] < switched[s, None]).view(-1, 1, h, w)
            batch = torch.where(mask, finish[i], start[i])
            logits = model(batch)
            probs.append(torch.softmax(logits.float(), dim=1).gather(1, targets[i, None]).squeeze(1))
    return torch.cat(probs).view(n, steps + 1)


def auc(curve: Tensor) -> Tensor:
    """Trapezoidal area under each row of ``curve`` (N, steps+1), the points equally spaced on [0, 1]."""
    if curve.shape[-1] < 2:
        raise ValueError("a curve needs at least two points")
    return (curve[..., 1:] + curve[..., :-1]).sum(-1) / (2 * (curve.shape[-1] - 1))


def _reflect_index(size: int, radius: int, device: torch.device) -> Tensor:
    """Indices of ``size`` samples padded by ``radius`` on each side, reflected about the edge samples
    (torch's 'reflect', scipy's 'mirror': d c b | a b c d | c b a), valid for any radius."""
    idx = torch.arange(-radius, size + radius, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= size, period - idx, idx)


def blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of (N, C, H, W) images: a separable normalized kernel of radius ceil(3 sigma),
    reflect padding (the edge pixel not repeated, any image size). sigma <= 0 returns a copy."""
    if sigma <= 0:
        return images.clone()
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = images.shape
    out = images.reshape(n * c, 1, h, w)
    out = out.index_select(3, _reflect_index(w, radius, images.device))
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = out.index_select(2, _reflect_index(h, radius, images.device))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    return out.view(n, c, h, w)


def deletion_auc(model: nn.Module, images: Tensor, targets: Tensor, saliency: Tensor, steps: int, batch_size: int,
                 substrate: Tensor | None = None) -> Tensor:
    """Deletion AUC (Petsiuk et al. 2018), (N,): most salient pixels first replaced by ``substrate``
    (default zeros: black). Lower is better."""
    finish = torch.zeros_like(images) if substrate is None else substrate
    return auc(causal_curve(model, images, targets, saliency, images, finish, steps, batch_size))


def insertion_auc(model: nn.Module, images: Tensor, targets: Tensor, saliency: Tensor, steps: int, batch_size: int,
                  substrate: Tensor | None = None, sigma: float = 1.0) -> Tensor:
    """Insertion AUC (Petsiuk et al. 2018), (N,): from ``substrate`` (default ``blur(images, sigma)``)
    the most salient pixels first are restored to the image. Higher is better."""
    start = blur(images, sigma) if substrate is None else substrate
    return auc(causal_curve(model, images, targets, saliency, start, images, steps, batch_size))


def random_saliency(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None) -> Tensor:
    """Baseline: uniform random saliency of ``shape`` (N, H, W)."""
    return torch.rand(tuple(shape), generator=generator)


def intensity_saliency(images: Tensor) -> Tensor:
    """Baseline: brighter pixels first, the sum over channels of (N, C, H, W) images -> (N, H, W)."""
    return images.sum(1)


# ---------------------------------------------------------------------------------------------- pointing game


def _dilate(masks: Tensor, tolerance: int) -> Tensor:
    """(N, H, W) boolean masks dilated by ``tolerance`` pixels with a (2t+1)-square max-pool
    (a Chebyshev-distance neighbourhood)."""
    masks = masks.bool()
    if tolerance <= 0:
        return masks
    pooled = F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)
    return pooled[:, 0] > 0


def pointing_hits(saliency: Tensor, masks: Tensor, tolerance: int = 0) -> Tensor:
    """Pointing game (Zhang et al. 2016), (N,) bool: the saliency maximum (the first in flattened order
    on ties) lies in the target's mask dilated by ``tolerance`` pixels (Zhang et al.: 15 on 224-px)."""
    n = saliency.shape[0]
    peak = saliency.reshape(n, -1).argmax(1)
    dilated = _dilate(masks.to(saliency.device), tolerance).reshape(n, -1)
    return dilated.gather(1, peak[:, None]).squeeze(1)


def pointing_chance(masks: Tensor, tolerance: int = 0) -> Tensor:
    """Hit rate of a uniformly random point, (N,): the area fraction of the dilated mask."""
    return _dilate(masks, tolerance).float().mean((1, 2))


# ---------------------------------------------------------------------------------------------- dissection


@dataclass
class DissectionResult:
    """Network dissection scores: ``iou`` (K, C), ``thresholds`` (K,), each unit's best concept and IoU."""

    iou: Tensor
    thresholds: Tensor
    best_concept: Tensor
    best_iou: Tensor

    def detectors(self, min_iou: float = 0.04) -> list[tuple[int, int, float]]:
        """(unit, concept, iou) of the units whose best IoU exceeds ``min_iou`` (Bau et al.: 0.04),
        highest IoU first (ties by unit index)."""
        units = torch.nonzero(self.best_iou > min_iou).flatten().tolist()
        units.sort(key=lambda k: -float(self.best_iou[k]))
        return [(k, int(self.best_concept[k]), float(self.best_iou[k])) for k in units]

    def count(self, min_iou: float = 0.04) -> int:
        """The number of detector units, best IoU > ``min_iou``."""
        return int((self.best_iou > min_iou).sum())


def unit_thresholds(activations: Tensor, quantile: float = 0.005) -> Tensor:
    """T_k with P(a_k > T_k) = ``quantile`` over all N*h*w activations of unit k, (K,).

    torch.quantile (linear interpolation) refuses more than 2**24 elements; beyond that np.quantile,
    whose default method is the same linear interpolation, gives the same number.
    """
    k = activations.shape[1]
    thresholds = torch.empty(k, dtype=torch.float64)
    for unit in range(k):
        values = activations[:, unit].reshape(-1).double()
        if values.numel() <= TORCH_QUANTILE_MAX:
            thresholds[unit] = torch.quantile(values, 1 - quantile)
        else:
            thresholds[unit] = float(np.quantile(values.cpu().numpy(), 1 - quantile))
    return thresholds


def dissect(activations: Tensor, concept_masks: Tensor, quantile: float = 0.005,
            chunk_size: int | None = None) -> DissectionResult:
    """Network dissection (Bau et al. 2017) of K units, (N, K, h, w), against C concepts, (N, C, H, W) bool.

    As NetDissect does, the threshold T_k comes from the low-resolution activations
    (``unit_thresholds``), while the unit's mask is the bilinearly upsampled map (align_corners=False)
    > T_k at (H, W). IoU_{k,c} is dataset-wide: the sum over all images of |M_k AND L_c| divided by the
    sum of |M_k OR L_c| (0 where both are empty). Images are processed ``chunk_size`` at a time
    (default: about 2**24 elements of the larger of the (n, K, H, W) and (n, C, H, W) tensors).
    """
    n, k, _, _ = activations.shape
    _, c, h, w = concept_masks.shape
    if concept_masks.shape[0] != n or c < 1:
        raise ValueError(f"need one (C>=1, H, W) mask stack per image: {n} images, masks {tuple(concept_masks.shape)}")
    device = activations.device
    thresholds = unit_thresholds(activations, quantile)
    t = thresholds.to(device=device, dtype=activations.dtype).view(1, k, 1, 1)
    if chunk_size is None:
        chunk_size = max(1, EXACT_FLOAT32_COUNT // (max(k, c) * h * w))
    inter = torch.zeros(k, c, dtype=torch.float64, device=device)
    unit_area = torch.zeros(k, dtype=torch.float64, device=device)
    concept_area = torch.zeros(c, dtype=torch.float64, device=device)
    for lo in range(0, n, chunk_size):
        acts = activations[lo:lo + chunk_size]
        up = F.interpolate(acts, size=(h, w), mode="bilinear", align_corners=False)
        m = acts.shape[0]
        # Counts of 0/1 products are exact in float32 while each sum stays within 2**24.
        dtype = torch.float32 if m * h * w <= EXACT_FLOAT32_COUNT else torch.float64
        units = (up > t).to(dtype).transpose(0, 1).reshape(k, m * h * w)
        concepts = concept_masks[lo:lo + chunk_size].to(device=device, dtype=dtype).transpose(0, 1)
        concepts = concepts.reshape(c, m * h * w)
        inter += (units @ concepts.T).double()
        unit_area += units.sum(1).double()
        concept_area += concepts.sum(1).double()
    union = unit_area[:, None] + concept_area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).cpu()
    best_iou, best_concept = iou.max(1)
    return DissectionResult(iou=iou, thresholds=thresholds, best_concept=best_concept, best_iou=best_iou)
