"""Browser-tier fixtures: Debian's headless Chromium through Selenium, an MLflow store with a few
runs, the MLflow UI started by the real `make dashboard`, and a folder for screenshots.

Selenium talks to /usr/bin/chromedriver directly (Selenium Manager downloads nothing); Chromium gets
a fresh profile and the flags that keep it from reaching for the network. Screenshots are written
to build/test-artifacts/browser/ (ignored by git) for a person to look at after the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "build" / "test-artifacts" / "browser"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

browser_tier = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason=f"{CHROMIUM} or {CHROMEDRIVER} missing (as root: make browser, "
                              "or apt-get install chromium chromium-driver)"),
]

# The store the dashboard serves and the report links into: one experiment, three finished runs.
STORE_RUNS = {"fcn": 0.61, "unet": 0.81, "segnet": 0.32}  # final val/miou (3 significant digits: the UI rounds)
STORE_EPOCHS = 3
SUPERSEDED_MIOU = 0.5  # an earlier repro's unet run: no longer current


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for old in ARTIFACTS.glob("*.png"):  # the folder shows this run's screenshots only
        old.unlink()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def screenshot(driver, name: str, full_page: bool = False) -> Path:
    """Save a PNG of the current page under ARTIFACTS and check it was written."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    if full_page:  # headless Chromium captures the window: grow it to the page's height
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], min(int(height) + 50, 12000))
    try:
        assert driver.save_screenshot(str(path)), f"screenshot {path} failed"
    finally:
        if full_page:
            driver.set_window_size(size["width"], size["height"])
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, f"{path} is not a PNG screenshot"
    return path


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> dict:
    """A temporary SQLite MLflow store with experiment `segmentation`: a run per STORE_RUNS model,
    each its stage's current run (components/tracking.py's mark_current, which also writes the
    experiment's saved view), and an earlier `unet` run they superseded (SUPERSEDED_MIOU)."""
    import mlflow
    from mlflow.entities import Metric, Param

    from components import tracking

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("segmentation", artifact_location=(root / "artifacts").as_uri(),
                                             tags={tracking.KIND_TAG: tracking.MODEL_TRAINING})  # as ensure_experiment
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # mark_current's client
    run_ids, superseded = {}, ""
    try:
        for model, miou in (("unet", SUPERSEDED_MIOU), *STORE_RUNS.items()):
            run = client.create_run(experiment_id, run_name=model, tags={
                "courselab.model": model, tracking.STAGE_TAG: f"train_segmentation@{model}"})
            now = int(time.time() * 1000)
            metrics = [Metric("val/miou", round(miou * epoch / STORE_EPOCHS, 3), now, epoch)
                       for epoch in range(1, STORE_EPOCHS + 1)]
            metrics += [Metric("train/loss", round(1.0 / epoch, 3), now, epoch)
                        for epoch in range(1, STORE_EPOCHS + 1)]
            client.log_batch(run.info.run_id, metrics=metrics,
                             params=[Param("model.name", model), Param("model.lr", "0.003"), Param("seed", "0")])
            for name in ("summary.json", "params.json"):  # every train run logs these (pipelines/train.py)
                client.log_text(run.info.run_id, f'{{"model": "{model}"}}\n', name)
            client.set_terminated(run.info.run_id)
            tracking.mark_current(client.get_run(run.info.run_id))
            superseded = run_ids.get(model, superseded)
            run_ids[model] = run.info.run_id
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return {"uri": uri, "path": root / "mlflow.db", "experiment_id": experiment_id, "run_ids": run_ids,
            "superseded": superseded}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> Dashboard:
        """Block until the server answers /health (MLflow 3 takes ~10-30 s on 2 busy cores)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"make dashboard exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"make dashboard did not answer on {self.url} within {timeout:.0f}s:\n{self.output()[-3000:]}")


@pytest.fixture(scope="session")
def dashboard(mlflow_store, tmp_path_factory):
    """`make dashboard` on a free port over the temporary store, started at once (call ``.wait()``
    before using it) in its own process group, which is stopped at teardown: MLflow's job runner
    outlives a kill of the server's pid alone."""
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard") / "make-dashboard.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    command = [
        "make", "--no-print-directory",
        "-o", ".venv/.installed",  # the venv is this interpreter's: do not reinstall it from the test
        "dashboard", f"PORT={port}", f"MLFLOW_DB={mlflow_store['path']}", f"BIN={Path(sys.executable).parent}",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    yield Dashboard(f"http://127.0.0.1:{port}", process, log)
    _signal_group(process.pid, signal.SIGTERM)  # make, mlflow, uvicorn and the job runner share the group
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)  # whatever is left of the group
    process.wait(timeout=10)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, keep a screenshot of where the browser was (``failed-<test>.png``)."""
    outcome = yield
    report = outcome.get_result()
    browser = item.funcargs.get("driver") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and browser is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"failed-{item.name}.png"))
