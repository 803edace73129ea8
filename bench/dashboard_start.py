"""Benchmark: `make dashboard`'s start-up with MLflow's server defaults and with ours, side by side.

    python -m bench.dashboard_start [--repeats N] [--append]

Each setting starts the real ``make dashboard`` (``-o .venv/.installed``: the venv is not rebuilt)
on a free port over an empty temporary SQLite store, in its own session, and measures

- answer: seconds until ``/health`` answers 200;
- cpu: CPU seconds the whole machine spent from the start until 5 s after the answer (from
  ``/proc/stat``: run it on an otherwise idle machine), which counts the server's worker processes
  and the job runner's consumers however they were started;
- rss: the resident memory of the session's processes, 5 s after the answer;
- processes: how many processes the session holds then.

Settings: ``mlflow`` is MLflow 3's own (``DASHBOARD_WORKERS=4 MLFLOW_JOBS=true``: 4 uvicorn workers,
and the job runner with its huey consumers for the GenAI judges and trace roll-ups); ``ours`` the
Makefile's (one worker, no job execution). They alternate, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

from bench.rows import emit
from bench.suite_cpu import busy_cpu_s

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"mlflow": ["DASHBOARD_WORKERS=4", "MLFLOW_JOBS=true"], "ours": []}
SETTLE_S = 5.0


def _session(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                pids.append(int(entry.name))
    return pids


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(setting: str, store: Path, log: Path) -> dict[str, float]:
    port = _free_port()
    cpu0, t0 = busy_cpu_s(), time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "dashboard",
                                 f"PORT={port}", f"MLFLOW_DB={store}", *SETTINGS[setting]],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"make dashboard exited with {proc.returncode}: see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        answered = time.perf_counter() - t0
        time.sleep(SETTLE_S)
        pids = _session(proc.pid)
        return {"answer": answered, "cpu": busy_cpu_s() - cpu0, "rss": _rss_mib(pids), "processes": len(pids)}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        for pid in _session(proc.pid):  # whatever outlived make (the job runner's consumers)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--append", action="store_true", help="append the rows to BENCHMARKS.md")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for setting in SETTINGS:
                store = Path(tmp) / f"{setting}-{repeat}.db"
                results[setting].append(start_once(setting, store, Path(tmp) / f"{setting}-{repeat}.log"))
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    rows = []
    for setting, runs in results.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rows.append(f"| {date.today()} | {setting} ({' '.join(SETTINGS[setting]) or 'Makefile defaults'}) | "
                    f"{' / '.join(f'{answer:.1f}' for answer in (run['answer'] for run in runs))} | {med['cpu']:.1f} | "
                    f"{med['rss']:.0f} | "
                    f"{med['processes']:.0f} | {machine} |")
    ours, theirs = (statistics.median(run["answer"] for run in results[s]) for s in ("ours", "mlflow"))
    rows.append(f"| {date.today()} | answer time mlflow/ours | {theirs / ours:.2f}x | | | | {machine} |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
