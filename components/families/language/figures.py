"""The language family's figures: sampled text, masked-word predictions, interpretable cells."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def text_figure(title: str, rows: Sequence[tuple[str, str]], width: int = 110):
    """A figure listing ``(label, text)`` rows, the text wrapped at ``width`` characters."""
    blocks = [(label, textwrap.fill(text.replace("\n", " ⏎ "), width)) for label, text in rows]
    lines = sum(block.count("\n") + 2 for _, block in blocks)
    fig, ax = plt.subplots(figsize=(11, 0.22 * lines + 0.8))
    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=10)
    y = 1.0
    for label, block in blocks:
        ax.text(0, y, label, fontsize=8, fontweight="bold", va="top", transform=ax.transAxes)
        y -= 1 / lines
        ax.text(0, y, block, fontsize=8, family="monospace", va="top", transform=ax.transAxes)
        y -= (block.count("\n") + 1) / lines
    return fig


def cells_figure(text: str, activations: np.ndarray, best: dict[str, tuple[int, float]], width: int = 100):
    """Karpathy-style strips: for each property, the text with every character's background
    coloured by the best-correlated unit's activation about its mean (blue below, red above)."""
    rows = [text[i:i + width] for i in range(0, len(text), width)]
    fig, axes = plt.subplots(len(best), 1, figsize=(12, 0.24 * len(rows) * len(best) + 0.6 * len(best)),
                             squeeze=False)
    centred = activations - activations.mean(axis=0)  # each unit about its mean: contrast where it moves
    scale = np.abs(centred).max(axis=0) + 1e-9
    for ax, (name, (unit, r)) in zip(axes[:, 0], best.items(), strict=True):
        ax.set_xlim(0, width)
        ax.set_ylim(len(rows), 0)
        ax.axis("off")
        ax.set_title(f"{name}: unit {unit}, r = {r:+.2f}", loc="left", fontsize=9)
        values = centred[:, unit] / scale[unit]
        for i, ch in enumerate(text):
            row, col = divmod(i, width)
            v = float(np.clip(values[i], -1, 1))
            colour = (1, 1 - v, 1 - v) if v > 0 else (1 + v, 1 + v, 1)
            ax.add_patch(plt.Rectangle((col, row), 1, 1, color=colour, linewidth=0))
            ax.text(col + 0.5, row + 0.55, "⏎" if ch == "\n" else ch, fontsize=6, family="monospace",
                    ha="center", va="center")
    fig.tight_layout()
    return fig
