"""Write the report folder: ``index.html``, ``index.md`` and ``assets/`` (learning curves, copied figures).

The folder is built beside the target and swapped in whole (:func:`components.io.atomic_directory`):
a failure anywhere leaves the previous report as it was, never a half-written one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from components.io import atomic_directory, atomic_write_bytes, atomic_write_text
from components.report import curves, html, markdown
from components.report.collect import Report


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """Render ``report`` into ``out_dir`` (replacing it); returns the paths of the two pages."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        for family in report.families:
            png = curves.render(family.name, family.headline, family.plots)
            family.curve_asset = None
            if png is not None:
                family.curve_asset = f"assets/curves/{family.name}.png"
                atomic_write_bytes(tmp / family.curve_asset, png)
            for figure in family.figures:
                target = tmp / figure.asset
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(figure.source, target)
        atomic_write_text(tmp / "index.md", markdown.render(report))
        atomic_write_text(tmp / "index.html", html.render(report))
    return {"html": out_dir / "index.html", "markdown": out_dir / "index.md"}
