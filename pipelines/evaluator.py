"""Stage `evaluator`: train the classifier whose features define val/fid_evaluator.

    python -m pipelines.evaluator [--params params.yaml]

Writes (each atomically):
    models/evaluator/evaluator.pt        weights + architecture + test accuracy
    metrics/evaluator-<dataset>.json     val/test accuracy (DVC metrics)
and one MLflow run ``evaluator`` in the ``generative`` experiment. A single-process torch loop:
the network is small. It trains on ``generative.dataset`` (digits, MNIST or CIFAR-10), on a GPU
when ``generative.trainer.use_gpu`` is true and one is visible here (else on the CPU, said in one
line: on a cluster this stage runs on the head). Fails (one line) when the test accuracy is below
``generative.evaluator.min_test_accuracy``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from components import tracking
from components.config import flatten, load_params, params_hash
from components.data.schema import read_meta
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families import get_family
from components.families.generative.base import EVALUATOR_DIR, load_split
from components.families.generative.evaluator import (
    EVALUATOR_FILE,
    Evaluator,
    EvaluatorTraining,
    export_evaluator,
    train_evaluator,
)
from components.io import atomic_directory
from components.metrics_files import write_stage_metrics
from components.runtime import git_commit, repo_root, resolve, seed_everything

ARCH_KEYS = ("channels", "feature_dim", "dropout")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section = params.generative
    config = section.evaluator
    directory = resolve(params.data.root) / section.dataset
    meta = read_meta(directory)
    splits = {split: load_split(directory, split).tensors for split in ("train", "val", "test")}
    torch.set_num_threads(max(1, int(section.trainer.cpus_per_worker)))
    seed_everything(params.seed)
    device = torch.device("cuda" if section.trainer.use_gpu and torch.cuda.is_available() else "cpu")
    if section.trainer.use_gpu and device.type == "cpu":
        print("[evaluator] generative.trainer.use_gpu is true but no CUDA GPU is visible here: training on the CPU",
              flush=True)

    arch = {"in_channels": meta.channels, "num_classes": meta.num_classes, "image_size": meta.height,
            **{k: getattr(config, k) for k in ARCH_KEYS}}
    training = EvaluatorTraining(**config.model_dump(exclude={*ARCH_KEYS, "min_test_accuracy"}))
    net = Evaluator(**arch)
    identity = {"seed": params.seed, "dataset": section.dataset, "data": getattr(params.data, section.dataset),
                "evaluator": config}
    digest = params_hash(flatten(identity))
    tracking.configure(params.runtime.mlflow_tracking_uri)
    tags = {tracking.GIT_COMMIT_TAG: git_commit(repo_root()),
            tracking.STAGE_TAG: os.environ.get("DVC_STAGE", "evaluator"),
            tracking.PARAMS_HASH_TAG: digest, "courselab.family": "generative", "courselab.model": "evaluator"}
    started = time.perf_counter()
    experiment = get_family("generative").experiment
    with tracking.training_run(experiment, f"evaluator-{digest}", "evaluator", flatten(identity), tags) as run:
        import mlflow

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics(metrics, step=epoch)
            print(f"[evaluator] epoch {epoch}/{training.epochs}  loss {metrics['train/loss']:.4f}  "
                  f"val/accuracy {metrics['val/accuracy']:.4f}  {metrics['time/epoch_s']:.1f}s/epoch", flush=True)

        result = train_evaluator(net, splits, training, params.seed, on_epoch, device)
        wall_s = time.perf_counter() - started
        if result["test/accuracy"] < config.min_test_accuracy:
            raise UserError(
                f"evaluator: test accuracy {result['test/accuracy']:.4f} is below "
                f"generative.evaluator.min_test_accuracy ({config.min_test_accuracy}); train it longer "
                "(generative.evaluator.epochs) or make it wider (generative.evaluator.channels)")
        summary = {**result, "train_wall_s": round(wall_s, 1), "epochs": training.epochs,
                   "num_params": sum(p.numel() for p in net.parameters()), "params_hash": digest,
                   "git_commit": tags[tracking.GIT_COMMIT_TAG], "mlflow_run_id": run.info.run_id,
                   "headline_metric": "test/accuracy"}
        root = repo_root()
        with atomic_directory(root / EVALUATOR_DIR) as tmp:
            torch.save(export_evaluator(net, arch, meta.class_names, result), tmp / EVALUATOR_FILE)
        metrics_path = write_stage_metrics(root, f"evaluator-{section.dataset}", summary)
        mlflow.log_metrics({"test/accuracy": result["test/accuracy"], "train_wall_s": wall_s})
        mlflow.log_artifact(str(metrics_path))
        mlflow.log_artifact(str(root / EVALUATOR_DIR / EVALUATOR_FILE), "model")
    print(f"[evaluator] done in {wall_s:.0f}s: test/accuracy {result['test/accuracy']:.4f} "
          f"(best val epoch {result['best_epoch']}) -> {EVALUATOR_DIR}/{EVALUATOR_FILE}", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
