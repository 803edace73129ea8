"""Stage `adversarial_transfer`: do adversarial examples crafted on one model fool the others?

    python -m pipelines.adversarial_transfer [--params params.yaml]

FGSM at ``adversarial.attacks.transfer_epsilon`` is crafted on each model ``pipeline.adversarial``
lists (white-box on the source) and every listed model is scored on those test images; the control
row adds random sign noise of the same size. Writes (each folder atomically):
    metrics/adversarial_transfer/<source>.json    one row of the matrix: test/accuracy_of/<model>,
                                                  test/transfer_accuracy (mean over the other models)
    figures/adversarial_transfer/transfer.png     the matrix
and one MLflow run ``transfer`` in the ``adversarial`` experiment.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from components import tracking
from components.config import flatten, load_params, params_hash
from components.data.tensors import load_classification_split
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families import get_family
from components.families.adversarial import attacks
from components.families.adversarial.family import RANDOM_SIGN
from components.families.adversarial.figures import transfer_figure
from components.families.adversarial.task import data_dir, load_exported
from components.io import atomic_directory
from components.metrics_files import write_row_folder
from components.runtime import git_commit, repo_root, seed_everything

FIGURES = Path("figures") / "adversarial_transfer"


def load_models(root: Path, models: tuple[str, ...]) -> dict[str, torch.nn.Module]:
    """The trained ``models`` (``pipeline.adversarial``), from ``models/adversarial/<model>/model.pt``."""
    nets = {}
    for model in models:
        path = root / "models" / "adversarial" / model / "model.pt"
        if not path.is_file():
            raise UserError(f"{path} not found: train it first (dvc repro train_adversarial@{model})")
        nets[model] = load_exported(torch.load(path, map_location="cpu", weights_only=True))
    return nets


def transfer_matrix(nets: dict[str, torch.nn.Module], images: torch.Tensor, labels: torch.Tensor, epsilon: float,
                    generator: torch.Generator) -> dict[str, dict[str, float]]:
    """``{source: {target: accuracy}}``: FGSM crafted on each source, scored on every target; the
    ``random_sign`` source adds random sign noise of the same L-infinity size instead."""
    crafted = {source: attacks.fgsm(net, images, labels, epsilon) for source, net in nets.items()}
    crafted[RANDOM_SIGN] = attacks.random_sign(images, epsilon, generator)
    return {source: {target: attacks.attacked_accuracy(net, inputs, labels, None) for target, net in nets.items()}
            for source, inputs in crafted.items()}


def row_summary(source: str, accuracies: dict[str, float], clean: dict[str, float]) -> dict[str, float]:
    """One row's metrics: each model's accuracy, and their means over the models other than the source."""
    others = [target for target in accuracies if target != source]
    return {
        **{f"test/accuracy_of/{target}": value for target, value in accuracies.items()},
        "test/transfer_accuracy": float(np.mean([accuracies[t] for t in others])),
        "test/clean_accuracy": float(np.mean([clean[t] for t in others])),
    }


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = params.adversarial.attacks
    root = repo_root()
    torch.set_num_threads(max(1, int(params.adversarial.trainer.cpus_per_worker)))
    seed_everything(params.seed)
    models = tuple(params.pipeline.adversarial)
    nets = load_models(root, models)
    images, labels = load_classification_split(data_dir(params), "test").tensors

    identity = {"seed": params.seed, "dataset": params.adversarial.dataset, "transfer_epsilon": config.transfer_epsilon,
                "models": {m: tracking_digest(root, m) for m in models}}
    digest = params_hash(flatten(identity))
    tracking.configure(params.runtime.mlflow_tracking_uri)
    tags = {tracking.GIT_COMMIT_TAG: git_commit(root),
            tracking.STAGE_TAG: os.environ.get("DVC_STAGE", "adversarial_transfer"),
            tracking.PARAMS_HASH_TAG: digest, "courselab.family": "adversarial", "courselab.model": "transfer"}
    started = time.perf_counter()
    experiment = get_family("adversarial").experiment
    with tracking.training_run(experiment, f"transfer-{digest}", "transfer", flatten(identity), tags) as run:
        import mlflow

        clean = {model: attacks.attacked_accuracy(net, images, labels, None) for model, net in nets.items()}
        matrix = transfer_matrix(nets, images, labels, config.transfer_epsilon,
                                 torch.Generator().manual_seed(params.seed))
        sources = list(matrix)
        figure = transfer_figure(np.array([[matrix[s][t] for t in models] for s in sources]), sources, list(models),
                                 f"test accuracy on FGSM examples (epsilon {config.transfer_epsilon:g}) "
                                 "crafted on each row's model")
        with atomic_directory(root / FIGURES) as tmp:
            (tmp / "transfer.png").write_bytes(tracking.figure_png(figure))
        wall_s = time.perf_counter() - started
        rows = {source: {**row_summary(source, matrix[source], clean), "epsilon": config.transfer_epsilon,
                         "train_wall_s": round(wall_s, 1), "params_hash": digest,
                         "git_commit": tags[tracking.GIT_COMMIT_TAG], "mlflow_run_id": run.info.run_id,
                         "headline_metric": "test/transfer_accuracy"} for source in sources}
        for source, path in write_row_folder(root, "adversarial_transfer", rows).items():
            mlflow.log_artifact(str(path))
            mlflow.log_metrics({f"transfer/{source}/{target}": value for target, value in matrix[source].items()})
        mlflow.log_artifact(str(root / FIGURES / "transfer.png"), "figures")
    for source in sources:
        print(f"[adversarial_transfer] crafted on {source:12s} " + "  ".join(
            f"{target} {value:.3f}" for target, value in matrix[source].items()), flush=True)


def tracking_digest(root: Path, model: str) -> str:
    """The SHA-256 of a trained model's file: a retrained model makes another transfer run."""
    from components.families.generative.evaluator import file_sha256

    return file_sha256(root / "models" / "adversarial" / model / "model.pt")[:12]


if __name__ == "__main__":
    run_and_exit(main)
