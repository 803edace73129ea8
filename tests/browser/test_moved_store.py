"""`make dashboard` over a store that moved with its repository serves the runs' figures from the
new place (MLflow recorded the old absolute path; components/tracking_relocate.py follows the move)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from tests.browser.conftest import Dashboard, _free_port, _signal_group, browser_tier
from tests.conftest import REPO

pytestmark = browser_tier


def test_the_dashboard_serves_a_moved_stores_figures(tmp_path):
    import signal

    import mlflow

    first, moved = tmp_path / "repo", tmp_path / "elsewhere" / "repo"
    first.mkdir()
    client = mlflow.MlflowClient(f"sqlite:///{first / 'mlflow.db'}")
    experiment = client.create_experiment("segmentation",
                                          artifact_location=(first / "mlartifacts" / "segmentation").as_uri())
    run = client.create_run(experiment, run_name="unet")
    figure = tmp_path / "masks.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\nthe figure")
    client.log_artifact(run.info.run_id, str(figure), "figures/epoch_001")
    client.set_terminated(run.info.run_id)
    moved.parent.mkdir()
    shutil.move(first, moved)

    port = _free_port()
    log = tmp_path / "make-dashboard.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "dashboard", f"PORT={port}",
             f"MLFLOW_DB={moved / 'mlflow.db'}", f"BIN={Path(sys.executable).parent}"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    dashboard = Dashboard(f"http://127.0.0.1:{port}", process, log)
    try:
        dashboard.wait()
        query = urllib.parse.urlencode({"path": "figures/epoch_001/masks.png", "run_uuid": run.info.run_id})
        with urllib.request.urlopen(f"{dashboard.url}/get-artifact?{query}", timeout=30) as response:
            assert response.status == 200 and response.read().endswith(b"the figure")
        assert "now reads its artifacts from" in dashboard.output()
    finally:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
