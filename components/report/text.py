"""How the report writes numbers, params and provenance, shared by the Markdown and HTML pages."""

from __future__ import annotations

import math
from typing import Any

from components.report.collect import Reference, Sweep

INT_COLUMNS = {"epochs", "rl/env_steps", "rl/env_steps_to_threshold"}


def number(value: Any, column: str = "") -> str:
    """A metric as the tables show it: 4 decimals, whole counts without, times in tenths of seconds."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if column in INT_COLUMNS or isinstance(value, int):
            return f"{value:.0f}"
        return f"{value:.1f}" if column.endswith("_s") else f"{value:.4f}"
    return str(value)


def param(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(param(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {param(v)}" for k, v in value.items()) + "}"
    return str(value)


def params_line(params: dict[str, Any], tuned: set[str] | frozenset[str] = frozenset()) -> str:
    """``lr=0.004 (tuned), base_channels=10, depth=3``."""
    return ", ".join(f"{k}={param(v)}" + (" (tuned)" if k in tuned else "") for k, v in params.items())


FIRST_PARAMS = ("epochs", "lr", "lr_g", "lr_d", "batch_size", "env")


def key_params(params: dict[str, Any], tuned: set[str] | frozenset[str] = frozenset(),
               limit: int = 6) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params a table cell shows (tuned ones, then training length and step size, then
    params.yaml's order; nulls left out; at most ``limit``) and the rest."""
    first = [k for k in params if k in tuned] + [k for k in FIRST_PARAMS if k in params and k not in tuned]
    order = first + [k for k in params if k not in first]
    shown = [k for k in order if params[k] is not None or k in tuned][:max(limit, len(tuned))]
    return {k: params[k] for k in shown}, {k: params[k] for k in order if k not in shown}


def reference(ref: Reference) -> str:
    """``floor (real vs real) 2.687``, ``ceiling 100``: 4 significant digits."""
    return f"{ref.label} {ref.value:.4g}"


def references(refs: list[Reference]) -> str:
    return "; ".join(reference(r) for r in refs)


def commit(value: str) -> str:
    """The first 12 hex digits, keeping a ``-dirty`` mark."""
    head, dirty, _ = value.partition("-dirty")
    return head[:12] + dirty


def sweep_summary(sweep: Sweep) -> str:
    """One sentence on a sweep's outcome."""
    parts = [f"{sweep.num_trials} trials of {sweep.model} on {sweep.metric} ({sweep.mode})"]
    if sweep.num_stopped_early is not None:
        parts.append(f"{sweep.num_stopped_early} stopped early")
    if sweep.wall_s is not None:
        parts.append(f"{sweep.wall_s:.0f} s")
    text = ", ".join(parts) + "."
    if sweep.best_value is not None:
        text += f" Best {number(sweep.best_value)}"
        if sweep.default_value is not None:
            gain = sweep.gain or 0.0
            verdict = "better than" if gain > 0 else "no better than"
            text += f", {verdict} the default params' {number(sweep.default_value)} ({gain:+.4f})"
        text += "."
    if sweep.applied is not None:
        kept = "Tuned values applied" if sweep.applied else "Tuned values not applied (params.yaml's stay)"
        text += f" {kept}: {sweep.reason}." if sweep.reason else f" {kept}."
    return text
