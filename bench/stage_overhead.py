"""Benchmark: a train stage's fixed cost on the local path and on the worker path, side by side.

    python -m bench.stage_overhead [--stages segmentation/unet detection/fcos ...] [--paths local worker ...]
                                   [--repeats N] [--append]

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
repro`` did before the local path), and ``teardown``: the local path with the interpreter's own
exit (``main()`` called from ``python -c``, where ``python -m pipelines.train`` ends through
:func:`components.errors.run_and_exit`). The paths alternate per stage so all see the same machine
load. The last lines give the median fixed cost per path, each one's ratio to the first, and the
floor any PyTorch training process pays on this machine: ``import torch`` and one optimizer (whose first
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
# path -> trainer.num_workers, and the launcher: the stage's own `python -m` entry, or its main() under
# the interpreter's normal exit (teardown of every module)
PATHS = {"local": (0, "module"), "worker": (1, "module"), "teardown": (0, "main")}
TEARDOWN = "import importlib, sys; sys.exit(importlib.import_module(sys.argv[1]).main(sys.argv[2:]))"


def _params(stages: list[tuple[str, str]], num_workers: int) -> dict:
    params = tiny_params_dict()
    for family in {family for family, _ in stages}:
        params[family]["trainer"]["num_workers"] = num_workers
    return params


def _run(root: Path, env: dict[str, str], *args: str, launcher: str = "module") -> float:
    command = [sys.executable, *(["-m"] if launcher == "module" else ["-c", TEARDOWN]), *args]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


FLOOR = "import torch; torch.optim.AdamW([torch.zeros(1, requires_grad=True)])"


def pytorch_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR], check=True)
    return time.perf_counter() - started


def measure(root: Path, env: dict[str, str], family: str, model: str, path: str) -> dict[str, float]:
    num_workers, launcher = PATHS[path]
    (root / "params.yaml").write_text(yaml.safe_dump(_params([(family, model)], num_workers), sort_keys=False))
    wall = _run(root, env, "pipelines.train", family, model, launcher=launcher)
    summary = read_stage_metrics(root, f"{family}-{model}")
    rows = (root / "plots" / f"{family}-{model}.csv").read_text().splitlines()
    column = rows[0].split(",").index("time/epoch_s")
    loop = sum(float(row.split(",")[column]) for row in rows[1:])
    test = summary.get("test_eval_s", 0.0)
    return {"wall": wall, "loop": loop, "test": test, "fixed": wall - loop - test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=list(DEFAULT_STAGES), help="family/model ...")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=["local", "worker"],
                        help="the first is the reference of the ratios")
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
        results: dict[str, list[float]] = {path: [] for path in args.paths}
        floors = []
        rows = []
        for repeat in range(args.repeats):
            floors.append(pytorch_floor())
            for index, (family, model) in enumerate(stages):
                order = args.paths if (index + repeat) % 2 == 0 else args.paths[::-1]
                for path in order:
                    m = measure(root, env, family, model, path)
                    results[path].append(m["fixed"])
                    print(f"{family}/{model} {path}: wall {m['wall']:.1f}s  loop {m['loop']:.1f}s  "
                          f"test {m['test']:.1f}s  fixed {m['fixed']:.1f}s", flush=True)
                    rows.append(f"| {date.today()} | {family}/{model} | {path} | {m['wall']:.1f} | {m['loop']:.1f} | "
                                f"{m['test']:.1f} | {m['fixed']:.1f} | {platform.machine()}, {os.cpu_count()} cores |")
    medians = {path: statistics.median(fixed) for path, fixed in results.items()}
    first = args.paths[0]
    shown = ", ".join(f"{path} {m:.1f} s" for path, m in medians.items())
    ratios = ", ".join(f"{path}/{first} {m / medians[first]:.1f}x" for path, m in medians.items() if path != first)
    floor = statistics.median(floors)
    rows.append(f"| {date.today()} | median of {len(stages)} stages x {args.repeats} | {shown} ({ratios}) | | | | "
                f"PyTorch floor {floor:.1f} s | {platform.machine()}, {os.cpu_count()} cores |")
    emit(rows, args.append)


if __name__ == "__main__":
    main()
