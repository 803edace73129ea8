"""Figures of the self-supervised family: augmented views, and t-SNE of each encoder's features."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def views_figure(images: torch.Tensor, views: torch.Tensor):
    """Each training image (top) above one augmented view of it (bottom): what every pretext sees."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 2.0), squeeze=False)
    for row, batch in enumerate((images, views)):
        for i in range(n):
            axes[row, i].imshow(batch[i, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[row, i].set_axis_off()
    axes[0, 0].set_title("image", fontsize=7, loc="left")
    axes[1, 0].set_title("view", fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def tsne_grid(points: dict[str, np.ndarray], labels: np.ndarray, accuracy: dict[str, float]):
    """One t-SNE panel per encoder, points coloured by their (unseen) digit label."""
    n = len(points)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, xy) in zip(axes.flat, points.items(), strict=False):
        ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=5, vmin=0, vmax=9)
        ax.set_title(f"{name} (10-label probe {accuracy[name]:.3f})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig
