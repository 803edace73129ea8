"""Hostile services and processes (issue 21, probes 5 and 6; probe 4's configs are in
test_cluster_config.py): an unreachable MLflow server fails a stage in one line before Ray starts,
secrets stay out of the Ray workers' environment, a stage whose parent (DVC) dies stops, and a
rerun of a finished run continues that run. No timed assertions: subprocess timeouts are guards."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from components import runtime, tracking
from components.errors import UserError
from tests.conftest import REPO, run_env
from tests.processes import alive, processes_with_env, wait_until


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stage(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=root, env=env,
                          timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- probe 5: an unreachable tracking server ----------------------------------------------------


def _prepare_scenes(root: Path) -> None:
    """Only the dataset train segmentation reads (prepare.main builds all of them)."""
    from components.config import load_params
    from components.runtime import resolve
    from pipelines.prepare import _build, build_scenes

    params = load_params(root / "params.yaml")
    data = params.data
    _build("scenes", root=resolve(data.root), keep=(), builder=lambda out: build_scenes(
        out, seed=params.seed, val_fraction=data.digits.val_fraction, test_fraction=data.digits.test_fraction,
        **data.scenes.model_dump()))


def test_closed_port_fails_the_train_stage_in_one_line_before_ray_starts(workdir, tiny_params):
    tiny_params["segmentation"]["trainer"]["num_workers"] = 1  # the stage would start Ray
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    _prepare_scenes(workdir)
    uri = f"http://127.0.0.1:{_closed_port()}"
    env = {**run_env(workdir), "MLFLOW_TRACKING_URI": uri}
    line = _one_error_line(_stage(workdir, "pipelines.train", "segmentation", "unet", env=env))
    assert f"MLflow tracking server {uri} is unreachable" in line and "MLFLOW_TRACKING_URI" in line
    assert "Ray" not in line  # the one line is MLflow's; Ray printed nothing, it never started
    assert not (workdir / "metrics").exists() and not (workdir / "models").exists()


def test_https_uri_with_a_bad_host_fails_in_one_line(workdir):
    uri = "https://courselab-no-such-host.invalid/mlflow"
    line = _one_error_line(_stage(workdir, "pipelines.rl", "value_iteration",
                                  env={**run_env(workdir), "MLFLOW_TRACKING_URI": uri}))
    assert f"MLflow tracking server {uri} is unreachable" in line
    assert not (workdir / "metrics").exists()


def test_a_password_in_the_uri_is_not_printed(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")  # registered for undo
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    with pytest.raises(UserError) as err:
        tracking.configure(f"http://alice:s3cret@127.0.0.1:{_closed_port()}")
    assert "s3cret" not in str(err.value) and "alice:***@127.0.0.1" in str(err.value)


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path.endswith("/health") else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status = 200


def test_a_live_server_passes_and_mlflow_http_requests_are_capped(health_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "placeholder")  # configure sets these; undo them after
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")  # a user's choice is kept
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "x")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT")
    uri = f"http://127.0.0.1:{health_server.server_port}"
    assert tracking.configure(uri) == uri
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == tracking.HTTP_ENV["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert {"MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_TRACKING_URI"} <= set(runtime.forwarded_env())


def test_a_server_answering_503_is_unreachable(health_server):
    _Health.status = 503
    with pytest.raises(UserError, match="answered HTTP 503"):
        tracking.check_server(f"http://127.0.0.1:{health_server.server_port}")


# --- probe 4: what Ray workers get ----------------------------------------------------------------


def test_only_the_allow_listed_variables_reach_ray_workers(monkeypatch):
    import ray

    secrets = {"MLFLOW_TRACKING_TOKEN_SECRET": "t", "MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_TOKEN": "b",
               "DVC_STUDIO_TOKEN": "d", "COURSELAB_API_KEY": "k", "AWS_SECRET_ACCESS_KEY": "a"}
    wanted = {"MLFLOW_TRACKING_URI": "http://head:5000", "COURSELAB_ROOT": "/repo", "COURSELAB_FAIL_ONCE": "2:2:x"}
    for key in runtime.FORWARDED_ENV:  # what the caller's shell set (e.g. OMP_WAIT_POLICY for make test)
        monkeypatch.delenv(key, raising=False)
    for key, value in {**secrets, **wanted}.items():
        monkeypatch.setenv(key, value)
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(runtime, "_check_reachable", lambda address: None)
    runtime.ray_init("10.0.0.1:6379")
    assert seen["runtime_env"]["env_vars"] == wanted


# --- probe 6: a stage whose parent dies stops -----------------------------------------------------

_STAGE = """
import sys, time, pathlib
from components.errors import exit_on_user_error

