"""Figures of the RL family: the grid world's utilities and greedy policy, and learning curves.

Both build a ``matplotlib.figure.Figure`` directly (no pyplot state); save with ``figure.savefig`` or
:func:`components.tracking.figure_png`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_ARROW = {0: (0.0, 1.0), 1: (1.0, 0.0), 2: (0.0, -1.0), 3: (-1.0, 0.0)}  # up, right, down, left as (dx, dy)
_EMPTY, _WALL, _POSITIVE, _NEGATIVE = "#f4f4f4", "#5a5a5a", "#7fcf86", "#e8837a"


def _states_of(env_or_states) -> tuple[list[tuple[int, int]], np.ndarray | None]:
    """The cells (x, y) of the states and, for an env, its terminal mask (S,)."""
    env = getattr(env_or_states, "unwrapped", env_or_states)
    if hasattr(env, "STATES"):
        return [tuple(c) for c in env.STATES], np.asarray(env.terminal, dtype=bool)
    return [tuple(c) for c in env_or_states], None


def gridworld_figure(env_or_states, utilities: Sequence[float], policy: Sequence[int], title: str = "") -> Figure:
    """Each cell of the grid world with its utility (3 decimals) and an arrow for its greedy action.

    ``env_or_states``: a ``GridWorld`` (wrapped or not), or the cells ``(x, y)`` of the states (1-based, x to
    the right, y up), one per entry of ``utilities`` (S,) and ``policy`` (S,) (action indices up, right, down,
    left). Cells of the bounding box that are not states are drawn as walls. Terminal states (the env's, or
    without an env those whose policy entry is negative) are coloured green / red by the sign of their utility.
    """
    cells, terminal = _states_of(env_or_states)
    utilities, policy = np.asarray(utilities, dtype=float), np.asarray(policy)
    if not len(cells) == len(utilities) == len(policy):
        raise ValueError(f"{len(cells)} states but {len(utilities)} utilities and {len(policy)} policy entries")
    if terminal is None:
        terminal = policy < 0
    width, height = max(x for x, _ in cells), max(y for _, y in cells)
    figure = Figure(figsize=(1.3 * width + 0.4, 1.3 * height + 0.5))
    ax = figure.add_subplot()
    index = {c: i for i, c in enumerate(cells)}
    for x in range(1, width + 1):
        for y in range(1, height + 1):
            s = index.get((x, y))
            if s is None:
                colour = _WALL
            elif terminal[s]:
                colour = _POSITIVE if utilities[s] >= 0 else _NEGATIVE
            else:
                colour = _EMPTY
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=colour, edgecolor="black", linewidth=1))
            if s is None:
                continue
            if terminal[s]:
                ax.text(x, y, f"{utilities[s]:+.0f}", ha="center", va="center", fontsize=16, fontweight="bold")
                continue
            ax.text(x, y + 0.3, f"{utilities[s]:.3f}", ha="center", va="center", fontsize=10)
            if policy[s] in _ARROW:
                dx, dy = _ARROW[int(policy[s])]
                ax.annotate(
                    "",
                    xy=(x + 0.28 * dx, y - 0.1 + 0.28 * dy),
                    xytext=(x - 0.28 * dx, y - 0.1 - 0.28 * dy),
                    arrowprops={"arrowstyle": "-|>", "color": "#1f4fb4", "linewidth": 2},
                )
    ax.set_xlim(0.5, width + 0.5)
    ax.set_ylim(0.5, height + 0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(1, width + 1))
    ax.set_yticks(range(1, height + 1))
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure


def trailing_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start), shape (N,)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    sums = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def learning_curve_figure(
    env_steps: Sequence[float],
    returns: Sequence[float],
    threshold: float | None = None,
    greedy: float | tuple[Sequence[float], Sequence[float]] | None = None,
    title: str = "",
    window: int = 1,
) -> Figure:
    """Episode return (mean) against env steps taken, (N,) each.

    ``threshold``: a dashed horizontal line (e.g. the env's solved return). ``greedy``: the greedy policy's
    return, a number (dotted horizontal line) or ``(env_steps, returns)`` of periodic greedy evaluations (markers).
    ``window`` > 1 plots the trailing mean of ``returns`` over that many points (for per-episode returns).
    """
    figure = Figure(figsize=(6, 3.6))
    ax = figure.add_subplot()
    label = "episode return" if window <= 1 else f"episode return (mean of {window})"
    ax.plot(np.asarray(env_steps, dtype=float), trailing_mean(returns, window), label=label, linewidth=1.2)
    if threshold is not None:
        ax.axhline(threshold, linestyle="--", color="black", linewidth=1, label=f"threshold {threshold:g}")
    if isinstance(greedy, tuple):
        ax.plot(np.asarray(greedy[0], dtype=float), np.asarray(greedy[1], dtype=float), "o", label="greedy policy")
    elif greedy is not None:
        ax.axhline(greedy, linestyle=":", color="tab:green", linewidth=1.5, label=f"greedy policy {greedy:.3f}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure
