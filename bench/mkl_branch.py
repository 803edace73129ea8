"""Benchmark: MKL's code branches (``MKL_CBWR``) for PyTorch's float matrix products on this CPU.

    python -m bench.mkl_branch [--seconds S] [--repeats R] [--append]

Each branch runs in its own process (MKL reads ``MKL_CBWR`` once, at its first call), 1 torch
thread, ATen pinned to AVX2 as the stages pin it (``components/numerics.py``). The workload: float32
products of the shapes our models multiply (a 512-wide layer on 512 rows, a 256 -> 1024 layer on
2,048 rows, the REINFORCE policy's 64-wide layers on 4,000 steps), each timed for ``--seconds``;
then a fixed set of products and ``nn.Linear`` weight gradients whose bytes are hashed.

Branches: ``AVX2`` (what the stages set), ``AUTO`` (MKL's own choice for this CPU: AVX-512 where
there is one), ``COMPATIBLE`` (SSE2 without approximate reciprocals: MKL's one branch documented to
give the same results on Intel and other CPUs). Columns: date, CPU, branch, GFLOP/s per shape
(median over repeats, alternating branches), AVX2's GFLOP/s over this branch's on the first shape,
the results' hash (equal hashes: the same bits).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

from bench.rows import emit

SHAPES = [(512, 512, 512), (2048, 256, 1024), (4000, 64, 64)]
BRANCHES = ["AVX2", "AUTO", "COMPATIBLE"]

WORKLOAD = r"""
import hashlib, json, time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
rates = []
for m, k, n in {shapes}:
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < {seconds}:
        a @ b
        count += 1
    rates.append(2 * m * k * n * count / (time.perf_counter() - start) / 1e9)
digest = hashlib.md5()
for m, k, n in {shapes}:
    a, b = torch.randn(m, k), torch.randn(k, n)
    digest.update((a @ b).numpy().tobytes())
    layer = torch.nn.Linear(k, n)
    layer(a).sum().backward()
    digest.update(layer.weight.grad.numpy().tobytes())
print(json.dumps({{"rates": rates, "hash": digest.hexdigest()[:12]}}))
"""


def run(branch: str, seconds: float) -> dict:
    """One process under ``MKL_CBWR=branch``: its GFLOP/s per shape and the hash of its results."""
    env = {**os.environ, "MKL_CBWR": branch, "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", WORKLOAD.format(shapes=SHAPES, seconds=seconds)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's name where that is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append", action="store_true", help="append the rows to BENCHMARKS.md")
    args = parser.parse_args(argv)

    rates: dict[str, list[list[float]]] = {branch: [] for branch in BRANCHES}
    hashes: dict[str, set[str]] = {branch: set() for branch in BRANCHES}
    for _ in range(args.repeats):
        for branch in BRANCHES:
            result = run(branch, args.seconds)
            rates[branch].append(result["rates"])
            hashes[branch].add(result["hash"])
    median = {branch: [statistics.median(r[i] for r in rates[branch]) for i in range(len(SHAPES))]
              for branch in BRANCHES}
    rows = []
    for branch in BRANCHES:
        cells = " | ".join(f"{rate:.1f}" for rate in median[branch])
        rows.append(f"| {date.today()} | {cpu_name()}, {os.cpu_count()} CPUs | {branch} | {cells} | "
                    f"{median['AVX2'][0] / median[branch][0]:.2f} | {', '.join(sorted(hashes[branch]))} |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