@exit_on_user_error
def main():
    if len(sys.argv) > 2:  # start a local Ray as a stage with Ray Train workers does
        from components.runtime import ray_init
        ray_init(num_cpus=1)
    pathlib.Path(sys.argv[1]).write_text("ready")
    time.sleep(600)

main()
"""
# The stand-in for dvc: starts the stage, says its pid, waits on it.
_PARENT = """
import subprocess, sys
stage = subprocess.Popen([sys.executable, "-c", *sys.argv[1:]])
print(stage.pid, flush=True)
stage.wait()
"""


def _start_stage(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, int]:
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, _STAGE, str(ready), *extra], cwd=REPO,
                              env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    stage = int(parent.stdout.readline())
    assert wait_until(ready.exists), parent.stderr.read() if parent.poll() is not None else "stage not ready"
    return parent, stage


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_STAGE", "COURSELAB_EXIT_WITH_PARENT")}
    return {**env, **extra}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("trigger", [{"COURSELAB_EXIT_WITH_PARENT": "1"}, {"DVC_STAGE": "train_x@y"}],
                         ids=["flag", "dvc"])
def test_stage_stops_when_its_parent_is_killed(tmp_path, trigger):
    parent, stage = _start_stage(tmp_path, _clean_env(**trigger))
    try:
        parent.kill()  # SIGKILL: no chance to stop its child itself
        parent.wait(timeout=30)
        assert wait_until(lambda: not alive(stage)), "the stage outlived its parent"
        message = parent.stderr.read()  # the stage held the pipe until it exited
        assert f"error: the parent process (pid {parent.pid}) is gone; stopping this stage" in message
    finally:
        if alive(stage):
            os.kill(stage, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_interactive_run_outlives_its_parent(tmp_path):
    parent, stage = _start_stage(tmp_path, _clean_env())
    try:
        parent.kill()
        parent.wait(timeout=30)
        time.sleep(2 * 1.0 + 1)  # two watchdog polls, were there one
        assert alive(stage)
    finally:
        os.kill(stage, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stage_with_a_local_ray_leaves_no_ray_process_behind(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="cl", dir="/tmp"))  # short: ray_init puts Ray's temp dir under it
    (root / "params.yaml").write_text("{}\n")
    env = _clean_env(COURSELAB_EXIT_WITH_PARENT="1", COURSELAB_ROOT=str(root))
    env.pop("RAY_ADDRESS", None)
    parent, stage = _start_stage(tmp_path, env, "ray")
    marker = f"COURSELAB_ROOT={root}"
    try:
        assert any("raylet" in p for p in processes_with_env(marker)), processes_with_env(marker)
        parent.kill()
        parent.wait(timeout=30)
        assert wait_until(lambda: not alive(stage)), "the stage outlived its parent"
        assert wait_until(lambda: not processes_with_env(marker)), processes_with_env(marker)
    finally:
        if alive(stage):
            os.kill(stage, signal.SIGKILL)


# --- probe 6b: a rerun of a finished run continues it ---------------------------------------------


def test_rerun_of_a_finished_run_reuses_it_with_its_history(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("COURSELAB_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    uri = tracking.configure()
    ids = []
    for epoch in (1, 2):  # the first run finishes; the rerun (same key) adds epoch 2
        with tracking.training_run("probe", "probe-key", "model", {"lr": 0.1, "depth": None},
                                   {"courselab.model": "model"}) as run:
            mlflow.log_metric("val/loss", 1.0 / epoch, step=epoch)
            ids.append(run.info.run_id)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("probe").experiment_id])
    assert ids == [run.info.run_id] * 2
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]
    assert run.data.params == {"lr": "0.1", "depth": "None"}
    assert run.data.tags[tracking.RUN_KEY_TAG] == "probe-key"
