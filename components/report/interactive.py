"""The HTML report's interactive charts: Plotly figures (hover for a point's model and values, drag to
zoom, double-click to reset) of each leaderboard's learning curves and of each sweep's trials
against the params it searched.

The page loads Plotly from ``reports/assets/plotly.min.js``, copied from the installed ``plotly``
package, so it works opened from disk with no network. Each chart is a ``<div>`` and a script that
draws it from a JSON literal in which ``<``, ``>`` and ``&`` are escaped (a model name cannot close
the script). The PNG charts stay for the Markdown page.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from components.report import text
from components.report.collect import Sweep
from components.report.curves import CurveSpec, Series, curve_series, log_scale
from components.report.runs import HistoryPoint

PLOTLY_ASSET = "assets/plotly.min.js"
# matplotlib's tab10, so a model keeps its colour between the PNG and the interactive chart
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def plotly_js() -> Path:
    """The installed plotly package's bundled library (copied into the report's assets)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _script(div_id: str, figure: dict, height: int) -> str:
    """A chart's ``<div>`` and the script that draws it; the JSON cannot end the script early."""
    payload = json.dumps(figure, allow_nan=False, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<div class="chart" id="{div_id}" style="height:{height}px"></div>'
            f"<script>(function(){{var f={payload};"
            f'Plotly.newPlot("{div_id}",f.data,f.layout,{json.dumps(CONFIG)});}})();</script>')


def _axis(index: int) -> tuple[str, str]:
    """Plotly's names of the ``index``-th (0-based) subplot's axes: ("x", "y"), ("x2", "y2"), ..."""
    suffix = "" if index == 0 else str(index + 1)
    return f"x{suffix}", f"y{suffix}"


def _layout(titles: list[str], height: int) -> dict:
    n = len(titles)
    gap = 0.08 if n > 1 else 0.0
    width = (1.0 - gap * (n - 1)) / n
    layout: dict = {"height": height, "margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest",
                    "template": None, "plot_bgcolor": "white", "legend": {"font": {"size": 11}},
                    "annotations": []}
    for i, title in enumerate(titles):
        x, y = _axis(i)
        left = i * (width + gap)
        layout[f"xaxis{x[1:]}"] = {"domain": [left, left + width], "anchor": y, "gridcolor": "#e5e8ec",
                                   "zeroline": False}
        layout[f"yaxis{y[1:]}"] = {"anchor": x, "gridcolor": "#e5e8ec", "zeroline": False}
        layout["annotations"].append({"text": title, "x": left + width / 2, "y": 1.0, "xref": "paper",
                                      "yref": "paper", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 13}})
    return layout


def curves_chart(family: str, headline: str, csvs: dict[str, Path], div_id: str, height: int = 360) -> str | None:
    """The learning curves of ``csvs`` (model -> CSV) as one interactive chart, a panel per curve of the
    family; None when no CSV has a point."""
    return series_chart(*curve_series(family, headline, csvs), div_id, height)


def series_chart(spec: CurveSpec, series: Series, div_id: str, height: int = 360) -> str | None:
    """:func:`curves_chart` from :func:`~components.report.curves.curve_series` output (read once for
    the PNG and this chart)."""
    if not series:
        return None
    models = sorted({m for lines in series.values() for m in lines})
    layout = _layout([panel.title for panel in series], height)
    data = []
    for i, (panel, lines) in enumerate(series.items()):
        x, y = _axis(i)
        layout[f"xaxis{x[1:]}"]["title"] = {"text": spec.x.replace("_", " ")}
        layout[f"yaxis{y[1:]}"]["title"] = {"text": panel.y}
        if log_scale(panel, lines):
            layout[f"yaxis{y[1:]}"]["type"] = "log"
        for model, (xs, ys) in lines.items():
            color = COLORS[models.index(model) % len(COLORS)]
            data.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "name": model,
                         "legendgroup": model, "showlegend": i == 0, "xaxis": x, "yaxis": y,
                         "line": {"color": color, "width": 2}, "marker": {"size": 5},
                         "hovertemplate": f"{model}<br>{spec.x} %{{x}}<br>{panel.y} %{{y:.4g}}<extra></extra>"})
    return _script(div_id, {"data": data, "layout": layout}, height)


def _numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def sweep_chart(sweep: Sweep, div_id: str, height: int = 320) -> str | None:
    """Each trial's metric against each param the sweep searched (a panel per param; log x where the
    values span more than 10x), finished trials apart from those stopped early; None without trials."""
    trials = [t for t in sweep.trials if t.value is not None]
    params = [k for k in dict.fromkeys(k for t in trials for k in t.config)
              if _numeric([t.config.get(k) for t in trials if k in t.config])]
    if not trials or not params:
        return None
    layout = _layout(params, height)
    data = []
    for i, param in enumerate(params):
        x, y = _axis(i)
        values = [t.config[param] for t in trials if param in t.config]
        if min(values) > 0 and max(values) > 10 * min(values):
            layout[f"xaxis{x[1:]}"]["type"] = "log"
        layout[f"xaxis{x[1:]}"]["title"] = {"text": param}
        layout[f"yaxis{y[1:]}"]["title"] = {"text": sweep.metric}
        for stopped, color in ((False, COLORS[0]), (True, COLORS[7])):
            chosen = [t for t in trials if t.stopped_early == stopped and param in t.config]
            if not chosen:
                continue
            label = "stopped early" if stopped else "ran its length"
            data.append({"type": "scatter", "mode": "markers", "x": [t.config[param] for t in chosen],
                         "y": [t.value for t in chosen], "text": [t.trial_id for t in chosen], "name": label,
                         "legendgroup": label, "showlegend": i == 0, "xaxis": x, "yaxis": y,
                         "marker": {"color": color, "size": 9, "symbol": "x" if stopped else "circle"},
                         "hovertemplate": f"trial %{{text}}<br>{param} %{{x:.4g}}<br>{sweep.metric} %{{y:.4g}}"
                                          "<extra></extra>"})
    return _script(div_id, {"data": data, "layout": layout}, height)


def history_chart(points: list[HistoryPoint], headline: str, div_id: str, height: int = 320) -> str | None:
    """The headline metric of every finished run of each model in MLflow against when it started (one
    line per model; hover for the commit and params hash): did a change help? None unless some model
    has two runs."""
    models = sorted({p.model for p in points})
    if not any(sum(p.model == m for p in points) > 1 for m in models):
        return None
    layout = _layout([f"{headline} of every finished run, by start time"], height)
    layout["xaxis"]["type"] = "date"
    layout["yaxis"]["title"] = {"text": headline}
    data = []
    for i, model in enumerate(models):
        runs = [p for p in points if p.model == model]
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": model,
            "x": [datetime.fromtimestamp(p.start_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
                  for p in runs],
            "y": [p.value for p in runs],
            "customdata": [[text.commit(p.commit), p.params_hash] for p in runs],
            "line": {"color": COLORS[i % len(COLORS)], "width": 2}, "marker": {"size": 7},
            "hovertemplate": f"{model}<br>%{{x}}<br>commit %{{customdata[0]}}<br>params %{{customdata[1]}}"
                             f"<br>{headline} %{{y:.4g}}<extra></extra>"})
    return _script(div_id, {"data": data, "layout": layout}, height)
