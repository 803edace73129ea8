"""Benchmark: where a command's CPU goes, by kind of process (for `make test` and `dvc repro`).

    python -m bench.suite_cpu [--interval 0.5] [--top 25] -- make test

Runs the command and polls ``/proc`` every ``interval`` seconds meanwhile. Every process seen gets
the CPU time (user + system) it used while seen: for one that started during the run, its whole
CPU time at the last poll; for one that was already running, the difference. Processes are grouped
by kind: a stage (``python -m pipelines.train``), MLflow's tracking child, Ray's workers and
daemons, DVC, the MLflow server's workers, chromium, the pytest workers (with their forks). Ray's
workers and the server's processes are not children of the command once their parent exits, so
``time make test`` misses them; this counts them. A process that lives less than ``interval`` may
be missed, and each process's last fraction of a poll is: the total is a lower bound. The machine's
whole busy time over the run (``/proc/stat``) is printed beside it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
# (kind, pattern over the command line), first match wins: the pytest workers' pattern comes last, since
# a Ray worker's command line names its session folder, under pytest's temporary directory in the tests
KINDS = [
    ("stage {}", r"-m (pipelines\.\w+)"),
    ("MLflow tracking child", r"-m components\.tracking_process"),
    ("Ray worker", r"ray/_private/workers/|^ray::"),
    ("Ray daemons", r"ray/(core|dashboard|autoscaler|_private)|gcs_server|raylet"),
    ("dvc {}", r"bin/dvc (\w+)|-m dvc (\w+)"),
    ("MLflow server", r"mlflow|uvicorn|huey|multiprocessing\.spawn"),
    ("chromium", r"chrom"),
    ("pip", r"-m pip"),
    ("git", r"(^|/)git "),
    ("pytest workers (and their forks)", r"pytest|execnet|exec\(eval\(sys\.stdin"),
]


def _kind(cmdline: str) -> str:
    for name, pattern in KINDS:
        match = re.search(pattern, cmdline)
        if match:
            group = next((g for g in match.groups() if g), "") if match.groups() else ""
            return name.format(group)
    return "other: " + (cmdline.split(" ")[0].rsplit("/", 1)[-1] or "(kernel)")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / HZ


def _poll(seen: dict[str, list], first: bool, me: int) -> None:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            key = f"{entry.name}:{fields[19]}"  # pid and start time: a reused pid is another process
            cpu = (int(fields[11]) + int(fields[12])) / HZ
            if key in seen:
                seen[key][2] = cpu
            else:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                seen[key] = [cmdline.strip(), cpu if first else 0.0, cpu]
        except (OSError, ValueError, IndexError):
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", type=Path, help="write every process seen (command line, CPU s) as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python -m bench.suite_cpu -- make test)")
    seen: dict[str, list] = {}
    _poll(seen, first=True, me=os.getpid())
    busy0, t0 = busy_cpu_s(), time.perf_counter()
    proc = subprocess.Popen(command)
    while proc.poll() is None:
        time.sleep(args.interval)
        _poll(seen, first=False, me=os.getpid())
    wall, busy = time.perf_counter() - t0, busy_cpu_s() - busy0
    kinds: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for cmdline, cpu0, cpu in seen.values():
        if cpu > cpu0:
            kind = kinds[_kind(cmdline)]
            kind[0] += 1
            kind[1] += cpu - cpu0
    total = sum(cpu for _, cpu in kinds.values())
    if args.save:
        args.save.write_text(json.dumps([[cmdline, cpu - cpu0] for cmdline, cpu0, cpu in seen.values() if cpu > cpu0]))
    print(f"\n{' '.join(command)}: exit {proc.returncode}, {wall:.0f} s; the machine busy {busy:.0f} CPU-s "
          f"({busy / wall:.2f} cores); processes seen {total:.0f} CPU-s")
    print(f"{'CPU s':>8} {'share':>6} {'procs':>6}  kind")
    for name, (count, cpu) in sorted(kinds.items(), key=lambda item: -item[1][1])[:args.top]:
        print(f"{cpu:8.1f} {cpu / total:6.1%} {count:6d}  {name}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
