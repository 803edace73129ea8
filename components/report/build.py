"""Write the report folder: ``index.html``, ``index.md`` and ``assets/`` (learning curves, copied figures).

The folder is built beside the target and swapped in whole (:func:`components.io.atomic_directory`):
a failure anywhere leaves the previous report as it was, never a half-written one.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from components.io import atomic_directory, atomic_write_bytes, atomic_write_text
from components.report import curves, html, interactive, markdown
from components.report.collect import Report


def slug(text: str) -> str:
    """A file-name-safe form of a group label (``ALE/Breakout-v5`` -> ``ALE_Breakout-v5``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """Render ``report`` into ``out_dir`` (replacing it); returns the paths of the two pages."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        for family in report.families:
            family.curve_assets, family.charts, family.history_charts = {}, {}, {}
            for group, rows in family.groups.items():  # one chart per leaderboard: one environment per axis
                csvs = {r.model: family.plots[r.model] for r in rows if r.model in family.plots}
                name = f"{family.name}{'-' + slug(group) if group else ''}"
                models = {r.model for r in rows}
                runs = [p for p in family.history if p.model in models]
                family.history_charts[group] = interactive.history_chart(runs, family.headline, f"history-{name}")
                spec, series = curves.curve_series(family.name, family.headline, csvs)  # the CSVs, read once
                png = curves.draw(spec, series)
                if png is not None:
                    family.curve_assets[group] = f"assets/curves/{name}.png"
                    atomic_write_bytes(tmp / family.curve_assets[group], png)
                    family.charts[group] = interactive.series_chart(spec, series, f"curves-{name}")
            family.sweep_chart = None
            if family.sweep is not None and family.sweep.enabled:
                family.sweep_chart = interactive.sweep_chart(family.sweep, f"sweep-{family.name}")
        if any(f.charts or f.sweep_chart or any(f.history_charts.values()) for f in report.families):
            (tmp / "assets").mkdir(exist_ok=True)
            shutil.copyfile(interactive.plotly_js(), tmp / interactive.PLOTLY_ASSET)
        for family in report.families:
            for figure in family.figures:
                target = tmp / figure.asset
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(figure.source, target)
        atomic_write_text(tmp / "index.md", markdown.render(report))
        atomic_write_text(tmp / "index.html", html.render(report))
    return {"html": out_dir / "index.html", "markdown": out_dir / "index.md"}
