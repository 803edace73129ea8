"""Benchmark: OpenMP's wait policy for 2-thread training processes, alone and two at once.

    python -m bench.omp_wait [--steps N] [--repeats R] [--append]

Each process trains the default U-Net (``segmentation.models.unet``: base_channels 10, depth 3) on
random 128x128 scenes-sized batches of 16 for ``--steps`` AdamW steps with 2 torch threads, as a
train stage does on a 2-core machine, and prints its seconds and the sum of its parameters. Cases,
alternating per repeat so both policies see the same machine:

- ``alone``: one process; ``pair``: two at once (two stages of ``dvc exp run`` in parallel, a
  stage beside ``make test``, a Ray sweep's trial beside another);
- ``active``: libgomp's default, a thread that runs out of work spins a while before it sleeps;
  ``passive``: ``OMP_WAIT_POLICY=PASSIVE``, it sleeps at once (README, "Beside other CPU-heavy
  work"); ``spin10k`` / ``spin100k``: ``GOMP_SPINCOUNT`` 10,000 / 100,000 spins, in between.

Columns: median seconds per process for each policy, active / passive, and how many distinct
parameter sums all runs gave (1: the policy changes no result).

Two 2-thread processes on 2 cores make 4 threads; a spinning thread then burns the core its
partner's work needs. The parameter sums show the policy does not change a single result.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from datetime import date

from bench.rows import emit

WORKLOAD = r"""
import time, torch
from components.families.segmentation.models import build_model
torch.set_num_threads(2)
torch.manual_seed(0)
model = build_model("unet", 3, 11, base_channels=10, depth=3)
opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=1e-4)
x, y = torch.randn(16, 3, 128, 128), torch.randint(0, 11, (16, 128, 128))
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
step()
start = time.perf_counter()
for _ in range({steps}):
    step()
print(time.perf_counter() - start, sum(p.double().sum().item() for p in model.parameters()))
"""

POLICIES = {"active": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "spin10k": {"GOMP_SPINCOUNT": "10000"},
            "spin100k": {"GOMP_SPINCOUNT": "100000"}}


def run(policy: str, copies: int, steps: int) -> list[tuple[float, float]]:
    """``copies`` concurrent workload processes under ``policy``: each one's (seconds, parameter sum)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy])
    procs = [subprocess.Popen([sys.executable, "-c", WORKLOAD.format(steps=steps)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    out = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"workload failed under {policy} (exit {proc.returncode})")
        seconds, total = stdout.split()
        out.append((float(seconds), float(total)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append", action="store_true", help="append the rows to BENCHMARKS.md")
    args = parser.parse_args(argv)

    seconds: dict[tuple[str, int], list[float]] = {}
    sums = set()
    for _ in range(args.repeats):
        for copies in (1, 2):
            for policy in POLICIES:
                for sec, total in run(policy, copies, args.steps):
                    seconds.setdefault((policy, copies), []).append(sec)
                    sums.add(total)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    rows = []
    for copies, case in ((1, "alone"), (2, "pair")):
        median = {policy: statistics.median(seconds[policy, copies]) for policy in POLICIES}
        cells = " | ".join(f"{median[policy]:.2f}" for policy in POLICIES)
        rows.append(f"| {date.today()} | {machine} | {case} | {args.steps} | {cells} | "
                    f"{median['active'] / median['passive']:.2f} | {len(sums)} |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
