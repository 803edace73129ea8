"""Figures of adversarial examples: clean / perturbation / adversarial triples, accuracy against
epsilon, the universal perturbation and the transfer matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def _image(ax, image: torch.Tensor, title: str, signed: bool = False, bound: float = 1.0) -> None:
    """One (C, H, W) image on ``ax``: grey in [0, 1], or a diverging map in [-bound, bound] when signed."""
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    array = array[..., 0] if array.shape[-1] == 1 else array
    if signed:
        ax.imshow(array if array.ndim == 2 else array.mean(-1), cmap="RdBu_r", vmin=-bound, vmax=bound,
                  interpolation="nearest")
    else:
        ax.imshow(np.clip(array, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def examples_figure(clean: torch.Tensor, adversarial: torch.Tensor, labels: torch.Tensor, clean_pred: torch.Tensor,
                    adversarial_pred: torch.Tensor, title: str):
    """Per column one image: clean (true label, prediction) above the perturbation and the adversarial
    image (its prediction); a changed prediction is marked."""
    n = len(clean)
    perturbation = adversarial - clean
    bound = max(float(perturbation.abs().max()), 1e-6)
    fig, axes = plt.subplots(3, n, figsize=(1.0 * n + 0.4, 3.4), squeeze=False)
    for i in range(n):
        _image(axes[0, i], clean[i], f"y={int(labels[i])} pred {int(clean_pred[i])}")
        _image(axes[1, i], perturbation[i], f"±{bound:.2g}", signed=True, bound=bound)
        flipped = int(adversarial_pred[i]) != int(clean_pred[i])
        _image(axes[2, i], adversarial[i], f"pred {int(adversarial_pred[i])}" + (" ✗" if flipped else ""))
    for row, name in enumerate(("clean", "perturbation", "adversarial")):
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def robustness_figure(curves: dict[str, list[tuple[int, float]]], clean_accuracy: float, model: str):
    """Test accuracy against the L-infinity budget, one line per attack (epsilon x 1000 on the curves' x)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for name, points in curves.items():
        eps = [0.0] + [step / 1000 for step, _ in points]
        values = [clean_accuracy] + [value for _, value in points]
        ax.plot(eps, values, marker="o", label=name)
    ax.set_xlabel("epsilon (L-infinity, images in [0, 1])")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{model}: accuracy under attack", fontsize=9)
    fig.tight_layout()
    return fig


def universal_figure(perturbation: torch.Tensor, images: torch.Tensor, clean_pred: torch.Tensor,
                     perturbed_pred: torch.Tensor, xi: float, test_fooling_rate: float):
    """The universal perturbation beside test images with it added (their predictions before -> after)."""
    n = len(images)
    fig, axes = plt.subplots(1, n + 1, figsize=(1.0 * (n + 1) + 0.4, 1.6), squeeze=False)
    _image(axes[0, 0], perturbation, f"v, ±{xi:g}", signed=True, bound=xi)
    for i in range(n):
        _image(axes[0, i + 1], torch.clamp(images[i] + perturbation, 0, 1),
               f"{int(clean_pred[i])}→{int(perturbed_pred[i])}")
    fig.suptitle(f"universal perturbation: test fooling rate {test_fooling_rate:.0%}", fontsize=9)
    fig.tight_layout()
    return fig


def transfer_figure(matrix: np.ndarray, sources: list[str], targets: list[str], title: str):
    """Accuracy of each target model (columns) on the examples crafted on each source (rows)."""
    fig, ax = plt.subplots(figsize=(1.0 * len(targets) + 2.0, 0.7 * len(sources) + 1.4))
    ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(targets)), targets, fontsize=8)
    ax.set_yticks(range(len(sources)), sources, fontsize=8)
    ax.set_xlabel("model scored")
    ax.set_ylabel("crafted on")
    for i in range(len(sources)):
        for j in range(len(targets)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if matrix[i, j] > 0.5 else "white")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
