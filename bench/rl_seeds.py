"""Benchmark: DQN and REINFORCE over several seeds (steps and time to threshold), default or tuned.

    python -m bench.rl_seeds [--algos dqn reinforce] [--seeds 0 1 2] [--variants default tuned] [--append]

Each run is the stage's own loop (:func:`components.families.rl.runner.train_rllib`) on ``rl.algos.<algo>``
with only the seed changed, in a fresh run directory, without MLflow. ``--variants`` picks the
params: ``default`` (params.yaml as it is) and/or ``tuned`` (with ``tuned/rl.yaml``'s values, as
rl@<algo> applies them); both run seed by seed in one process, side by side. Prints one line per
run and a summary row per algorithm and variant (mean +- std of env steps to the threshold, of
wall time, and of the greedy return); ``--append`` adds the rows to BENCHMARKS.md.
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
from components.families.rl.runner import train_rllib
from components.runtime import ray_init, repo_root
from components.tracking import RunLogger
from components.tune.overrides import apply_tuned, values_line


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
    parser.add_argument("--variants", nargs="+", choices=["default", "tuned"], default=["default"])
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    params = load_params()
    ray_init(params.runtime.ray_address)
    rows = []
    for algo in args.algos:
        configs = {"default": getattr(params.rl.algos, algo)}
        if "tuned" in args.variants:
            tuned, tags = apply_tuned(params, repo_root(), "rl", algo)
            if not tags:
                raise SystemExit(f"--variants tuned: tuned/rl.yaml has no values for {algo} (run tune_rl first)")
            configs["tuned"] = getattr(tuned.rl.algos, algo)
        runs = {variant: {"steps": [], "walls": [], "greedy": [], "reached": 0} for variant in args.variants}
        for seed in args.seeds:
            for variant in args.variants:  # alternating, so both see the same machine load
                cfg, out = configs[variant], runs[variant]
                started = time.perf_counter()
                with tempfile.TemporaryDirectory() as run_dir:
                    outcome = train_rllib(algo, cfg, {}, seed, Path(run_dir), RunLogger(None),
                                          f"bench/{algo}/{variant}/seed{seed}")
                out["walls"].append(time.perf_counter() - started)
                out["greedy"].append(outcome.final_metrics["rl/greedy_return_mean"])
                if outcome.env_steps_to_threshold is not None:
                    out["reached"] += 1
                    out["steps"].append(float(outcome.env_steps_to_threshold))
                print(f"{algo} ({variant}) seed {seed}: threshold {cfg.return_threshold} at "
                      f"{outcome.env_steps_to_threshold} env steps, {out['walls'][-1]:.0f}s (build + train + greedy "
                      f"eval), greedy return {out['greedy'][-1]:.1f}", flush=True)
        for variant, out in runs.items():
            cfg = configs[variant]
            label = f"{algo} on {cfg.env}"
            if variant == "tuned":
                label += f" (tuned: {_changed(configs['default'], cfg)})"
            rows.append(
                f"| {date.today()} | {label} | {cfg.return_threshold:g} | {out['reached']}/{len(args.seeds)}"
                f" | {_mean_std(out['steps'])} | {_mean_std(out['walls'])} | {_mean_std(out['greedy'])}"
                f" | {platform.machine()}, 2 cores |"
            )
    emit(rows, args.append)


def _changed(default, tuned) -> str:
    """``lr=0.02324, baseline=none``: the tuned values that differ from the default."""
    before, after = default.model_dump(), tuned.model_dump()
    return values_line({k: v for k, v in after.items() if v != before[k]})


if __name__ == "__main__":
    main()
