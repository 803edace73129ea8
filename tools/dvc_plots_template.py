"""Write ``.dvc/plots/offline.html``: the page ``dvc plots show`` fills, with Vega, Vega-Lite and
Vega-Embed inlined, so its charts draw with no network (DVC's own page loads them from a CDN).

    npm pack vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2      # the versions dvc-render asks for
    python -m tools.dvc_plots_template vega-5.20.2.tgz vega-lite-5.2.0.tgz vega-embed-6.18.2.tgz

``.dvc/config`` names the page (``[plots] html_template = plots/offline.html``, relative to ``.dvc``).
The three libraries are BSD-3-Clause (University of Washington Interactive Data Lab); their licence
is written beside the page. DVC fills ``{plot_divs}`` (and would fill ``{scripts}`` with the CDN tags:
the page leaves that placeholder out).
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / ".dvc" / "plots" / "offline.html"
LIBRARIES = ("vega", "vega-lite", "vega-embed")  # in load order: vega-embed needs the other two

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
    <!-- {versions}: inlined by tools/dvc_plots_template.py (BSD-3-Clause, see VEGA-LICENSE) -->
{scripts}
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as tar:
        return tar.extractfile(f"package/{name}").read().decode("utf8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", nargs=3, type=Path, help="the npm pack tarballs of vega, vega-lite, vega-embed")
    archives = dict(zip(LIBRARIES, parser.parse_args(argv).archives, strict=True))
    scripts, versions = [], []
    for library, archive in archives.items():
        code = member(archive, f"build/{library}.min.js")
        if "</script" in code or "{plot_divs}" in code or "{scripts}" in code:
            raise SystemExit(f"{archive}: the library holds text that would break the page")
        scripts.append(f"    <script>\n{code}\n    </script>")
        versions.append(archive.name.removesuffix(".tgz"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(PAGE.format(versions=", ".join(versions), scripts="\n".join(scripts)), encoding="utf8")
    (OUT.parent / "VEGA-LICENSE").write_text(member(archives["vega"], "LICENSE"), encoding="utf8")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {', '.join(versions)}")


if __name__ == "__main__":
    main()
