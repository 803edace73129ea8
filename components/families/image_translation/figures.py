"""The family's figure: columns of images side by side (label map / generated / real scene)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def translation_figure(columns: list[Tensor], titles: list[str]):
    """One row per example: each column's image (N, 3, S, S) in [0, 1], titled on the first row."""
    rows = len(columns[0])
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.6 * len(columns), 1.6 * rows), squeeze=False)
    for col, (images, title) in enumerate(zip(columns, titles, strict=True)):
        for row in range(rows):
            ax = axes[row, col]
            ax.imshow(images[row].detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
