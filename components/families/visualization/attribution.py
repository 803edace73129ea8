"""Attribution methods: which pixels made the network score the target class.

Every method has one signature::

    method(model, images (N, C, H, W), targets (N,) int64, **options) -> map (N, H, W)

and returns a float32 map, detached, on the CPU. The score explained is the target's logit (pre-softmax)
except for RISE, which explains its softmax probability. ``model`` must already be in eval mode (the
caller's job: dropout and batch-norm statistics would otherwise change the score being explained). No
method leaves anything in the parameters' ``.grad``: gradients are taken with ``torch.autograd.grad``
with respect to the input or an activation only. Every method works under ``torch.no_grad()`` too.

Written out as the course derives them: ``gradient``, ``grad_cam`` and ``rise``; wrapped from captum
0.9.0: ``gradient_x_input``, ``deconvnet``, ``guided_backprop``, ``guided_grad_cam`` and ``occlusion``.
captum's deconvnet and guided backprop override the backward pass of ``nn.ReLU`` *modules* only (not
``F.relu`` called in ``forward``). ``reference(name)`` gives captum's own ``gradient`` and ``grad_cam``,
the cross-check of the written-out ones.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import Tensor, nn

Attribution = Callable[..., Tensor]  # (model, images, targets, **options) -> (N, H, W)


def _check(images: Tensor, targets: Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if targets.shape != images.shape[:1]:
        raise ValueError(f"targets must be (N,) = ({images.shape[0]},), got shape {tuple(targets.shape)}")


def _out(attribution: Tensor) -> Tensor:
    return attribution.detach().to(device="cpu", dtype=torch.float32)


def _leaf(images: Tensor) -> Tensor:
    """``images`` detached (a new leaf sharing storage) and requiring grad; the caller's tensor is untouched."""
    return images.detach().requires_grad_(True)


def _captum(method: Any, images: Tensor, targets: Tensor, **kwargs: object) -> Tensor:
    """``method.attribute`` on a detached leaf of the images, without captum's note that it hooks the ReLUs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return method.attribute(_leaf(images), target=targets, **kwargs)


def _target_score(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """The sum over the batch of each image's target logit (so each image's gradient is its own)."""
    return model(images).gather(1, targets[:, None]).sum()


@torch.enable_grad()
def gradient(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """Image-specific class saliency (Simonyan et al. 2014, "Deep inside convolutional networks"):
    ``|d score / d x|``, reduced over channels by the maximum (non-negative)."""
    _check(images, targets)
    x = _leaf(images)
    (grad,) = torch.autograd.grad(_target_score(model, x, targets), x)
    return _out(grad.abs().amax(dim=1))


def gradient_x_input(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """Gradient times input (Shrikumar et al. 2016, "Not just a black box"), summed over channels (signed)."""
    _check(images, targets)
    return _out(_captum(InputXGradient(model), images, targets).sum(dim=1))


def deconvnet(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """Deconvnet (Zeiler & Fergus 2014, "Visualizing and understanding convolutional networks"): the
    backward pass through each ReLU keeps only positive *incoming* gradients, ignoring the forward
    activation. Summed over channels (signed)."""
    _check(images, targets)
    return _out(_captum(Deconvolution(model), images, targets).sum(dim=1))


def guided_backprop(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """Guided backpropagation (Springenberg et al. 2015, "Striving for simplicity"): the backward pass
    through each ReLU keeps a gradient only where both the forward input and the gradient are positive.
    Summed over channels (signed)."""
    _check(images, targets)
    return _out(_captum(GuidedBackprop(model), images, targets).sum(dim=1))


@torch.enable_grad()
def grad_cam(model: nn.Module, images: Tensor, targets: Tensor, *, layer: nn.Module) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks"). With
    ``A`` the output (N, K, h, w) of ``layer`` (called once per forward): ``alpha_k`` = spatial mean of
    ``d score / d A_k``, map = ``ReLU(sum_k alpha_k A_k)``, upsampled to (H, W) bilinearly with
    ``align_corners=False`` (what captum's ``LayerAttribution.interpolate(..., "bilinear")`` does). Non-negative."""
    _check(images, targets)
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        x = _leaf(images)  # so A is in the graph even if nothing before it is trained
        score = _target_score(model, x, targets)
    finally:
        handle.remove()
    if len(captured) != 1 or not isinstance(captured[0], Tensor) or captured[0].dim() != 4:
        raise ValueError("grad_cam: layer must be called once per forward and output one (N, K, h, w) tensor")
    (activation,) = captured
    (grad,) = torch.autograd.grad(score, activation)
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)
    return _out(cam[:, 0])


