"""Axis formatting every chart of the project shares (the report's curves, the sweeps' figures)."""

from __future__ import annotations

from typing import Any


def plain_log(axis: Any) -> None:
    """A log-scaled matplotlib ``axis`` (``ax.xaxis`` or ``ax.yaxis``) labelled 1, 2, 5, 10, 20, ... in
    plain numbers (0.002, not 2x10^-3) with no minor labels: within one decade matplotlib labels its
    minor ticks too, and they overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
