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


def transfer_figure(images: torch.Tensor, masks: torch.Tensor, predictions: dict[str, torch.Tensor],
                    losses: dict[str, np.ndarray], miou: dict[str, float]):
    """The transfer stage at a glance: the fine-tuning loss of every initialisation (mean over draws,
    left), and test scenes with their masks above each initialisation's predicted masks (right)."""
    n, names = len(images), list(predictions)
    fig = plt.figure(figsize=(4.0 + 1.1 * n, max(3.0, 1.0 * (len(names) + 2))))
    grid = fig.add_gridspec(len(names) + 2, n + 4)
    ax = fig.add_subplot(grid[:, :4])
    for name in names:
        ax.plot(np.arange(1, len(losses[name]) + 1), losses[name], lw=1, label=f"{name} ({miou[name]:.3f})")
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("cross-entropy (mean over draws)")
    ax.set_yscale("log")
    ax.legend(fontsize=6, title="init (test mIoU)", title_fontsize=6)
    classes = int(masks.max()) + 1 if len(masks) else 1
    classes = max(classes, max(int(p.max()) + 1 for p in predictions.values()))
    for row, (label, batch) in enumerate([("scene", images[:, 0]), ("mask", masks), *predictions.items()]):
        for i in range(n):
            cell = fig.add_subplot(grid[row, 4 + i])
            if row == 0:
                cell.imshow(batch[i].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                cell.imshow(batch[i].numpy(), cmap="tab20", vmin=0, vmax=max(classes - 1, 1), interpolation="nearest")
            cell.set_xticks([])
            cell.set_yticks([])
            if i == 0:
                cell.set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig
