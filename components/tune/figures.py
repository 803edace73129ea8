"""The sweep at a glance: the metric of every trial against each searched parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.axes import plain_log

LOG_SCALE = ("loguniform", "qloguniform")


def metric_vs_params(trials: Sequence[Mapping[str, Any]], distributions: Mapping[str, str], metric: str,
                     best_id: str | None, reference_id: str | None, length: str):
    """One panel per searched key: each trial's last ``metric`` against its value of that key.

    ``trials``: ``{"trial_id", "config", "value", "stopped_early", ...}`` (the metrics file's
    entries); ``distributions``: key -> distribution name (log-scaled axes for log distributions).
    Filled dots ran the whole trial ``length`` ("2 epochs", "50000 env steps"); hollow ones were
    stopped early (their value is from a shorter run); the default (reference) trial is a square,
    the best a star.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(distributions)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False, sharey=True)
    scored = [t for t in trials if t["value"] is not None]
    for ax, key in zip(axes[0], keys, strict=True):
        for trial in scored:
            x, y = trial["config"][key], trial["value"]
            full = not trial["stopped_early"]
            marker = "*" if trial["trial_id"] == best_id else "s" if trial["trial_id"] == reference_id else "o"
            ax.scatter([x], [y], marker=marker, s=140 if marker == "*" else 45,
                       facecolors="C0" if full else "none", edgecolors="C3" if marker == "*" else "C0")
        if distributions[key] in LOG_SCALE:
            ax.set_xscale("log")
            plain_log(ax.xaxis)
            ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    fig.suptitle(f"{metric} per trial (filled: all {length}, hollow: stopped early; "
                 "square: default, star: best)", fontsize=9)
    fig.tight_layout()
    return fig
