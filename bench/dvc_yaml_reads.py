"""Benchmark: DVC's YAML reads with ruamel.yaml's C parser (ruamel.yaml.clib) against its pure-Python one.

    python -m bench.dvc_yaml_reads [--repeats N] [--append]

DVC re-reads params.yaml for every stage with ``params`` (and dvc.yaml, dvc.lock, tuned/*.yaml) on each
``dvc status``, ``dvc repro`` and ``dvc exp run``; with ~1,400 lines of params that parsing is most of
what ``dvc status`` costs. Run from the root of a reproduced repository (dvc.lock present), the two
alternating ``repeats`` times in this one process: ``dvc status`` in-process with DVC's ``parse_yaml``
forced to ruamel's pure-Python loader, then as installed (the C parser when ruamel.yaml.clib is there).
Prints the YAML reads one status makes, the median wall of each and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import time
from datetime import date

from bench.rows import emit


def timed_status(pure: bool) -> tuple[float, int]:
    """One in-process ``dvc status -q``: (wall seconds, YAML files DVC parsed)."""
    from dvc.cli import main
    from dvc.utils.serialize import _yaml
    from ruamel.yaml import YAML

    original = _yaml.parse_yaml
    reads = 0

    def parse_yaml(text, path, typ="safe"):
        nonlocal reads
        reads += 1
        if not pure:
            return original(text, path, typ)
        return YAML(typ=typ, pure=True).load(text) or {}

    _yaml.parse_yaml = parse_yaml
    try:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            main(["status", "-q"])
        return time.perf_counter() - started, reads
    finally:
        _yaml.parse_yaml = original


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append", action="store_true", help="add the rows to BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not os.path.exists("dvc.lock"):
        raise SystemExit("no dvc.lock here: run from a reproduced repository (dvc repro first)")
    from ruamel.yaml import YAML

    parser_class = YAML(typ="safe").Parser.__name__
    walls: dict[bool, list[float]] = {True: [], False: []}
    reads = 0
    for _ in range(args.repeats):
        for pure in (True, False):
            wall, reads = timed_status(pure)
            walls[pure].append(wall)
    pure_s, installed_s = (statistics.median(walls[p]) for p in (True, False))
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    emit([f"| {date.today()} | dvc status, {reads} YAML reads | pure Python | {pure_s:.2f} | | {machine} |",
          f"| {date.today()} | dvc status, {reads} YAML reads | installed ({parser_class}) | {installed_s:.2f} | "
          f"{pure_s / installed_s:.2f}x | {machine} |"], args.append)


if __name__ == "__main__":
    main()
