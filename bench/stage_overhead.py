"""Benchmark: a train stage's fixed cost on the local path and on the worker path, side by side.

    python -m bench.stage_overhead [--stages segmentation/unet detection/fcos ...] [--repeats N] [--append]

For each stage and path, runs the real stage command (``python -m pipelines.train <family>
<model>``, as ``dvc repro`` does) in a fresh process on a temporary repository with the test
suite's tiny params (``tests/conftest.py``: the real keys, small data, one epoch), and measures

- wall: the process, start to exit;
- loop: time inside the training loop (the epochs' ``time/epoch_s``: training and evaluation);
- test: the family's final test-split evaluation (``test_eval_s``; translation's beam search);
- fixed = wall - loop - test: interpreter and imports, Ray start-up and actors (worker path),
  the MLflow run, data loading, model building, checkpoints, figures, output files.

Paths: ``local`` (``trainer.num_workers: 0``, Ray Train's local mode in the stage's process) and
``worker`` (one Ray Train worker; the stage starts its own local Ray, as every stage of ``dvc
repro`` did before the local path). They alternate per stage so both see the same machine load.
The last lines give the median fixed cost per path and their ratio, and the floor any PyTorch
training process pays on this machine: ``import torch`` and one optimizer (whose first
``add_param_group`` imports ``torch._dynamo``, ~1.2 s here), timed the same way. Issue 19's bound:
the local path's median fixed cost <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from bench.rows import emit
from components.metrics_files import read_stage_metrics
from tests.conftest import tiny_params_dict

DEFAULT_STAGES = ("segmentation/unet", "detection/fcos", "generative/dcgan", "translation/gru", "captioning/show_tell")
PATHS = {"local": 0, "worker": 1}  # path -> trainer.num_workers


def _params(stages: list[tuple[str, str]], num_workers: int) -> dict:
    params = tiny_params_dict()
    for family in {family for family, _ in stages}:
        params[family]["trainer"]["num_workers"] = num_workers
    return params


def _run(root: Path, env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


FLOOR = "import torch; torch.optim.AdamW([torch.zeros(1, requires_grad=True)])"


def pytorch_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR], check=True)
    return time.perf_counter() - started


def measure(root: Path, env: dict[str, str], family: str, model: str, num_workers: int) -> dict[str, float]:
    (root / "params.yaml").write_text(yaml.safe_dump(_params([(family, model)], num_workers), sort_keys=False))
    wall = _run(root, env, "pipelines.train", family, model)
    summary = read_stage_metrics(root, f"{family}-{model}")
    rows = (root / "plots" / f"{family}-{model}.csv").read_text().splitlines()
    column = rows[0].split(",").index("time/epoch_s")
    loop = sum(float(row.split(",")[column]) for row in rows[1:])
    test = summary.get("test_eval_s", 0.0)
    return {"wall": wall, "loop": loop, "test": test, "fixed": wall - loop - test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=list(DEFAULT_STAGES), help="family/model ...")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--append", action="store_true", help="append the rows to BENCHMARKS.md")
    args = parser.parse_args()
    stages = [tuple(stage.split("/", 1)) for stage in args.stages]

    with tempfile.TemporaryDirectory(prefix="stage-overhead-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSELAB_", "MLFLOW_", "RAY_ADDRESS"))}
        env.update(COURSELAB_ROOT=str(root), RAY_AUTH_MODE="disabled", MPLCONFIGDIR=str(root / ".mpl"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")])))
        (root / "params.yaml").write_text(yaml.safe_dump(_params(stages, 0), sort_keys=False))
        _run(root, env, "pipelines.prepare")
        if any(family == "generative" for family, _ in stages):
            _run(root, env, "pipelines.evaluator")
        results: dict[str, list[float]] = {path: [] for path in PATHS}
        floors = []
        rows = []
        for repeat in range(args.repeats):
            floors.append(pytorch_floor())
            for index, (family, model) in enumerate(stages):
                order = list(PATHS) if (index + repeat) % 2 == 0 else list(reversed(PATHS))
                for path in order:
                    m = measure(root, env, family, model, PATHS[path])
                    results[path].append(m["fixed"])
                    print(f"{family}/{model} {path}: wall {m['wall']:.1f}s  loop {m['loop']:.1f}s  "
                          f"test {m['test']:.1f}s  fixed {m['fixed']:.1f}s", flush=True)
                    rows.append(f"| {date.today()} | {family}/{model} | {path} | {m['wall']:.1f} | {m['loop']:.1f} | "
                                f"{m['test']:.1f} | {m['fixed']:.1f} | {platform.machine()}, {os.cpu_count()} cores |")
    local, worker = (statistics.median(results[path]) for path in PATHS)
    floor = statistics.median(floors)
    rows.append(f"| {date.today()} | median of {len(stages)} stages x {args.repeats} | local {local:.1f} s, "
                f"worker {worker:.1f} s (worker/local {worker / local:.1f}x) | | | | PyTorch floor {floor:.1f} s | "
                f"{platform.machine()}, {os.cpu_count()} cores |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
