"""Figures of segmentation predictions: input, ground truth and prediction side by side."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402


def class_colormap(num_classes: int) -> ListedColormap:
    """Black for background (class 0), distinct colours for the rest."""
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, 20))[: max(num_classes - 1, 1)]
    return ListedColormap(np.vstack([[0, 0, 0, 1], colours]))


def mask_figure(
    images: torch.Tensor, targets: torch.Tensor, predictions: torch.Tensor, class_names: list[str], rows: int = 6
):
    """A rows x 3 grid: image (C, H, W in [0, 1]), ground-truth mask, predicted mask (H, W)."""
    rows = min(rows, len(images))
    cmap = class_colormap(len(class_names))
    fig, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), squeeze=False)
    for row in range(rows):
        image = images[row].permute(1, 2, 0).numpy()
        panels = (
            (image.squeeze(-1) if image.shape[-1] == 1 else image, "image", "gray"),
            (targets[row].numpy(), "ground truth", cmap),
            (predictions[row].numpy(), "prediction", cmap),
        )
        for col, (panel, title, colours) in enumerate(panels):
            ax = axes[row, col]
            if col == 0:
                ax.imshow(panel, cmap=colours)
            else:  # values outside [0, num_classes) (an ignore index) are clipped to the last colour
                ax.imshow(panel, cmap=colours, vmin=0, vmax=len(class_names) - 1, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
