"""Figures of the visualization family: the scene classifier's predictions, every attribution method
on the same images, deletion/insertion curves, dissected units, max-activating patches, nearest
neighbours, t-SNE and class models."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def _grey(ax, image: torch.Tensor, title: str = "") -> None:
    """One (C, H, W) image in [0, 1] on ``ax``."""
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    ax.imshow(np.clip(array[..., 0] if array.shape[-1] == 1 else array, 0, 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def _present(row: torch.Tensor, class_names: list[str]) -> str:
    return ",".join(name for name, flag in zip(class_names, row.tolist(), strict=True) if flag > 0.5) or "-"


def scene_predictions_figure(images: torch.Tensor, targets: torch.Tensor, probabilities: torch.Tensor,
                             class_names: list[str]):
    """Each scene with the digits it holds and those the classifier finds (probability > 0.5)."""
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.5 * n, 1.9), squeeze=False)
    for i in range(n):
        _grey(axes[0, i], images[i], f"true {_present(targets[i], class_names)}\n"
                                     f"pred {_present(probabilities[i], class_names)}")
    fig.tight_layout()
    return fig


def attribution_grid(images: torch.Tensor, maps: dict[str, torch.Tensor], titles: list[str], masks=None):
    """Rows: the images, then one row per method's (N, H, W) map (each map scaled to its own range);
    with ``masks`` (N, H, W), the target's mask outline and the map's maximum (the pointing game) drawn."""
    n, rows = len(images), len(maps) + 1
    fig, axes = plt.subplots(rows, n, figsize=(1.1 * n + 1.2, 1.1 * rows), squeeze=False)
    for i in range(n):
        _grey(axes[0, i], images[i], titles[i])
        for row, (name, values) in enumerate(maps.items(), start=1):
            ax = axes[row, i]
            array = values[i].numpy()
            ax.imshow(array, cmap="inferno", interpolation="nearest")
            if masks is not None:
                ax.contour(masks[i].numpy().astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
                y, x = np.unravel_index(int(np.argmax(array)), array.shape)
                ax.plot([x], [y], marker="+", color="lime", markersize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def causal_curves_figure(curves: dict[str, np.ndarray], kind: str):
    """Mean deletion or insertion curve per method: target probability against the fraction of pixels
    switched; the legend gives each AUC."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, curve in curves.items():
        x = np.linspace(0, 1, len(curve))
        area = float(np.trapezoid(curve, x))
        ax.plot(x, curve, label=f"{name} ({area:.3f})", linestyle="--" if name in ("random", "intensity") else "-")
    ax.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "inserted"))
    ax.set_ylabel("probability of the class")
    ax.set_title(f"{kind} curves (mean over images; AUC in the legend)", fontsize=9)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def patches_figure(patches: dict[str, torch.Tensor], titles: dict[str, str]):
    """One row per unit: its max-activating patches (P, C, h, w), titled with the concept it detects."""
    rows = len(patches)
    cols = max(len(p) for p in patches.values())
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 1.6, 0.95 * rows), squeeze=False)
    for r, (unit, row) in enumerate(patches.items()):
        for c in range(cols):
            ax = axes[r, c]
            if c < len(row):
                _grey(ax, row[c])
            ax.set_axis_off()
        axes[r, 0].set_title(titles[unit], fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def neighbours_figure(queries: torch.Tensor, feature_nn: torch.Tensor, pixel_nn: torch.Tensor):
    """Per query (left), its nearest training images in feature space, then in pixel space."""
    n, k = feature_nn.shape[:2]
    fig, axes = plt.subplots(n, 2 * k + 1, figsize=(0.7 * (2 * k + 1), 0.8 * n), squeeze=False)
    for i in range(n):
        _grey(axes[i, 0], queries[i], "query" if i == 0 else "")
        for j in range(k):
            _grey(axes[i, 1 + j], feature_nn[i, j], "features" if i == 0 and j == 0 else "")
            _grey(axes[i, 1 + k + j], pixel_nn[i, j], "pixels" if i == 0 and j == 0 else "")
    fig.tight_layout()
    return fig


def tsne_figure(points: np.ndarray, labels: np.ndarray, class_names: list[str], title: str):
    fig, ax = plt.subplots(figsize=(5, 4.6))
    for c, name in enumerate(class_names):
        chosen = labels == c
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, label=name)
        if chosen.any():
            ax.annotate(name, points[chosen].mean(0), fontsize=10, weight="bold")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=6, markerscale=1.5, ncol=2)
    fig.tight_layout()
    return fig


def class_models_figure(images: torch.Tensor, probabilities: list[float], class_names: list[str]):
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.1 * n, 1.5), squeeze=False)
    for i in range(n):
        image = images[i]
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-8)
        _grey(axes[0, i], image, f"{class_names[i]}: p={probabilities[i]:.2f}")
    fig.tight_layout()
    return fig


def dissection_figure(counts: dict[str, dict[str, int]], title: str):
    """Units with IoU above the threshold per layer, one bar group per network (trained, random)."""
    networks = list(counts)
    layers = list(next(iter(counts.values())))
    x = np.arange(len(layers))
    width = 0.8 / len(networks)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, network in enumerate(networks):
        values = [counts[network][layer] for layer in layers]
        bars = ax.bar(x + i * width, values, width, label=network)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x + width * (len(networks) - 1) / 2, layers)
    ax.set_ylabel("units detecting a digit")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
