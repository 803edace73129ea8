"""Benchmark: a family's swept model trained at full length with the default and the tuned values, over seeds.

    python -m bench.tuned_vs_default segmentation [--seeds 0 1 2] [--values lr=0.003 ...] [--append]

The tuned values are the sweep's best (``best_config`` in ``metrics/details/tune-<family>.json``, whether
or not the tune stage applied them), or ``--values`` (e.g. another sweep's winner); the default is
params.yaml as it is. Each run is the train
stage's harness (``fit``, local path, no MLflow) for the model's epochs with only ``seed`` changed,
default and tuned alternating seed by seed so that both see the same machine load. Prints one line
per run and a row per variant (the sweep's metric per seed, mean +- std, and what the tune stage
decided); ``--append`` adds the rows to BENCHMARKS.md. For RL sweeps see ``bench.rl_seeds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date

import yaml

from bench.rows import emit
from components.config import Params, load_params, model_trainer
from components.families import get_family
from components.metrics_files import details_path
from components.runtime import repo_root, with_absolute_paths
from components.train.harness import TrainJob, fit
from components.tune.overrides import values_line


def train(family: str, model: str, params: Params, storage: str, name: str) -> tuple[dict[str, float], float]:
    """(final metrics, seconds) of one full-length run of the train stage's harness."""
    epochs = get_family(family).model_config(params, model).epochs
    job = TrainJob(family=family, model=model, params=params, trainer=model_trainer(params, family, model),
                   epochs=epochs, run_name=name, storage_path=storage)
    started = time.perf_counter()
    outcome = fit(job)
    return outcome.final_metrics, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--values", nargs="+", default=None, metavar="KEY=VALUE",
                        help="the 'tuned' values to compare (YAML scalars); default: the sweep's best_config")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    params = with_absolute_paths(load_params())
    descriptor = get_family(args.family)
    sweep = descriptor.sweep(params)
    summary_path = details_path(repo_root(), f"tune-{args.family}")
    if not summary_path.is_file():
        raise SystemExit(f"{summary_path}: missing (run `dvc repro tune_{args.family}` first)")
    summary = json.loads(summary_path.read_text())
    if not summary.get("enabled"):
        raise SystemExit(f"{summary_path}: the sweep is disabled (tune.{args.family}.enabled: false)")
    tuned = ({key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.values)}
             if args.values else summary["best_config"])
    variants = {"default": {}, "tuned": tuned}
    values: dict[str, list[float]] = {variant: [] for variant in variants}
    walls: dict[str, list[float]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="courselab-bench-") as storage:
        for seed in args.seeds:
            for variant, config in variants.items():
                run_params = params.model_copy(update={"seed": seed})
                if config:
                    run_params = descriptor.with_values(run_params, sweep.model, config, summary_path.name)
                metrics, wall = train(args.family, sweep.model, run_params, storage, f"{variant}-{seed}")
                values[variant].append(metrics[sweep.metric])
                walls[variant].append(wall)
                print(f"[bench] {args.family}/{sweep.model} {variant} seed {seed}: {sweep.metric} "
                      f"{metrics[sweep.metric]:.4f} in {wall:.0f}s", flush=True)
    epochs = descriptor.model_config(params, sweep.model).epochs
    decided = "--values" if args.values else "applied" if summary.get("applied") else "not applied"
    rows = []
    for variant, scores in values.items():
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        shown = values_line(variants[variant] or {"params.yaml": "as is"})
        rows.append(f"| {date.today()} | {args.family}/{sweep.model} | {variant} ({shown}) | {epochs} | "
                    f"{' / '.join(f'{v:.4f}' for v in scores)} | {statistics.mean(scores):.4f} +- {std:.4f} | "
                    f"{statistics.mean(walls[variant]):.0f} s | {decided} |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
