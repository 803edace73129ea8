"""Figures of generated images: sample grids, latent interpolations, reconstructions, codebook usage."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def image_grid(images: torch.Tensor, ncols: int, title: str, row_labels: list[str] | None = None):
    """A figure of images (N, C, H, W) in [0, 1] tiled ``ncols`` per row, grey for one channel."""
    grid = make_grid(images.detach().cpu().clamp(0, 1), nrow=ncols, padding=1, pad_value=0.5)
    rows = -(-len(images) // ncols)
    fig, ax = plt.subplots(figsize=(0.45 * ncols + 0.6, 0.45 * rows + 0.5))
    ax.imshow(grid.permute(1, 2, 0).numpy()[..., 0] if images.shape[1] == 1 else grid.permute(1, 2, 0).numpy(),
              cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    if row_labels:
        cell = grid.shape[1] / rows
        ax.set_yticks([cell * (i + 0.5) for i in range(rows)], row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def sample_grid(samples: torch.Tensor, ncols: int, row_labels: list[str] | None = None):
    """Samples (N, C, H, W) from the fixed evaluation noise (the same codes every epoch)."""
    return image_grid(samples, ncols, "samples from fixed noise", row_labels)


def interpolation_figure(frames: torch.Tensor):
    """Decoded latent interpolations (pairs, steps, C, H, W): one row per pair of codes, left to right."""
    pairs, steps = frames.shape[:2]
    return image_grid(frames.flatten(0, 1), steps, f"linear interpolation between {pairs} pairs of codes")


def truncation_figure(samples: torch.Tensor, ncols: int, blocks: list[str], rows_per_block: int):
    """Class-conditional samples at each truncation threshold: ``samples`` (N, C, H, W) row by row, a block
    of ``rows_per_block`` rows per entry of ``blocks`` (its name labels the block's middle row), one
    class per column; row r of every block decodes the same base noise."""
    labels = [name if row == rows_per_block // 2 else "" for name in blocks for row in range(rows_per_block)]
    return image_grid(samples, ncols, f"truncation t: {rows_per_block} noises per t, one class per column", labels)


def reconstruction_figure(images: torch.Tensor, reconstructions: torch.Tensor, ncols: int):
    """Inputs above their reconstructions, row by row: both (N, C, H, W) with N a multiple of ``ncols``."""
    rows = [t for i in range(0, len(images), ncols) for t in (images[i : i + ncols], reconstructions[i : i + ncols])]
    labels = ["input", "recon."] * (len(rows) // 2)
    return image_grid(torch.cat(rows), ncols, "reconstructions (posterior mean)", labels)


def codebook_usage_figure(counts: torch.Tensor, perplexity: float):
    """A VQ-VAE's code usage: how often each codebook entry is chosen, most used first."""
    ordered = counts.double().sort(descending=True).values
    share = (ordered / ordered.sum()).numpy()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(range(len(share)), share, width=1.0, color="tab:blue")
    used = int((ordered > 0).sum())
    ax.set_title(f"codebook usage: {used} of {len(share)} codes used, perplexity {perplexity:.1f}", fontsize=9)
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("share of positions")
    fig.tight_layout()
    return fig


def arithmetic_figure(originals: torch.Tensor, moved: torch.Tensor, num_classes: int, conditional: bool):
    """Each original (one per row) followed by its decodings moved to every other class in order:
    ``moved`` is (rows * (K - 1), C, H, W), row by row, targets ascending without the row's own class."""
    rows = moved.unflatten(0, (len(originals), num_classes - 1))
    tiles = torch.cat([torch.cat([originals[i : i + 1], rows[i]]) for i in range(len(originals))])
    how = "the label swapped" if conditional else "z - mean(own class) + mean(target class)"
    return image_grid(tiles, num_classes, f"each test image, then moved to the other classes in order ({how})")
