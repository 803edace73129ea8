"""Adversarial attacks written out as the course derives them.

Every attack works on images in the valid range [0, 1] and an L-infinity budget ``epsilon``:

- **FGSM** (Goodfellow et al. 2015): the loss is locally linear in the input, so the step of
  L-infinity size epsilon that increases it most is ``epsilon * sign(grad_x loss)``;
- **PGD** / iterative FGSM (Kurakin et al. 2017, Madry et al. 2018): repeated FGSM steps of size
  ``step_size``, each followed by the projection onto the epsilon-ball around the clean image
  and clipping to the valid range; optionally from a uniform random start inside the ball, with
  restarts keeping, per image, the first restart that fools the model (else the last);
- **least-likely class** (Kurakin et al. 2017): a targeted attack towards the class the model finds
  least likely on the clean image, stepping *down* the gradient of that class's loss (one step or
  iterative);
- **DeepFool** (Moosavi-Dezfooli et al. 2016), the minimal L-infinity step across the nearest
  linearised decision boundary, and the **universal perturbation** built from it (Moosavi-Dezfooli
  et al. 2017): cycle over training images, add the minimal step for each image the current ``v``
  does not fool yet, project ``v`` onto the xi-ball, keep the ``v`` with the best training fooling rate.

torchattacks implements FGSM, PGD and the least-likely mode of PGD; tests/unit/test_adversarial_attacks.py
checks that these functions give the same adversarial images as the library.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Attack = Callable[[nn.Module, Tensor, Tensor], Tensor]  # (model, images, labels) -> adversarial images
LOW, HIGH = 0.0, 1.0  # the valid pixel range


def input_gradient(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """d cross-entropy(model(images), labels) / d images (summed over the batch, so each image's
    gradient is its own loss's)."""
    images = images.detach().requires_grad_(True)
    loss = F.cross_entropy(model(images), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, images)
    return grad


def project(adversarial: Tensor, images: Tensor, epsilon: float) -> Tensor:
    """Onto the L-infinity ball of radius ``epsilon`` around ``images``, then into the valid range."""
    delta = torch.clamp(adversarial - images, -epsilon, epsilon)
    return torch.clamp(images + delta, LOW, HIGH)


def fgsm_perturbation(model: nn.Module, images: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """FGSM's step before clipping: ``epsilon * sign(grad_x loss)`` (L-infinity norm exactly epsilon
    wherever the gradient is non-zero)."""
    return epsilon * input_gradient(model, images, labels).sign()


def fgsm(model: nn.Module, images: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """The fast gradient sign method: one step of size epsilon up the loss, clipped to [0, 1]."""
    return torch.clamp(images + fgsm_perturbation(model, images, labels, epsilon), LOW, HIGH).detach()


def random_start(images: Tensor, epsilon: float, generator: torch.Generator | None) -> Tensor:
    """A uniform draw from the epsilon-ball around ``images``, clipped to the valid range."""
    noise = _draw(torch.rand, images, generator) * 2 - 1
    return torch.clamp(images + epsilon * noise, LOW, HIGH)


def _draw(sample, images: Tensor, generator: torch.Generator | None) -> Tensor:
    """``sample(shape)`` (torch.rand, or a partial of torch.randint) drawn where ``generator`` lives
    (a CPU generator for CUDA images too), moved to the images' device."""
    device = generator.device if generator is not None else images.device
    return sample(images.shape, generator=generator, device=device).to(images.device)


def pgd(
    model: nn.Module, images: Tensor, labels: Tensor, epsilon: float, steps: int, step_size: float,
    random_init: bool = True, restarts: int = 1, generator: torch.Generator | None = None,
    targeted: bool = False,
) -> Tensor:
    """Projected gradient descent on the loss (iterative FGSM when ``random_init`` is false).

    Untargeted: ``labels`` are the true classes and each step goes up their loss; targeted: ``labels``
    are the targets and each step goes down theirs. With ``restarts`` > 1 each image keeps the first
    restart whose result succeeds (misclassified, or classified as the target), else the last one's.
    """
    sign = -1.0 if targeted else 1.0
    best = images.clone()
    done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    for _ in range(restarts):
        adversarial = random_start(images, epsilon, generator) if random_init else images.clone()
        for _ in range(steps):
            step = sign * step_size * input_gradient(model, adversarial, labels).sign()
            adversarial = project(adversarial + step, images, epsilon)
        with torch.no_grad():
            predicted = model(adversarial).argmax(1)
        success = predicted == labels if targeted else predicted != labels
        take = ~done  # the images no earlier restart has fooled take this restart's result
        best[take] = adversarial[take]
        done |= success
        if bool(done.all()):
            break
    return best.detach()


@torch.no_grad()
def least_likely_class(model: nn.Module, images: Tensor) -> Tensor:
    """The class each clean image is least likely to be, by the model."""
    return model(images).argmin(1)


def least_likely(model: nn.Module, images: Tensor, epsilon: float, steps: int = 1, step_size: float | None = None,
                 ) -> tuple[Tensor, Tensor]:
    """The least-likely-class attack: (adversarial images, the targets). One step of size epsilon
    down the target's loss (``steps`` 1), or ``steps`` projected steps of ``step_size``."""
    targets = least_likely_class(model, images)
    if steps == 1:
        adversarial = torch.clamp(images - epsilon * input_gradient(model, images, targets).sign(), LOW, HIGH)
        return adversarial.detach(), targets
    size = step_size if step_size is not None else epsilon / 4
    return pgd(model, images, targets, epsilon, steps, size, random_init=False, targeted=True), targets


def sign_vector(like: Tensor, epsilon: float, generator: torch.Generator | None = None) -> Tensor:
    """A random sign tensor shaped like ``like``: every entry +epsilon or -epsilon with equal odds."""
    return epsilon * (_draw(functools.partial(torch.randint, 0, 2), like, generator) * 2.0 - 1.0)


def random_sign(images: Tensor, epsilon: float, generator: torch.Generator | None = None) -> Tensor:
    """``images`` plus a random sign vector of L-infinity size epsilon per image, clipped: the
    control an attack of the same size must beat."""
    return torch.clamp(images + sign_vector(images, epsilon, generator), LOW, HIGH)


# --- the universal perturbation -----------------------------------------------------------------


def class_gradients(model: nn.Module, image: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(logits (K,), their input gradients (K, C, H, W)) of one image, in one backward pass over K
    copies of it (each copy's gradient is that of its own class's logit)."""
    copies = image.detach()[None].repeat(num_classes, *([1] * image.dim())).requires_grad_(True)
    logits = model(copies)
    (grads,) = torch.autograd.grad(logits.diagonal().sum(), copies)
    return logits[0].detach(), grads


def deepfool(model: nn.Module, image: Tensor, num_classes: int, overshoot: float = 0.02, max_iter: int = 50,
             norm: str = "l2") -> Tensor:
    """DeepFool's minimal perturbation of one image (C, H, W) (Moosavi-Dezfooli et al. 2016), returned
    as (adversarial image - image). Each iteration linearises every class's margin to the image's class
    k0 at the current point x, takes the step onto the nearest linearised boundary,
    ``|f_k| / ||w_k||_2^2 * w_k`` (``norm`` ``l2``) or ``|f_k| / ||w_k||_1 * sign(w_k)`` (``linf``),
    and moves to ``clip(x + (1 + overshoot) * step)``, until the class differs from k0 or ``max_iter``
    steps. The L2 iteration is torchattacks' ``DeepFool`` step for step (a test checks it)."""
    x = image.detach()
    logits, grads = class_gradients(model, x, num_classes)
    label = int(logits.argmax())
    for _ in range(max_iter):
        if int(logits.argmax()) != label:
            break
        f = (logits - logits[label]).abs()  # (K,): distances in logit units to each class's boundary
        w = (grads - grads[label]).flatten(1)  # (K, D): gradients of the margins f_k - f_k0
        dual = w.norm(p=2, dim=1) if norm == "l2" else w.abs().sum(1)  # the norm dual to the step's
        distance = f / dual
        distance[label] = float("inf")
        k = int(distance.argmin())
        step = f[k] * w[k] / dual[k] ** 2 if norm == "l2" else distance[k] * w[k].sign()
        x = torch.clamp(x + (1 + overshoot) * step.view_as(x), LOW, HIGH)
        logits, grads = class_gradients(model, x, num_classes)
    return x - image.detach()


@dataclass
class UniversalResult:
    perturbation: Tensor  # v (C, H, W), ||v||_inf <= xi
    train_fooling_rate: float  # of the kept v on the images it was built on
    history: list[float] = field(default_factory=list)  # training fooling rate after each pass


@torch.no_grad()
def predictions(model: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """The model's predicted class for each image."""
    return torch.cat([model(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def fooling_rate(model: nn.Module, images: Tensor, perturbation: Tensor, clean: Tensor | None = None,
                 batch_size: int = 512) -> float:
    """The fraction of images whose predicted class changes when ``perturbation`` is added (clipped);
    ``clean``: the predictions on the images, when already known."""
    clean = predictions(model, images, batch_size) if clean is None else clean
    moved = predictions(model, torch.clamp(images + perturbation, LOW, HIGH), batch_size)
    return float((moved != clean).float().mean())


def universal_perturbation(
    model: nn.Module, images: Tensor, num_classes: int, xi: float, max_passes: int = 5,
    target_fooling_rate: float = 0.8, overshoot: float = 0.02, generator: torch.Generator | None = None,
    norm: str = "l2", check_every: int = 50, deepfool_max_iter: int = 10,
) -> UniversalResult:
    """The course's universal perturbation (Moosavi-Dezfooli et al. 2017) under an L-infinity bound xi.

    Passes over ``images`` in a seeded order; for each image that ``v`` does not fool yet, the minimal
    (DeepFool) step that sends ``x + v`` across a boundary is added to ``v``, and ``v`` is projected
    back onto the xi-ball. Every ``check_every`` images (and at the end of each pass) ``v``'s fooling
    rate on ``images`` is measured and the best ``v`` so far kept: one image's step can undo what
    earlier ones built, so the last ``v`` is often not the best. Stops after ``max_passes`` or once
    the fooling rate reaches ``target_fooling_rate``; ``history`` has the rate at the end of each pass.
    Each DeepFool runs at most ``deepfool_max_iter`` steps (10 in the authors' code: a step the valid
    range clips away can stall it).
    """
    v = torch.zeros_like(images[0])
    best = UniversalResult(v.clone(), 0.0)
    clean = predictions(model, images)

    def keep_if_best() -> float:
        rate = fooling_rate(model, images, v, clean)
        if rate > best.train_fooling_rate:
            best.perturbation, best.train_fooling_rate = v.clone(), rate
        return rate

    for _ in range(max_passes):
        order = torch.randperm(len(images), generator=generator)
        for seen, index in enumerate(order.tolist(), start=1):
            x = images[index]
            with torch.no_grad():
                moved = int(model(torch.clamp(x + v, LOW, HIGH)[None]).argmax(1))
            if moved == int(clean[index]):
                step = deepfool(model, torch.clamp(x + v, LOW, HIGH), num_classes, overshoot, deepfool_max_iter, norm)
                v = torch.clamp(v + step, -xi, xi)
            if seen % check_every == 0 and keep_if_best() >= target_fooling_rate:
                return best
        best.history.append(keep_if_best())
        if best.train_fooling_rate >= target_fooling_rate:
            break
    return best


# --- accuracy under attack ------------------------------------------------------------------------


@torch.no_grad()
def _accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    return float((model(images).argmax(1) == labels).float().mean())


def attacked_accuracy(model: nn.Module, images: Tensor, labels: Tensor, attack: Attack | None,
                      batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``attack(model, images, labels)`` (clean when None)."""
    correct = 0.0
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        inputs = attack(model, x, y) if attack is not None else x
        correct += _accuracy(model, inputs, y) * len(x)
    return correct / len(images)
