"""A training stage's MLflow run, driven from a child process that owns MLflow's client.

    with TrackingProcess.start() as tracker:      # first thing in the stage: the child imports MLflow
        ...                                       # meanwhile this process imports torch, loads data
        tracker.open_run(experiment, run_key, run_name, params, tags)
        tracker.log_metrics({"val/miou": 0.8}, step=1)
        tracker.log_png(png_bytes, "figures/epoch_001/masks.png")
        tracker.run_id                            # waits for the run to exist

Why a process: importing MLflow and opening its SQLAlchemy store costs a stage ~2 s of CPU
before its first batch (``bench/stage_overhead.py``). In a child process that work runs on the
second core while the stage imports torch, so it leaves the stage's critical path; the run's
logging (SQLite writes, artifact copies) leaves the training loop's thread as well.

What it does is :mod:`components.tracking`'s conventions, unchanged: :func:`~components.tracking.
open_training_run` (re-open the newest run with the same key, log params once, tag) and
:class:`~components.tracking.RunLogger` (metrics, PNG figures, artifacts by run id).

Protocol: pickled requests ``(op, args)`` over a socket pair (``multiprocessing.connection``'s
length-prefixed frames). Logging requests get no answer; a request that fails makes the child
send ``("error", user, message)`` and the next call in this process raises it (a
:class:`~components.errors.UserError` for MLflow's own one-line errors), so a failed write stops
the stage at its next log call, as an in-process client would, without waiting on every write.
``run_id`` and ``close`` wait for their answer. The child ends the run FINISHED or FAILED as
``close`` says; if this process dies first (SIGKILL), the child reads end-of-file, ends the run
KILLED and exits. The child ignores SIGINT: Ctrl-C reaches this process, whose ``close`` ends the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from components.errors import UserError

STATUSES = ("FINISHED", "FAILED", "KILLED")


class TrackingProcess:
    """This process's end of the child that owns the run (see the module docstring)."""

    def __init__(self, proc: subprocess.Popen, conn: Connection):
        self._proc = proc
        self._conn = conn
        self._run_id: str | None = None
        self._closed = False

    @classmethod
    def start(cls) -> TrackingProcess:
        """Start the child (``python -m components.tracking_process <fd>``) with this process's
        environment: call :func:`components.tracking.configure_environment` first."""
        ours, theirs = socket.socketpair()
        with ours, theirs:
            proc = subprocess.Popen(
                [sys.executable, "-m", __spec__.name, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
            return cls(proc, Connection(os.dup(ours.fileno())))

    # --- requests -----------------------------------------------------------------------------

    def _send(self, op: str, *args: Any) -> None:
        if self._closed:
            raise RuntimeError(f"the MLflow run is closed; cannot {op}")
        self._raise_pending()
        try:
            self._conn.send((op, args))
        except OSError:
            self._raise_gone()

    def _answer(self) -> Any:
        """Wait for the next answer (earlier logging errors come first and are raised)."""
        try:
            kind, *rest = self._conn.recv()
        except (EOFError, OSError):
            self._raise_gone()
        if kind == "error":
            _raise(*rest)
        return rest[0]

    def _raise_pending(self) -> None:
        try:
            pending = self._conn.poll()
        except OSError:
            pending = False
        if pending:
            self._answer()

    def _raise_gone(self) -> None:
        code = self._proc.wait(timeout=10)
        self._closed = True
        raise RuntimeError(f"the MLflow tracking process exited (code {code}) before the run was closed; "
                           "its error is printed above")

    def open_run(self, experiment: str, run_key: str, run_name: str, params: Mapping[str, Any],
                 tags: Mapping[str, str]) -> None:
        """Open (or re-open) the run, as :func:`components.tracking.open_training_run` (no waiting)."""
        self._send("open_run", experiment, run_key, run_name, dict(params), dict(tags))

    @property
    def run_id(self) -> str:
        """The run's id, once the child has opened it (waits)."""
        if self._run_id is None:
            self._send("run_id")
            self._run_id = self._answer()
        return self._run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._send("log_metrics", {k: float(v) for k, v in metrics.items()}, step)

    def log_png(self, png: bytes, artifact_file: str) -> None:
        self._send("log_png", png, artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        self._send("log_bytes", data, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._send("log_artifact", str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._send("set_tags", {k: str(v) for k, v in tags.items()})

    def log_model(self, family: str, model: str, export_path: Path) -> None:
        """The trained network as a registered MLflow model (components/model_logging.py)."""
        self._send("log_model", family, model, str(export_path))

    def close(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` once every earlier request is done; the child exits."""
        if self._closed:
            return
        try:
            self._send("close", status)
            self._answer()
        finally:
            self._closed = True
            self._conn.close()
            self._proc.wait()

    def __enter__(self) -> TrackingProcess:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close("FINISHED")
        else:
            try:
                self.close("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
            except Exception:  # noqa: BLE001 - the stage's own error is the one to report
                pass
        return False


def _raise(user: bool, message: str):
    raise (UserError if user else RuntimeError)(message)


# --- the child ----------------------------------------------------------------------------------


class _Run:
    """The child's side: one run and its logger; each request is the method of the same name."""

    def __init__(self):
        self.run = None
        self.logger = None

    def open_run(self, experiment, run_key, run_name, params, tags) -> None:
        from components.tracking import RunLogger, open_training_run

        self.run = open_training_run(experiment, run_key, run_name, params, tags)
        self.logger = RunLogger(self.run.info.run_id)

    def run_id(self) -> str:
        return self.run.info.run_id

    def log_metrics(self, metrics, step) -> None:
        self.logger.log_metrics(metrics, step)

    def log_png(self, png, artifact_file) -> None:
        self.logger.log_png(png, artifact_file)

    def log_bytes(self, data, artifact_file) -> None:
        self.logger.log_bytes(data, artifact_file)

    def log_artifact(self, path, artifact_path) -> None:
        self.logger.log_artifact(Path(path), artifact_path)

    def set_tags(self, tags) -> None:
        self.logger.set_tags(tags)

    def log_model(self, family, model, export_path) -> None:
        from components.model_logging import log_trained_model

        log_trained_model(family, model, Path(export_path))

    def close(self, status) -> None:
        from components.tracking import end_training_run

        if self.run is not None:
            end_training_run(status)
            self.run = None


def serve(conn: Connection) -> None:
    """Answer requests until ``close`` or end-of-file (this process's parent is gone)."""
    # Import what open_run needs while the stage imports torch. Opening the store waits for
    # open_run: a stage that fails before it (missing data) leaves no store behind.
    import mlflow  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    import components.tracking  # noqa: F401

    state = _Run()
    failed = False
    while True:
        try:
            op, args = conn.recv()
        except EOFError:
            state.close("KILLED")
            return
        if op == "close":
            state.close(args[0] if args[0] in STATUSES else "FAILED")
            conn.send(("ok", None))
            return
        if failed:  # the stage raises the first error at its next call and closes the run
            continue
        try:
            result = getattr(state, op)(*args)
        except Exception as err:  # noqa: BLE001 - sent to the stage, which raises it
            failed = True
            conn.send(("error", isinstance(err, UserError), _one_line(op, err)))
            continue
        if op == "run_id":
            conn.send(("ok", result))


def _one_line(op: str, err: Exception) -> str:
    if isinstance(err, UserError):
        return str(err)
    message = getattr(err, "message", None) or str(err)
    return f"MLflow {op} failed: {type(err).__name__}: {message}"


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stage's to handle: it closes the run
    serve(Connection(int(sys.argv[1])))
    # Every request was done synchronously and the run is ended: skip the interpreter's exit
    # handlers (MLflow's telemetry and store teardown took ~0.5 s, which the stage would wait for).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
