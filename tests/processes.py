"""Processes seen through /proc (Linux): whether one is alive, which ones a run left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"  # a zombie has exited; its new parent has not reaped it yet


def wait_until(condition, guard_s: float = 90.0) -> bool:
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def processes_with_env(entry: str) -> list[str]:
    """Live processes whose environment holds ``entry`` (Ray's raylet, GCS and workers inherit the
    driver's environment; workers rename themselves ``ray::IDLE``, so the command line can't tell)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if entry.encode() not in environ.read_bytes().split(b"\0") or not alive(int(environ.parent.name)):
                continue
            args = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        found.append(f"{environ.parent.name}: {args[:160]}")
    return found
