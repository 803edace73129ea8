"""The one exception type for mistakes a user can cause and fix (bad params, missing data, ...),
and the wrapper every stage's ``main`` runs under.

Entry points catch it and print its message as one line, exiting non-zero without a traceback.
Under DVC the wrapper also ties the stage to its parent process (:func:`exit_with_parent`): a
stage whose ``dvc`` was killed stops, instead of training on as an orphan that writes outputs DVC
no longer tracks. A stage's ``if __name__ == "__main__"`` runs its ``main`` through
:func:`run_and_exit`, which skips the interpreter's teardown of torch and Ray once the stage is done.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

# "1" ties the stage to its parent, "0" never does; unset: tie it when DVC runs it (DVC sets
# DVC_STAGE for every stage command), never in an interactive run.
EXIT_WITH_PARENT_ENV = "COURSELAB_EXIT_WITH_PARENT"
_POLL_S = 1.0  # how often the watchdog thread looks at the parent
_GRACE_S = 30.0  # after SIGTERM, how long the stage may take to clean up before SIGKILL
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_watched_parent: int | None = None


class UserError(Exception):
    """An expected, user-fixable failure; ``str(err)`` names the cause and the fix."""


def exit_on_user_error(main: Callable[..., int | None]) -> Callable[..., int | None]:
    """Wrap a CLI ``main`` so a :class:`UserError` prints ``error: <message>`` and exits 2.

    It first calls :func:`exit_with_parent`, so a stage run by DVC stops when DVC dies.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        exit_with_parent()
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def run_and_exit(main: Callable[[], int | str | None]) -> NoReturn:
    """A stage's ``if __name__ == "__main__"``: run ``main``, then end the process with its exit code
    without the interpreter's teardown.

    Tearing down a process that imported torch and Ray (collecting and freeing every module) took
    ~1.4 s after a stage's work was done, on each of the ~50 stages of a ``dvc repro``
    (BENCHMARKS.md, "Stage overhead"). What that teardown does that matters still runs, in
    interpreter order: non-daemon threads are joined, then the ``atexit`` handlers (Ray's shutdown of
    a local cluster this process started, ``logging``'s flush, multiprocessing's joins,
    ``weakref.finalize`` callbacks such as a ``TemporaryDirectory``'s cleanup), then stdout and stderr
    are flushed. Every output a stage writes is closed before ``main`` returns (atomic writes), and
    the MLflow child has ended its run (:mod:`components.tracking_process`). An exception other than
    ``SystemExit`` propagates as usual (traceback, normal exit); ``SystemExit`` keeps its code, as
    ``sys.exit`` would (a message: printed to stderr, code 1).
    """
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to deliver
            pass
    os._exit(code or 0)


def _requested() -> bool:
    value = os.environ.get(EXIT_WITH_PARENT_ENV)
    if value is not None:
        return value.strip().lower() not in ("", "0", "false", "no")
    return "DVC_STAGE" in os.environ


def _on_sigterm(signum, frame) -> None:
    """SIGTERM as an exception: ``finally`` blocks and ``atexit`` run (the MLflow run ends FAILED).
    ``ray.init`` installs its own handler that does the same (``sys.exit``), and its ``atexit``
    hook shuts down the local Ray this process started, raylet and workers with it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    gone = _watched_parent is not None and os.getppid() != _watched_parent
    reason = f"the parent process (pid {_watched_parent}) is gone" if gone else "SIGTERM"
    print(f"error: {reason}; stopping this stage", file=sys.stderr, flush=True)
    raise SystemExit(128 + signal.SIGTERM)


def _set_parent_death_signal() -> bool:
    """Linux: ask the kernel to send SIGTERM the moment the parent exits; whether it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, send_sigterm: bool) -> None:
    """Poll the parent; once it is gone, SIGTERM this process (unless the kernel already did:
    a second SIGTERM would interrupt the cleanup the first one started), then SIGKILL it if it
    is still here after the grace period."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    if send_sigterm:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)


def exit_with_parent() -> bool:
    """Stop this process when its parent dies, if asked to (see :data:`EXIT_WITH_PARENT_ENV`).

    Not for a process whose parent is already PID 1 (nothing to outlive). The parent's death sends
    SIGTERM: through ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` on Linux, else from a daemon thread that
    polls ``os.getppid()`` every second. SIGTERM raises ``SystemExit`` (this module's handler, or
    Ray's once ``ray.init`` ran), so the stage cleans up; the thread SIGKILLs it if it is still
    there after a grace period. Returns whether the watchdog is on. Idempotent.
    """
    global _watched_parent
    if _watched_parent is not None:
        return True
    if not _requested():
        return False
    parent = os.getppid()
    if parent <= 1:
        return False
    _watched_parent = parent
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    by_kernel = _set_parent_death_signal()
    if by_kernel and os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(parent, not by_kernel), name="courselab-exit-with-parent",
                     daemon=True).start()
    return True
