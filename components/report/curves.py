"""Learning-curve charts: one PNG per family from its ``plots/<family>-<model>.csv``, one line per model.

The panels are the family descriptors' ``curves``, as are dvc.yaml's top-level ``plots:``
(``dvc plots show`` draws the same curves as an HTML page of its own); a test keeps the two in step.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from components.axes import plain_log
from components.families import FAMILIES
from components.families.base import Curve


@dataclass(frozen=True)
class CurveSpec:
    x: str
    panels: tuple[Curve, ...]


# Each family's panels, from its descriptor (the same ones dvc.yaml's plots draw).
CURVES = {family.name: CurveSpec(family.curve_x, family.panels) for family in FAMILIES.values()}


def spec_for(family: str, headline: str) -> CurveSpec:
    """The family's chart; a family not listed in :data:`CURVES` plots its headline against epochs."""
    return CURVES.get(family) or CurveSpec("epoch", (Curve(headline, headline),))


def read_series(path: Path, x: str, y: str) -> tuple[list[float], list[float]]:
    """The (x, y) points of a learning-curve CSV where both are numbers (rows without an evaluation
    leave ``y`` empty; a tabular RL run has no rows)."""
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                xv, yv = float(row.get(x) or "nan"), float(row.get(y) or "nan")
            except ValueError:
                continue
            if math.isfinite(xv) and math.isfinite(yv):
                xs.append(xv)
                ys.append(yv)
    return xs, ys


Series = dict[Curve, dict[str, tuple[list[float], list[float]]]]


def curve_series(family: str, headline: str, csvs: dict[str, Path]) -> tuple[CurveSpec, Series]:
    """The family's chart spec and, per panel with a point to draw, each model's (x, y) points."""
    spec = spec_for(family, headline)
    series = {panel: {model: read_series(path, spec.x, panel.y) for model, path in sorted(csvs.items())}
              for panel in spec.panels}
    series = {panel: {m: s for m, s in lines.items() if s[0]} for panel, lines in series.items()}
    return spec, {panel: lines for panel, lines in series.items() if lines}


def log_scale(panel: Curve, lines: dict[str, tuple[list[float], list[float]]]) -> bool:
    """A panel asks for a log y axis and every value is positive."""
    return panel.log_y and all(v > 0 for _, ys in lines.values() for v in ys)


def readable_axes(ax, xs: list[float]) -> None:
    """Ticks a reader can use: whole numbers on an x of epochs or steps (one epoch gave ticks 0.96-1.04),
    plain numbers on a log y axis (not 1.74x10^0), and no minor labels crowding a log axis."""
    from matplotlib.ticker import MaxNLocator

    if all(float(x).is_integer() for x in xs):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
        if len(set(xs)) == 1:  # a single point: a range around it with that one tick
            ax.set_xlim(xs[0] - 1, xs[0] + 1)
            ax.set_xticks([xs[0]])
    if ax.get_yscale() == "log":
        plain_log(ax.yaxis)
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def render(family: str, headline: str, csvs: dict[str, Path], dpi: int = 100) -> bytes | None:
    """The family's learning curves as PNG bytes, or None when no CSV has a point to draw."""
    return draw(*curve_series(family, headline, csvs), dpi=dpi)


def draw(spec: CurveSpec, series: Series, dpi: int = 100) -> bytes | None:
    """:func:`curve_series` output as PNG bytes, or None when there is no point to draw."""
    if not series:
        return None

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from components.tracking import figure_png

    fig, axes = plt.subplots(1, len(series), figsize=(5.8 * len(series), 3.8), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], series.items(), strict=True):
        for model, (xs, ys) in lines.items():
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.4, label=model)
        if log_scale(panel, lines):
            ax.set_yscale("log")
        readable_axes(ax, [v for xs, _ in lines.values() for v in xs])
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(spec.x.replace("_", " "))
        ax.set_ylabel(panel.y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return figure_png(fig, dpi=dpi)
