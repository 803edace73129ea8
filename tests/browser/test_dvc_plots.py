"""`dvc plots show` as a user opens it: the repository's dvc.yaml plots, drawn by the page the
repository's .dvc/config names (.dvc/plots/offline.html, Vega inlined), in Chromium with the network
off: every chart draws, none twice, and DVC warns of nothing."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.browser.conftest import browser_tier, screenshot
from tests.conftest import REPO

pytestmark = browser_tier


def _project(root: Path) -> list[str]:
    """A DVC project of the repository's dvc.yaml, params.yaml and plots page, with a three-row CSV for
    every file the plots read; returns the plots' titles."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    plots = yaml.safe_load((root / "dvc.yaml").read_text())["plots"]
    columns: dict[str, dict[str, None]] = {}
    for plot in plots:
        (spec,) = plot.values()
        for path, y in spec["y"].items():
            columns.setdefault(path, {})[spec["x"]] = None
            columns[path][y] = None
    for path, names in columns.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        with open(root / path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(list(names))
            writer.writerows([step, *[1.0 / step] * (len(names) - 1)] for step in (1, 2, 3))
    return [next(iter(plot)) for plot in plots]


def test_dvc_plots_show_draws_every_chart_offline(driver, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    titles = _project(tmp_path)
    shown = subprocess.run(["dvc", "plots", "show", "-o", "out"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "WARNING" not in shown.stderr and "failed" not in shown.stderr, shown.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "http://" not in page.split("<script>")[0]

    driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    try:
        driver.get((tmp_path / "out" / "index.html").as_uri())
        drawn = "return [...document.querySelectorAll('.vega-embed')].filter(e => e.querySelector('svg, canvas'))"
        WebDriverWait(driver, 60).until(lambda d: len(d.execute_script(drawn)) >= len(titles))
        charts = driver.execute_script(drawn + ".length")
        shown_titles = driver.execute_script(
            "return [...document.querySelectorAll('.vega-embed')].map(e => e.textContent)")
        screenshot(driver, "dvc-plots-offline")
    finally:
        driver.delete_network_conditions()
    assert charts == len(titles) == len(set(titles))  # every top-level plot once, no per-stage duplicates
    assert len(shown_titles) == len(titles)