def guided_grad_cam(model: nn.Module, images: Tensor, targets: Tensor, *, layer: nn.Module) -> Tensor:
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the Grad-CAM map of ``layer``
    (upsampled bilinearly, as ``grad_cam``), summed over channels (signed)."""
    _check(images, targets)
    attribution = _captum(GuidedGradCam(model, layer), images, targets, interpolate_mode="bilinear")
    return _out(attribution.sum(dim=1))


def occlusion(model: nn.Module, images: Tensor, targets: Tensor, *, patch: int, stride: int) -> Tensor:
    """Occlusion sensitivity (Zeiler & Fergus 2014): a ``patch`` x ``patch`` square of zeros covering
    every channel slides over the image by ``stride``; each pixel gets the mean, over the squares covering
    it, of ``score(image) - score(occluded image)`` (positive: hiding the region lowers the target's
    score; pixels no square covers get 0). Since the square covers all channels every channel gets the
    same value, so the channel reduction takes it once (a sum would scale it by C)."""
    _check(images, targets)
    channels = images.shape[1]
    attribution = Occlusion(model).attribute(
        images.detach(), sliding_window_shapes=(channels, patch, patch), strides=(channels, stride, stride),
        baselines=0.0, target=targets,
    )
    return _out(attribution.mean(dim=1))


def rise_masks(
    num_masks: int, size: tuple[int, int], cell_size: int, p: float, generator: torch.Generator
) -> Tensor:
    """RISE's random masks (num_masks, H, W) in [0, 1]: a grid of ceil(H / cell_size) + 1 by
    ceil(W / cell_size) + 1 cells, each kept (1) with probability ``p``, upsampled bilinearly
    (``align_corners=False``) to (cells + 1) * cell_size and cropped to H x W at a random shift in
    [0, cell_size) on each axis. With ``cell_size`` 1 the masks are per-pixel Bernoulli(p)."""
    height, width = size
    cells = (math.ceil(height / cell_size) + 1, math.ceil(width / cell_size) + 1)
    grid = (torch.rand(num_masks, 1, *cells, generator=generator) < p).float()
    up = F.interpolate(grid, size=(cells[0] * cell_size, cells[1] * cell_size), mode="bilinear", align_corners=False)
    shifts = torch.randint(0, cell_size, (num_masks, 2), generator=generator).tolist()
    return torch.stack([up[m, 0, dy : dy + height, dx : dx + width] for m, (dy, dx) in enumerate(shifts)])


@torch.no_grad()
def rise(
    model: nn.Module, images: Tensor, targets: Tensor, *, num_masks: int, cell_size: int, p: float,
    generator: torch.Generator, batch_size: int,
) -> Tensor:
    """RISE (Petsiuk et al. 2018, "RISE: randomized input sampling for explanation of black-box models"):
    ``saliency_i = sum_m P_m M_m,i / (num_masks * p)``, with ``P_m`` the softmax probability of the target
    class on the image times mask ``M_m`` (see ``rise_masks``; drawn once per call from the CPU
    ``generator`` and shared by every image), ``batch_size`` masked images per forward. Non-negative."""
    _check(images, targets)
    if num_masks < 1 or cell_size < 1 or batch_size < 1 or not 0 < p <= 1:
        raise ValueError(f"rise: need num_masks, cell_size, batch_size >= 1 and 0 < p <= 1, got "
                         f"{num_masks}, {cell_size}, {batch_size}, {p}")
    masks = rise_masks(num_masks, tuple(images.shape[2:]), cell_size, p, generator).to(images.device, images.dtype)
    saliency = torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.float64, device=images.device)
    for start in range(0, num_masks, batch_size):
        batch = masks[start : start + batch_size]
        for n, (image, target) in enumerate(zip(images, targets.tolist(), strict=True)):
            probability = model(image[None] * batch[:, None]).softmax(dim=1)[:, target]
            saliency[n] += torch.einsum("m,mhw->hw", probability.double(), batch.double())
    return _out(saliency / (num_masks * p))


ATTRIBUTIONS: dict[str, Attribution] = {
    "gradient": gradient,
    "gradient_x_input": gradient_x_input,
    "deconvnet": deconvnet,
    "guided_backprop": guided_backprop,
    "grad_cam": grad_cam,
    "guided_grad_cam": guided_grad_cam,
    "occlusion": occlusion,
    "rise": rise,
}


def _options(method: Attribution) -> tuple[list[str], list[str]]:
    """A method's keyword-only options: (all of them, the required ones)."""
    kw = [p for p in inspect.signature(method).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return [p.name for p in kw], [p.name for p in kw if p.default is inspect.Parameter.empty]


def attribute(name: str, model: nn.Module, images: Tensor, targets: Tensor, **options: object) -> Tensor:
    """``ATTRIBUTIONS[name](model, images, targets, ...)`` given only the options it accepts (so one
    dict of every method's options serves all); ValueError naming the method and what it lacks."""
    if name not in ATTRIBUTIONS:
        raise ValueError(f"unknown attribution method {name!r}; known: {sorted(ATTRIBUTIONS)}")
    method = ATTRIBUTIONS[name]
    accepted, required = _options(method)
    missing = [option for option in required if option not in options]
    if missing:
        raise ValueError(f"attribution method {name!r} needs option(s) {missing}")
    return method(model, images, targets, **{k: v for k, v in options.items() if k in accepted})


def _captum_gradient(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    _check(images, targets)
    return _out(_captum(Saliency(model), images, targets, abs=True).amax(dim=1))


def _captum_grad_cam(model: nn.Module, images: Tensor, targets: Tensor, *, layer: nn.Module) -> Tensor:
    _check(images, targets)
    cam = _captum(LayerGradCam(model, layer), images, targets, relu_attributions=True)
    return _out(LayerAttribution.interpolate(cam, tuple(images.shape[2:]), interpolate_mode="bilinear")[:, 0])


_REFERENCES: dict[str, Attribution] = {"gradient": _captum_gradient, "grad_cam": _captum_grad_cam}


def reference(name: str) -> Attribution:
    """captum's computation of a written-out method, same signature: ``gradient`` is Saliency(abs=True)
    reduced by the channel maximum, ``grad_cam`` LayerGradCam(relu_attributions=True) upsampled by
    ``LayerAttribution.interpolate(..., "bilinear")``."""
    if name not in _REFERENCES:
        raise ValueError(f"no captum reference for {name!r}; there is one for {sorted(_REFERENCES)}")
    return _REFERENCES[name]
