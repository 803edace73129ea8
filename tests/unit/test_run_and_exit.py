"""components.errors.run_and_exit: a stage ends without the interpreter's teardown, and loses nothing
that teardown would have done (threads, atexit handlers, finalizers, buffered output, exit code)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.processes import processes_with_env, wait_until

_STAGE = """
import atexit, pathlib, sys, tempfile, threading, time, weakref
from components.errors import UserError, exit_on_user_error, run_and_exit

out = pathlib.Path(sys.argv[1])
how = sys.argv[2]

@exit_on_user_error
def main():
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    def late_writer():
        time.sleep(0.5)
        (out / "thread").write_text("joined")
    threading.Thread(target=late_writer).start()  # not a daemon: the interpreter would wait for it
    scratch = tempfile.TemporaryDirectory(dir=out)  # removed by its weakref.finalize at exit
    (out / "scratch").write_text(scratch.name)
    print("buffered line, never flushed by the stage")  # a pipe: block-buffered
    if how == "user_error":
        raise UserError("the params say no")
    if how == "exit_message":
        sys.exit("a message instead of a code")
    if how == "crash":
        raise RuntimeError("a bug")
    return {"none": None, "code3": 3}[how]

run_and_exit(main)
"""


def _run(tmp_path: Path, how: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _STAGE, str(tmp_path), how], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize(("how", "code", "stderr"), [
    ("none", 0, ""),
    ("code3", 3, ""),
    ("user_error", 2, "error: the params say no"),
    ("exit_message", 1, "a message instead of a code"),
])
def test_the_exit_keeps_the_code_and_what_teardown_would_do(tmp_path, how, code, stderr):
    proc = _run(tmp_path, how)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip() == stderr
    assert proc.stdout == "buffered line, never flushed by the stage\n"
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not Path((tmp_path / "scratch").read_text()).exists()


def test_an_exception_ends_the_process_as_python_does(tmp_path):
    proc = _run(tmp_path, "crash")
    assert proc.returncode == 1
    assert proc.stderr.rstrip().endswith("RuntimeError: a bug") and "Traceback" in proc.stderr
    assert (tmp_path / "thread").read_text() == "joined" and (tmp_path / "atexit").read_text() == "ran"


_RAY_STAGE = """
import sys
from components.errors import run_and_exit
from components.runtime import ray_init

def main():
    ray_init(num_cpus=1)  # a local Ray, as a stage with Ray Train workers starts; Ray's atexit stops it

run_and_exit(main)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_local_ray_is_shut_down_before_the_process_ends():
    # short: ray_init puts Ray's temp dir (unix sockets) under it
    with tempfile.TemporaryDirectory(prefix="cl", dir="/tmp") as tmp:
        root = Path(tmp)
        (root / "params.yaml").write_text("{}\n")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(PYTHONPATH=str(REPO), COURSELAB_ROOT=str(root))
        proc = subprocess.run([sys.executable, "-c", _RAY_STAGE], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        marker = f"COURSELAB_ROOT={root}"

        def left() -> list[str]:
            return processes_with_env(marker)

        wait_until(lambda: not left(), guard_s=30)  # Ray's shutdown signals its processes; they exit in their own time
        assert not left(), left()
