"""Stage `train_<family>@<model>`: train and evaluate one model with the Ray Train harness.

    python -m pipelines.train <family> <model> [--params params.yaml]

Applies the model's section of ``tuned/<family>.yaml`` (written by the family's tune stage) over
its params.yaml values. Writes (each atomically):
    models/<family>/<model>/model.pt      trained weights + what rebuilds the network
    metrics/<family>-<model>.json         final metrics (DVC metrics)
    plots/<family>-<model>.csv            one row per epoch (DVC plots: learning curves)
    figures/<family>-<model>/<name>.png   the last figures (e.g. predicted masks)
and one MLflow run in the family's experiment. A rerun with unchanged params (apart from
``epochs``) resumes from the Ray Train checkpoint of the earlier attempt.

The MLflow run is driven from a child process (:mod:`components.tracking_process`) started
before this one imports torch, Ray Train and the family's task: on two cores MLflow's import
and store set-up then cost the stage nothing (``bench/stage_overhead.py``). This module imports
those heavy modules inside :func:`run_stage`, after the child has started, for that reason.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components import tracking
from components.config import Params, flatten, load_params, model_trainer, params_hash
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families import Family, get_family
from components.io import atomic_directory, atomic_write_text
from components.metrics_files import details_path, write_stage_metrics
from components.runtime import git_commit, ray_init, repo_root, with_absolute_paths
from components.tracking_process import TrackingProcess
from components.tune.overrides import apply_tuned

if TYPE_CHECKING:
    from components.train.harness import TrainOutcome


def on_cluster_if_addressed(params: Params, family: str) -> Params:
    """``params`` with ``<family>.trainer.num_workers`` 0 raised to 1 when a Ray address is set
    (``runtime.ray_address`` or ``RAY_ADDRESS``): the local path trains in this process, which on a
    cluster is the driver's node; with an address the model trains on one of the cluster's workers.
    The run identity then says so (another run name, another MLflow param)."""
    section = getattr(params, family)
    if section.trainer.num_workers or not (params.runtime.ray_address or os.environ.get("RAY_ADDRESS")):
        return params
    trainer = section.trainer.model_copy(update={"num_workers": 1})
    return params.model_copy(update={family: section.model_copy(update={"trainer": trainer})})


def run_identity(family: str, model: str, params: Params) -> dict[str, Any]:
    """The params that define a training run (its Ray run name hashes them).

    ``epochs`` is left out on purpose: raising it continues the same run from its checkpoint; so are
    the trainer's reporting knobs (``eval_every``, ``figure_every``, ``max_failures``).
    """
    section = getattr(params, family)
    model_cfg = get_family(family).model_config(params, model).model_dump(exclude={"epochs"})
    trainer = section.trainer.model_dump(exclude={"eval_every", "figure_every", "max_failures"})
    dataset = section.dataset
    identity = {
        "family": family,
        "model": model,
        "seed": params.seed,
        "dataset": dataset,
        "data": getattr(params.data, dataset).model_dump(),
        "trainer": trainer,
        "model_cfg": model_cfg,
    }
    extra = _family_run_params(family, model, params)
    return {**identity, "family_params": extra} if extra else identity


def _family_run_params(family: str, model: str, params: Params) -> dict[str, Any]:
    """What a family's run reads besides its model section and trainer (shared sections, input
    files' hashes), from the family's optional ``run_params(model, params)``; {} when it has none."""
    hook = getattr(get_family(family).task(), "run_params", None)
    return hook(model, params) if hook else {}


def logged_params(family: str, model: str, params: Params) -> dict[str, Any]:
    """What the run read, flattened for MLflow: seed, dataset params, trainer and model knobs."""
    section = getattr(params, family)
    return flatten({
        "seed": params.seed,
        "dataset": section.dataset,
        "data": {section.dataset: getattr(params.data, section.dataset).model_dump()},
        "trainer": model_trainer(params, family, model).model_dump(),
        "model": {"name": model, **get_family(family).model_config(params, model).model_dump()},
        **_family_run_params(family, model, params),
    })


def mlflow_params(family: Family, model: str, params: Params, logged: dict[str, Any]) -> dict[str, Any]:
    """What the run logs as MLflow params (tracking.comparable_params) out of its :func:`logged_params`
    (``logged``, its params.json artifact): seed, dataset, the worker count and batch size, the
    family's inputs (e.g. the FID evaluator's hash), the model keys every model of the family has
    and the swept ones."""
    others = [flatten({"model": {"name": other, **family.model_config(params, other).model_dump()}})
              for other in family.models if other != model]
    own_sections = ("seed", "dataset", "data.", "trainer.", "model.")  # the rest: the family's inputs
    inputs = [key for key in logged if not key.startswith(own_sections)]
    always = ("seed", "dataset", "trainer.num_workers", "trainer.batch_size", *inputs)
    return tracking.comparable_params(logged, others, always, "model.", family.sweep(params).search_space)


def history_csv(history: list[dict[str, float]]) -> str:
    columns = sorted({key for row in history for key in row}, key=lambda k: (k != "epoch", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: int(v) if k == "epoch" else round(v, 6) for k, v in row.items()})
    return buffer.getvalue()


def write_outputs(family: str, model: str, outcome: TrainOutcome, summary: dict[str, Any]) -> dict[str, Path]:
    root = repo_root()
    paths = {
        "model": root / "models" / family / model,
        "metrics": details_path(root, f"{family}-{model}"),
        "history": root / "plots" / f"{family}-{model}.csv",
        "figures": root / "figures" / f"{family}-{model}",
    }
    import torch

    with atomic_directory(paths["model"]) as tmp:
        torch.save(outcome.export, tmp / "model.pt")
    with atomic_directory(paths["figures"]) as tmp:
        for name, png in outcome.figures.items():
            (tmp / f"{name}.png").write_bytes(png)
    atomic_write_text(paths["history"], history_csv(outcome.history))
    write_stage_metrics(root, f"{family}-{model}", summary)
    return paths


def test_evaluation(family: Family, outcome: TrainOutcome, params: Params) -> dict[str, dict[str, Any]]:
    """The family's final test-split evaluation (``evaluate_test`` in its task module), when it has
    one: its metrics and tags go into the summary, its figures beside the training figures (``test_*.png``);
    its optional ``series`` (``{metric: [(step, value), ...]}``, e.g. accuracy against epsilon) are
    logged to MLflow as curves over their own steps."""
    hook = getattr(family.task(), "evaluate_test", None)
    if hook is None:
        return {"metrics": {}, "tags": {}, "figures": [], "series": {}, "seconds": 0.0}
    started = time.perf_counter()
    result = hook(outcome.export, params)
    for name, fig in result.get("figures", {}).items():
        outcome.figures[name] = tracking.figure_png(fig)
    metrics = {k: float(v) for k, v in result["metrics"].items() if math.isfinite(v)}
    print(f"[{family.experiment}] test evaluation in {time.perf_counter() - started:.0f}s: "
          + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.count("/") == 1), flush=True)
    return {"metrics": metrics, "tags": dict(result.get("tags", {})), "figures": list(result.get("figures", {})),
            "series": dict(result.get("series", {})), "seconds": time.perf_counter() - started}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("model")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = with_absolute_paths(load_params(args.params))
    family = get_family(args.family)
    if family.entry != __spec__.name:
        raise UserError(f"{args.family} is not trained here; run python -m {family.entry}")
    if args.model not in family.models:
        raise UserError(f"unknown {args.family} model {args.model!r}; known: {', '.join(family.models)}")
    params, tuned_tags = apply_tuned(params, repo_root(), args.family, args.model)
    params = on_cluster_if_addressed(params, args.family)
    tracking.configure_environment(params.runtime.mlflow_tracking_uri)  # before Ray and the tracking process
    with TrackingProcess.start() as tracker:  # imports MLflow on the other core while this one imports torch
        run_stage(family, args.model, params, tuned_tags, tracker)


def run_stage(family: Family, model: str, params: Params, tuned_tags: dict[str, str],
              tracker: TrackingProcess) -> None:
    """Train, evaluate and write the outputs of one model, its MLflow run opened in ``tracker``."""
    from components.train.harness import TrainJob, check_resources, fit

    model_cfg = family.model_config(params, model)
    task = family.build_task(model, params)
    task.datasets()  # missing data fails here, before Ray starts (the local path trains this task)

    identity = run_identity(family.name, model, params)
    digest = params_hash(identity)
    run_key = f"{family.name}-{model}-{digest}"
    trainer = model_trainer(params, family.name, model)
    if trainer.num_workers:  # Ray Train workers; num_workers 0 trains in this process without Ray
        ray_init(params.runtime.ray_address)
    check_resources(trainer)  # before an MLflow run is opened
    tags = {
        tracking.GIT_COMMIT_TAG: git_commit(repo_root()),
        tracking.STAGE_TAG: os.environ.get("DVC_STAGE", family.stage_of(model)),
        tracking.PARAMS_HASH_TAG: digest,
        "courselab.family": family.name,
        "courselab.model": model,
        **tuned_tags,
    }
    started = time.perf_counter()
    logged = logged_params(family.name, model, params)
    tracker.open_run(family.experiment, run_key, model, mlflow_params(family, model, params, logged), tags)
    job = TrainJob(
        family=family.name,
        model=model,
        params=params,
        trainer=trainer,
        epochs=model_cfg.epochs,
        run_name=run_key,
        storage_path=params.runtime.storage_path,
        # Ray workers log into the run by its id; the local path logs through the tracker
        mlflow_run_id=tracker.run_id if trainer.num_workers else None,
        mlflow_tracking_uri=tracking.tracking_uri(params.runtime.mlflow_tracking_uri),
        repo_root=str(repo_root()),
    )
    outcome = fit(job, task=task, logger=None if trainer.num_workers else tracker)
    test = test_evaluation(family, outcome, params)
    wall_s = time.perf_counter() - started
    summary = {
        **{k: v for k, v in outcome.final_metrics.items() if math.isfinite(v)},  # NaN: class absent
        **test["metrics"],
        **test["tags"],  # e.g. sacrebleu's signature beside its score
        "epochs": outcome.epochs_done,
        "train_wall_s": round(wall_s, 1),
        "test_eval_s": round(test["seconds"], 1),
        "params_hash": digest,
        "git_commit": tags[tracking.GIT_COMMIT_TAG],
        "mlflow_run_id": tracker.run_id,
        "headline_metric": family.headline,
    }
    paths = write_outputs(family.name, model, outcome, summary)
    tracker.log_metrics({"train_wall_s": wall_s}, step=0)
    if test["metrics"]:
        tracker.log_metrics(test["metrics"], step=outcome.epochs_done)
        tracker.set_tags(test["tags"])
    for key, points in test["series"].items():
        for step, value in points:
            tracker.log_metrics({key: value}, step=step)
    for name in test["figures"]:
        tracker.log_artifact(paths["figures"] / f"{name}.png", "figures/test")
    # under the same names in every run, so MLflow's Compare finds them common to the runs it compares
    tracker.log_bytes(paths["metrics"].read_bytes(), "summary.json")
    tracker.log_bytes(paths["history"].read_bytes(), "history.csv")
    tracker.log_bytes(json.dumps(logged, indent=2).encode(), "params.json")
    tracker.log_artifact(paths["model"] / "model.pt", "model")
    if params.runtime.log_models:
        tracker.log_model(family.name, model, paths["model"] / "model.pt")
    headline = outcome.final_metrics.get(family.headline, float("nan"))
    print(f"[{family.name}/{model}] done in {wall_s:.0f}s: {family.headline} {headline:.4f}"
          f" -> {paths['metrics'].relative_to(repo_root())}", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
