"""Stage `rl@<algo>`: one reinforcement-learning method on its environment, tracked in MLflow.

    python -m pipelines.rl <value_iteration | q_learning | dqn | reinforce> [--params params.yaml]

value_iteration and q_learning solve the course's 4x3 grid world (``rl.gridworld``); dqn (RLlib)
and reinforce (ours, on RLlib's new API stack) train on ``rl.algos.<algo>.env`` (CartPole-v1 by
default). Writes (each atomically):
    models/rl/<algo>/            RLlib checkpoint, or the tabular utilities / Q-table and policy
    metrics/rl-<algo>.json       final metrics (DVC metrics)
    plots/rl-<algo>.csv          the learning curve: one row per iteration (DVC plots)
    figures/rl-<algo>/*.png      learning curve; utilities and policy arrows on the grid
and one MLflow run in the experiment ``rl``. The algorithm's section of ``tuned/rl.yaml`` (the
``tune_rl`` sweep's best values, ``{}`` for an algorithm it did not tune) applies over params.yaml.
A rerun of an interrupted RLlib run resumes from its checkpoint under ``runtime.storage_path``;
raising ``max_env_steps`` continues the same run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from components import tracking
from components.config import Params, flatten, load_params, params_hash
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families import get_family
from components.families.rl.envs import TABULAR, env_config
from components.io import atomic_directory, atomic_write_text
from components.metrics.direction import best_summaries
from components.metrics_files import details_path, write_stage_metrics
from components.runtime import git_commit, ray_init, repo_root, resolve, with_absolute_paths
from components.tune.overrides import apply_tuned

FAMILY = get_family("rl")  # the algorithms are FAMILY.models (rl.algos), the experiment FAMILY.experiment
# knobs that do not change what is learned up to a point: left out of the run's identity, so that
# raising max_env_steps (say) continues the same run from its checkpoint
_NOT_IDENTITY = {"max_env_steps", "return_threshold", "stop_at_threshold", "eval_episodes", "checkpoint_every"}


def run_identity(algo: str, params: Params) -> dict[str, Any]:
    cfg = getattr(params.rl.algos, algo)
    return {"algo": algo, "seed": params.seed, "env": env_config(algo, params),
            "cfg": cfg.model_dump(exclude=_NOT_IDENTITY)}


def logged_params(algo: str, params: Params) -> dict[str, Any]:
    cfg = getattr(params.rl.algos, algo)
    return flatten({"seed": params.seed, "algo": algo, "gridworld": env_config(algo, params), "cfg": cfg.model_dump()})


def mlflow_params(algo: str, params: Params) -> dict[str, Any]:
    """What the run logs as MLflow params (tracking.comparable_params): seed, algo, the ``cfg.`` keys
    every algorithm has and the swept ones; the full :func:`logged_params` are its params.json."""
    others = [logged_params(other, params) for other in FAMILY.models if other != algo]
    return tracking.comparable_params(logged_params(algo, params), others, ("seed", "algo"), "cfg.",
                                      FAMILY.sweep(params).search_space)


def history_csv(history: list[dict[str, float]]) -> str:
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: int(v) if k in ("iteration", "episode", "env_steps") else round(v, 6)
                         for k, v in row.items()})
    return buffer.getvalue()


def run_tabular(algo: str, params: Params, logger: tracking.RunLogger, out: Path) -> dict[str, Any]:
    """Value iteration or Q-learning on the grid world; writes the model files into ``out``."""
    from components.families.rl import tabular_runner

    return tabular_runner.run(algo, params, logger, out)


def run_rllib(algo: str, params: Params, run_key: str, logger: tracking.RunLogger, out: Path) -> dict[str, Any]:
    """DQN or REINFORCE through :func:`components.families.rl.runner.train_rllib`; copies the final checkpoint."""
    from components.families.rl.figures import learning_curve_figure
    from components.families.rl.runner import train_rllib

    cfg = getattr(params.rl.algos, algo)
    if params.runtime.storage_path.startswith(("s3://", "gs://")):
        raise UserError("rl stages checkpoint to a local path; set runtime.storage_path to a local or NFS folder")
    run_dir = resolve(params.runtime.storage_path) / "rl" / run_key
    outcome = train_rllib(algo, cfg, env_config(algo, params), params.seed, run_dir, logger, f"rl/{algo}")
    shutil.copytree(outcome.checkpoint, out / "checkpoint")
    figure = learning_curve_figure(
        [row["env_steps"] for row in outcome.history],
        [row["rl/episode_return_mean"] for row in outcome.history],
        threshold=cfg.return_threshold,
        greedy=outcome.final_metrics["rl/greedy_return_mean"],
        title=f"{algo} on {cfg.env}",
    )
    return {
        "final": outcome.final_metrics,
        "history": outcome.history,
        "figures": {"learning_curve": figure},
        "extra": {
            "train_wall_s": round(outcome.train_wall_s, 1),
            "resumed_from_iteration": outcome.resumed_from_iteration,
            "env": cfg.env,
        },
    }


def check_learner_gpu(algo: str, params) -> None:
    """A learner asked to train on a GPU needs one visible here: one line before Ray starts."""
    cfg = getattr(params.rl.algos, algo)
    wanted = getattr(cfg, "num_gpus_per_learner", 0)  # the tabular methods have none
    if not wanted:
        return
    import torch  # noqa: PLC0415 (the tabular stages never load it)

    if not torch.cuda.is_available():
        raise UserError(f"rl.algos.{algo}.num_gpus_per_learner is {wanted:g}, but no CUDA GPU is visible to this "
                        f"process; set it to 0 to train the learner on CPUs")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", help=" | ".join(FAMILY.models))
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    if args.algo not in FAMILY.models:
        raise UserError(f"unknown rl algorithm {args.algo!r}; known: {', '.join(FAMILY.models)}")

    params = with_absolute_paths(load_params(args.params))
    params, tuned_tags = apply_tuned(params, repo_root(), FAMILY.name, args.algo)  # tune_rl's best values, if any
    check_learner_gpu(args.algo, params)
    identity = run_identity(args.algo, params)
    digest = params_hash(identity)
    run_key = f"rl-{args.algo}-{digest}"
    uri = tracking.configure(params.runtime.mlflow_tracking_uri)
    tags = {
        tracking.GIT_COMMIT_TAG: git_commit(repo_root()),
        tracking.STAGE_TAG: os.environ.get("DVC_STAGE", FAMILY.stage_of(args.algo)),
        tracking.PARAMS_HASH_TAG: digest,
        "courselab.family": FAMILY.name,
        "courselab.model": args.algo,
        **tuned_tags,
    }
    root = repo_root()
    paths = {
        "model": root / "models" / "rl" / args.algo,
        "metrics": details_path(root, f"rl-{args.algo}"),
        "history": root / "plots" / f"rl-{args.algo}.csv",
        "figures": root / "figures" / f"rl-{args.algo}",
    }
    started = time.perf_counter()
    with tracking.training_run(FAMILY.experiment, run_key, args.algo, mlflow_params(args.algo, params), tags) as run:
        logger = tracking.RunLogger(run.info.run_id, uri)
        with atomic_directory(paths["model"]) as out:
            if args.algo in TABULAR:
                result = run_tabular(args.algo, params, logger, out)
            else:
                ray_init(params.runtime.ray_address)
                result = run_rllib(args.algo, params, run_key, logger, out)
        wall_s = time.perf_counter() - started
        with atomic_directory(paths["figures"]) as tmp:
            for name, figure in result["figures"].items():
                png = tracking.figure_png(figure)
                logger.log_png(png, f"figures/{name}.png")
                (tmp / f"{name}.png").write_bytes(png)
        final = {k: v for k, v in result["final"].items() if math.isfinite(v)}
        summary = {
            **final,
            **result.get("extra", {}),
            "stage_wall_s": round(wall_s, 1),
            "params_hash": digest,
            "git_commit": tags[tracking.GIT_COMMIT_TAG],
            "mlflow_run_id": run.info.run_id,
            "headline_metric": FAMILY.headline,
        }
        atomic_write_text(paths["history"], history_csv(result["history"]))
        write_stage_metrics(root, f"rl-{args.algo}", summary)
        import mlflow

        # best/<metric> (e.g. best/rl/episode_return_mean over iterations): what the MLflow table sorts by
        mlflow.log_metrics({**final, **best_summaries(result["history"]), "stage_wall_s": wall_s})
        # under the same names in every run of every family, so MLflow's Compare finds them common
        logger.log_bytes(paths["metrics"].read_bytes(), "summary.json")
        logger.log_bytes(paths["history"].read_bytes(), "history.csv")
        logger.log_bytes(json.dumps(logged_params(args.algo, params), indent=2).encode(), "params.json")
    shown = "  ".join(f"{k} {v:.4g}" for k, v in final.items() if k.startswith("rl/"))
    print(f"[rl/{args.algo}] done in {wall_s:.0f}s: {shown} -> {paths['metrics'].relative_to(root)}", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
