"""Benchmark: DQN and REINFORCE on their default params over several seeds (steps and time to threshold).

    python -m bench.rl_seeds [--algos dqn reinforce] [--seeds 0 1 2] [--append]

Each run is the stage's own loop (:func:`components.rl.runner.train_rllib`) on the default
``rl.algos.<algo>`` params with only the seed changed, in a fresh run directory, without MLflow.
Prints one line per run and a summary row per algorithm (mean +- std of env steps to the
threshold, of wall time, and of the greedy return); ``--append`` adds the rows to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.rows import emit
from components.config import load_params
from components.rl.runner import train_rllib
from components.runtime import ray_init
from components.tracking import RunLogger


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):,.0f} +- {std:,.0f}" if max(values) > 100 else \
        f"{statistics.mean(values):.1f} +- {std:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["dqn", "reinforce"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    params = load_params()
    ray_init(params.runtime.ray_address)
    rows = []
    for algo in args.algos:
        cfg = getattr(params.rl.algos, algo)
        steps, walls, greedy, reached = [], [], [], 0
        for seed in args.seeds:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as run_dir:
                outcome = train_rllib(algo, cfg, {}, seed, Path(run_dir), RunLogger(None), f"bench/{algo}/seed{seed}")
            wall = time.perf_counter() - started
            walls.append(wall)
            greedy.append(outcome.final_metrics["rl/greedy_return_mean"])
            if outcome.env_steps_to_threshold is not None:
                reached += 1
                steps.append(float(outcome.env_steps_to_threshold))
            print(f"{algo} seed {seed}: threshold {cfg.return_threshold} at {outcome.env_steps_to_threshold} env steps,"
                  f" {wall:.0f}s (build + train + greedy eval), greedy return {greedy[-1]:.1f}", flush=True)
        rows.append(
            f"| {date.today()} | {algo} on {cfg.env} | {cfg.return_threshold:g} | {reached}/{len(args.seeds)} |"
            f" {_mean_std(steps)} | {_mean_std(walls)} | {_mean_std(greedy)} | {platform.machine()}, 2 cores |"
        )
    emit(rows, args.append)


if __name__ == "__main__":
    main()
