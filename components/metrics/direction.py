"""Which way is better for each metric: the one table Tune's ``mode``, ``best/<metric>`` summaries
and leaderboards read.

Metric keys are ``<split>/<name>`` (``val/miou``, ``train/loss``, ``rl/episode_return_mean``); the
direction belongs to the name, and each family's descriptor declares its names' directions
(``Family.higher_is_better`` / ``lower_is_better``). Per-class entries (``val/iou/<class>``), reference points
(``val/fid_evaluator_floor``, ``val/map_untrained``) and bookkeeping (``time/epoch_s``) have none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from components.families import FAMILIES

# Directions every family shares; each family's own come from its descriptor (components/families).
_SHARED_HIGHER = frozenset({"accuracy"})
_SHARED_LOWER = frozenset({"loss"})
HIGHER_IS_BETTER = _SHARED_HIGHER.union(*(family.higher_is_better for family in FAMILIES.values()))
LOWER_IS_BETTER = _SHARED_LOWER.union(*(family.lower_is_better for family in FAMILIES.values()))
if HIGHER_IS_BETTER & LOWER_IS_BETTER:
    raise RuntimeError(f"metrics with both directions in the family descriptors: "
                       f"{sorted(HIGHER_IS_BETTER & LOWER_IS_BETTER)}")
BEST_PREFIX = "best/"


def metric_mode(key: str) -> str | None:
    """``"max"`` or ``"min"`` for a metric key such as ``val/miou``; None when it has no direction."""
    split, _, name = key.partition("/")
    if not name or "/" in name or split == "best":
        return None
    if name in HIGHER_IS_BETTER:
        return "max"
    if name in LOWER_IS_BETTER:
        return "min"
    return None


def known_metrics() -> list[str]:
    """Every metric name with a direction (for error messages)."""
    return sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)


def best_value(values: Iterable[float], mode: str) -> float | None:
    """The best finite value (``max`` or ``min``), or None when there is none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def best_summaries(history: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """``{"best/<key>": best over rows}`` for every key of ``history`` (one row per epoch or
    iteration) that has a direction: e.g. ``best/val/miou`` (max over epochs), ``best/train/loss``
    (min). Log it with the run's metrics so an MLflow table sorts runs by their best epoch, not
    their last one; RL runs and training runs use the same helper."""
    columns: dict[str, list[float]] = {}
    for row in history:
        for key, value in row.items():
            if metric_mode(key) is not None:
                columns.setdefault(key, []).append(float(value))
    out = {}
    for key, values in columns.items():
        best = best_value(values, metric_mode(key))
        if best is not None:
            out[BEST_PREFIX + key] = best
    return out
