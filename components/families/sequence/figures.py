"""Figures of the sequence family: attention heatmaps, sample tables, BLEU against source length,
and captions with attention over the image grid."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def attention_figure(weights: torch.Tensor, source: Sequence[str], output: Sequence[str]):
    """Heatmap of attention ``weights`` (T, S): row t is where output word t looked in the source."""
    t, s = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.28 * s + 1.5), max(3.0, 0.28 * t + 1.2)))
    ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(s), source[:s], rotation=90, fontsize=7)
    ax.set_yticks(range(t), output[:t], fontsize=7)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    return fig


def samples_figure(rows: Sequence[tuple[str, ...]], headers: Sequence[str] = ("source", "reference", "output")):
    """A table of sample sentences; each row a tuple in ``headers`` order, long text wrapped."""
    lines = []
    for row in rows:
        for header, value in zip(headers, row, strict=True):
            lines += textwrap.wrap(f"{header:>9}: {value}", width=110, subsequent_indent=" " * 11) or [""]
        lines.append("")
    fig = plt.figure(figsize=(11, 0.19 * len(lines) + 0.4))
    fig.text(0.01, 0.99, "\n".join(lines), family="monospace", fontsize=7, va="top")
    return fig


def bleu_by_length_figure(scores: Mapping[str, Sequence[tuple[str, float, float]]]):
    """BLEU and exact match against source-length bucket, one line per model (the course's plot).
    ``scores[model]`` lists ``(bucket name, BLEU, exact match)`` in bucket order."""
    fig, (ax_bleu, ax_em) = plt.subplots(1, 2, figsize=(10, 3.6))
    for model, rows in scores.items():
        names = [r[0].removeprefix("len_").replace("_", " ") for r in rows]
        ax_bleu.plot(names, [r[1] for r in rows], marker="o", label=model)
        ax_em.plot(names, [100 * r[2] for r in rows], marker="o", label=model)
    for ax, label in ((ax_bleu, "BLEU"), (ax_em, "exact match (%)")):
        ax.set_xlabel("source length (tokens)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
    ax_bleu.legend(fontsize=8)
    fig.tight_layout()
    return fig


def caption_figure(images: torch.Tensor, captions: Sequence[str], references: Sequence[Sequence[str]]):
    """Images (N, C, H, W) in [0, 1] with generated (bold) and reference captions."""
    n = len(captions)
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.9 * n), squeeze=False)
    for ax, image, caption, refs in zip(axes[:, 0], images, captions, references, strict=True):
        ax.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(caption, fontsize=8, fontweight="bold", loc="left")
        ax.set_xlabel("\n".join(refs), fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def caption_attention_figure(image: torch.Tensor, words: Sequence[str], weights: torch.Tensor):
    """Where each generated word looked: ``weights`` (T, h*w) over the feature grid, upsampled onto
    the image (C, H, W), one panel per word."""
    grid = int(round(weights.shape[1] ** 0.5))
    t = min(len(words), weights.shape[0])
    cols = min(8, t)
    rows = int(np.ceil(t / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    picture = image.permute(1, 2, 0).squeeze(-1).numpy()
    h, w = picture.shape[:2]
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= t:
            ax.axis("off")
            continue
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
        ax.imshow(weights[k].reshape(grid, grid).numpy(), cmap="magma", alpha=0.55, extent=(0, w, h, 0),
                  interpolation="bilinear")
        ax.set_title(words[k], fontsize=8)
    fig.tight_layout()
    return fig
