"""Benchmark: the default pipeline's wall time stage by stage, against the embedded budget.

    python -m bench.repro_stages [--log FILE] [--append] [-- TARGET ...]

Runs ``dvc repro [TARGET ...]`` in the current repository (or, with ``--log``, reads the output of
one run whose every line starts with the seconds since it began, as ``make repro | <timestamper>``
writes it) and times each stage from its ``Running stage '<name>':`` line to the next stage's (or
the end): the stage's command and DVC's own hashing and caching of its outputs; a stage without
DVC's ``Updating lock file`` line (a run stopped mid-stage) is left out. Stages DVC skipped
(unchanged) take no time. Prints, per family (its tune, train and extra stages, from the registry),
the stages run, their total and the slowest, then the pipeline's total, with every stage over the
per-stage budget named (train and rl stages: ``<stage>@<model>``). ARCHITECTURE.md's embedded
budget: each model's stage <= 180 s on 2 cores, the whole default ``dvc repro`` <= 60 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from bench.rows import emit
from components.families import FAMILIES

STAGE_BUDGET_S = 180.0
PIPELINE_BUDGET_S = 60 * 60.0
RUNNING = re.compile(r"Running stage '([^']+)'")
LOCKED = "Updating lock file"  # DVC's line once a stage has finished
PIPELINE = "pipeline"  # prepare and report: no family's


def owners() -> dict[str, str]:
    """Stage name (before any ``@``) -> the family that owns it."""
    owned = {"prepare": PIPELINE, "report": PIPELINE}
    for family in FAMILIES.values():
        owned[family.stage] = family.name
        owned[f"tune_{family.name}"] = family.name
        for stage in family.extra_stages:
            owned[stage.name] = family.name
    return owned


def stage_times(lines: Iterable[tuple[float, str]]) -> tuple[dict[str, float], float]:
    """``({stage: seconds}, total seconds)`` from ``(seconds since start, line)`` pairs; the total
    runs from the first stage's start to the last line (not ``make``'s venv before it). A stage
    counts once DVC has written its lock entry: a run stopped mid-stage leaves that stage out."""
    times: dict[str, float] = {}
    current, first, started, last, finished = None, None, 0.0, 0.0, False
    for at, line in lines:
        match = RUNNING.search(line)
        if match:
            if current is not None and finished:
                times[current] = at - started
            current, started, finished = match.group(1), at, False
            first = at if first is None else first
        finished = finished or LOCKED in line
        last = at
    if current is not None and finished:
        times[current] = last - started
    return times, last - (first or 0.0)


def read_log(path: Path) -> list[tuple[float, str]]:
    """``(seconds, line)`` from a log whose lines start with the seconds since the run began."""
    pairs = []
    for raw in path.read_text(errors="replace").splitlines():
        head, _, rest = raw.partition(" ")
        try:
            pairs.append((float(head), rest))
        except ValueError:
            continue  # a line without a timestamp (continued output)
    return pairs


def run_repro(targets: list[str]) -> list[tuple[float, str]]:
    """Runs ``dvc repro`` and timestamps its output lines as they arrive (echoing them)."""
    started = time.perf_counter()
    pairs = []
    proc = subprocess.Popen(["dvc", "repro", *targets], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        pairs.append((time.perf_counter() - started, line.rstrip("\n")))
        print(line, end="", flush=True)
    if proc.wait() != 0:
        sys.exit(f"dvc repro failed with exit code {proc.returncode}")
    pairs.append((time.perf_counter() - started, ""))
    return pairs


def table(times: dict[str, float], total: float) -> list[str]:
    """Markdown rows: one per family, then the total; stages over the budget named."""
    owned = owners()
    families: dict[str, list[tuple[str, float]]] = {}
    for stage, seconds in times.items():
        families.setdefault(owned.get(stage.split("@")[0], PIPELINE), []).append((stage, seconds))
    today, machine = date.today().isoformat(), f"{platform.machine()}, {os.cpu_count()} cores"
    rows = []
    for family, stages in sorted(families.items(), key=lambda item: -sum(s for _, s in item[1])):
        slowest = max(stages, key=lambda item: item[1])
        over = [f"{name} {seconds:.0f}" for name, seconds in stages if seconds > STAGE_BUDGET_S and "@" in name]
        rows.append(f"| {today} | {family} | {len(stages)} | {sum(s for _, s in stages) / 60:.1f} | "
                    f"{slowest[0]} {slowest[1]:.0f} | {', '.join(over) or '-'} | {machine} |")
    verdict = "within" if total <= PIPELINE_BUDGET_S else "over"
    rows.append(f"| {today} | **all** | {len(times)} | **{total / 60:.1f}** | | {verdict} the 60-minute budget "
                f"| {machine} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="a timestamped `dvc repro` log instead of running it")
    parser.add_argument("--append", action="store_true", help="append the rows to BENCHMARKS.md")
    parser.add_argument("targets", nargs="*", help="dvc repro targets (default: the whole pipeline)")
    args = parser.parse_args(argv)
    if args.log is not None and not args.log.is_file():
        sys.exit(f"{args.log} not found")
    pairs = read_log(args.log) if args.log is not None else run_repro(args.targets)
    times, total = stage_times(pairs)
    if not times:
        sys.exit("no stage ran (no `Running stage` line): everything was up to date")
    emit(table(times, total), args.append)


if __name__ == "__main__":
    main()
