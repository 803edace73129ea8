"""Benchmark: RLlib sampling + learning throughput with env runners in the driver vs in their own actors.

    python -m bench.rl_env_runners [--algos dqn reinforce] [--iterations 8] [--append]

For each algorithm, builds it from params.yaml (``rl.algos.<algo>``) twice, with
``num_env_runners=0`` (the driver samples) and ``num_env_runners=1`` (one remote runner actor),
and times the same number of ``train()`` iterations, one after the other in one process. Prints
env steps per second for both and their ratio; ``--append`` adds the rows to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

from bench.rows import emit
from components.config import load_params
from components.families.rl.envs import register_envs
from components.families.rl.runner import config_builder
from components.runtime import ray_init


def steps_per_second(algo: str, cfg, iterations: int, seed: int) -> tuple[float, int]:
    """(env steps / s over ``iterations`` train() calls after one warm-up call, env steps timed)."""
    algo_obj = config_builder(algo)(cfg, {}, seed).build_algo()
    try:
        first = algo_obj.train()["num_env_steps_sampled_lifetime"]
        started = time.perf_counter()
        for _ in range(iterations):
            last = algo_obj.train()["num_env_steps_sampled_lifetime"]
        return (last - first) / (time.perf_counter() - started), int(last - first)
    finally:
        algo_obj.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["dqn", "reinforce"])
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    params = load_params()
    ray_init(params.runtime.ray_address)
    register_envs()
    rows = []
    for algo in args.algos:
        cfg = getattr(params.rl.algos, algo)
        rates = {}
        for runners in (0, 1):
            variant = cfg.model_copy(update={"num_env_runners": runners, "stop_at_threshold": False})
            rates[runners], steps = steps_per_second(algo, variant, args.iterations, params.seed)
            print(f"{algo}: num_env_runners={runners}: {rates[runners]:.0f} env steps/s over {steps} steps", flush=True)
        rows.append(
            f"| {date.today()} | {algo} on {cfg.env} | {cfg.num_envs_per_env_runner} | {args.iterations} |"
            f" {rates[0]:.0f} | {rates[1]:.0f} | {rates[0] / rates[1]:.2f} | {platform.machine()}, 2 cores |"
        )
    emit(rows, args.append)


if __name__ == "__main__":
    main()
