"""What the two analysis stages share: the trained networks they explain, their seeded test subsets,
one MLflow run per stage, and the metrics rows (one file per row, written atomically)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components import tracking
from components.config import Params, flatten, params_hash
from components.errors import UserError
from components.families.visualization.family import DIGITS_MODEL
from components.io import atomic_directory, atomic_write_text
from components.runtime import git_commit

SCENE_MODEL = "models/visualization/scene_cnn"


def start(argv: list[str] | None, description: str) -> tuple[Params, Path, torch.Generator]:
    """A stage's start: ``--params`` parsed and validated, torch's threads and seeds set; returns the
    params, the repository root and the seeded generator of the stage's draws."""
    import argparse

    from components.config import load_params
    from components.runtime import repo_root, seed_everything

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    params = load_params(parser.parse_args(argv).params)
    torch.set_num_threads(max(1, int(params.visualization.trainer.cpus_per_worker)))
    seed_everything(params.seed)
    return params, repo_root(), torch.Generator().manual_seed(params.seed)


def _export(root: Path, folder: str, stage: str) -> dict[str, Any]:
    path = root / folder / "model.pt"
    if not path.is_file():
        raise UserError(f"{path} not found: train it first (dvc repro {stage})")
    return torch.load(path, map_location="cpu", weights_only=True)


def digit_classifier(root: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The adversarial family's undefended digit CNN (frozen, eval mode) and its export."""
    from components.families.adversarial.task import load_exported

    export = _export(root, DIGITS_MODEL, "train_adversarial@cnn")
    return load_exported(export), export


def last_conv_block(digit_net: nn.Module) -> nn.Module:
    """The digit classifier's last conv-BN-ReLU stage (before its pool): the map Grad-CAM weights."""
    return [module for module in digit_net.trunk if isinstance(module, nn.Sequential)][-1]


def scene_classifier(root: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The visualization family's scene classifier (frozen, eval mode) and its export."""
    from components.families.visualization.task import load_exported

    export = _export(root, SCENE_MODEL, "train_visualization@scene_cnn")
    return load_exported(export), export


def subset(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded subset of ``size`` of ``count`` indices (all of them, in order, when size >= count)."""
    if size >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=generator)[:size].sort().values


def model_digest(root: Path) -> dict[str, str]:
    """The SHA-256 prefixes of both trained networks: retraining either makes another run."""
    from components.families.generative.evaluator import file_sha256

    return {folder: file_sha256(root / folder / "model.pt")[:12] for folder in (DIGITS_MODEL, SCENE_MODEL)}


@dataclass
class StageRun:
    """One analysis stage's MLflow run and outputs: figures collect into ``figures/<stage>`` (written
    at once), each row's metrics into ``metrics/<stage>-<row>.json``."""

    root: Path
    stage: str
    digest: str
    tags: dict[str, str]
    run_id: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def write(self, rows: Mapping[str, Mapping[str, float]], headline: str) -> None:
        """The figures folder, then one metrics file per row, then all of it to MLflow."""
        import mlflow

        folder = self.root / "figures" / self.stage
        with atomic_directory(folder) as tmp:
            for name, figure in self.figures.items():
                (tmp / f"{name}.png").write_bytes(tracking.figure_png(figure))
            for name, text in self.texts.items():
                (tmp / name).write_text(text)
        wall_s = round(time.perf_counter() - self.started, 1)
        for row, metrics in rows.items():
            summary = {**metrics, "train_wall_s": wall_s, "params_hash": self.digest,
                       "git_commit": self.tags[tracking.GIT_COMMIT_TAG], "mlflow_run_id": self.run_id,
                       "headline_metric": headline}
            path = self.root / "metrics" / f"{self.stage}-{row}.json"
            atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
            mlflow.log_artifact(str(path))
            mlflow.log_metrics({f"{row}/{key.removeprefix('test/')}": value for key, value in metrics.items()})
        mlflow.log_artifacts(str(folder), "figures")


@contextmanager
def stage_run(params: Params, root: Path, stage: str, model: str, identity: Mapping[str, Any]) -> Iterator[StageRun]:
    """An MLflow run ``<model>`` in the visualization experiment, keyed by ``identity`` (the params
    the stage reads and the digests of the networks it explains)."""
    identity = {**identity, "models": model_digest(root)}
    digest = params_hash(flatten(identity))
    tracking.configure(params.runtime.mlflow_tracking_uri)
    tags = {tracking.GIT_COMMIT_TAG: git_commit(root), tracking.STAGE_TAG: os.environ.get("DVC_STAGE", stage),
            tracking.PARAMS_HASH_TAG: digest, "courselab.family": "visualization", "courselab.model": model}
    with tracking.training_run("visualization", f"{model}-{digest}", model, flatten(identity), tags) as run:
        yield StageRun(root, stage, digest, tags, run.info.run_id)
