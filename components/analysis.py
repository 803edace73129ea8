"""What an analysis stage shares (a stage that reads trained models and writes a table, not a training
run: visualization's attribution and units, selfsup's probe): its start (``--params``, threads, seed),
one MLflow run keyed by what it read, and its outputs: one metrics file per row and one figures folder,
each written atomically after the work is done."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from components import tracking
from components.config import Params, flatten, params_hash
from components.errors import UserError
from components.io import atomic_directory
from components.metrics_files import write_row_folder, write_stage_metrics
from components.runtime import git_commit


def start(argv: list[str] | None, description: str,
          threads: Callable[[Params], float]) -> tuple[Params, Path, torch.Generator]:
    """``--params`` parsed and validated, torch's threads (``threads(params)``, the family's trainer's)
    and seeds set; returns the params, the repository root and the seeded generator of the stage's draws."""
    import argparse

    from components.config import load_params
    from components.runtime import repo_root, seed_everything

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    params = load_params(parser.parse_args(argv).params)
    torch.set_num_threads(max(1, int(threads(params))))
    seed_everything(params.seed)
    return params, repo_root(), torch.Generator().manual_seed(params.seed)


def load_export(root: Path, folder: str, stage: str) -> dict[str, Any]:
    """``<folder>/model.pt`` (a train stage's export), or a UserError naming it and the stage to run."""
    path = root / folder / "model.pt"
    if not path.is_file():
        raise UserError(f"{path} not found: train it first (dvc repro {stage})")
    return torch.load(path, map_location="cpu", weights_only=True)


def model_digest(root: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """The SHA-256 prefix of each folder's ``model.pt``: retraining one makes another run."""
    from components.families.generative.evaluator import file_sha256

    return {folder: file_sha256(root / folder / "model.pt")[:12] for folder in folders}


@dataclass
class StageRun:
    """One analysis stage's MLflow run and outputs: figures collect into ``figures/<stage>`` (written
    at once), each row's metrics into ``metrics/<stage>-<row>.json``, or, for a stage whose rows follow
    the pipeline's lists (``row_folder``), ``metrics/<stage>/<row>.json`` (each folder written at once)."""

    root: Path
    stage: str
    digest: str
    tags: dict[str, str]
    row_folder: bool = False
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
        details = {row: {**metrics, "train_wall_s": wall_s, "params_hash": self.digest,
                         "git_commit": self.tags[tracking.GIT_COMMIT_TAG], "mlflow_run_id": self.run_id,
                         "headline_metric": headline} for row, metrics in rows.items()}
        if self.row_folder:
            paths = write_row_folder(self.root, self.stage, details)
        else:
            paths = {row: write_stage_metrics(self.root, f"{self.stage}-{row}", d) for row, d in details.items()}
        for row, metrics in rows.items():
            mlflow.log_artifact(str(paths[row]))
            mlflow.log_metrics({f"{row}/{key.removeprefix('test/')}": value for key, value in metrics.items()})
        mlflow.log_artifacts(str(folder), "figures")


@contextmanager
def stage_run(params: Params, root: Path, family: str, stage: str, model: str, identity: Mapping[str, Any],
              models: tuple[str, ...]) -> Iterator[StageRun]:
    """An MLflow run ``<model>`` in the family's experiment, keyed by ``identity`` (the params the stage
    reads) and the digests of the trained ``models`` folders it reads; a rerun reopens the same run."""
    from components.families import get_family

    identity = {**identity, "models": model_digest(root, models)}
    digest = params_hash(flatten(identity))
    tracking.configure(params.runtime.mlflow_tracking_uri)
    tags = {tracking.GIT_COMMIT_TAG: git_commit(root), tracking.STAGE_TAG: os.environ.get("DVC_STAGE", stage),
            tracking.PARAMS_HASH_TAG: digest, "courselab.family": family, "courselab.model": model}
    experiment = get_family(family).experiment
    row_folder = any(s.name == stage and s.row_folder for s in get_family(family).extra_stages)
    with tracking.training_run(experiment, f"{model}-{digest}", model, flatten(identity), tags) as run:
        yield StageRun(root, stage, digest, tags, row_folder, run.info.run_id)
