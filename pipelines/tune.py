"""Stage `tune_<family>`: a Ray Tune sweep over one model of a family (``tune.<family>`` in params).

    python -m pipelines.tune <family | rl> [--params params.yaml]

A family's trials are Ray Train runs of its harness, compared after equal epochs; ``rl`` sweeps
one RLlib algorithm (``tune.rl.algo``) with the algorithm itself as the Tune trainable, compared
after equal env steps. Writes (each atomically):
    tuned/<family>.yaml          the best trial's values under the tuned model (algorithm), {} under
                                 the others (the family's train stages / rl@<algo> apply their own section)
    metrics/tune-<family>.json   the sweep: best vs default value, every trial (DVC metrics)
and, in the family's MLflow experiment, a parent run for the sweep with a child run per trial.
With ``tune.<family>.enabled: false`` it writes empty overrides and ``{"enabled": false}`` at once.

The best trial's values are applied only when they beat the default point by at least
``tune.<family>.min_improvement`` at the length the train stage trains (:func:`verdict`): trials
shorter than that (``trial_epochs`` below the model's epochs) are re-checked by a confirmation run
of the default and the best values at full length (two more trials, FIFO); otherwise the tuned
file keeps params.yaml's values (``{}``) and says why. An RL sweep is judged at
``trial_env_steps``: the rl stage has no fixed length (it stops at a return threshold).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from components.config import Params, load_params
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families import get_family
from components.io import atomic_write_text
from components.metrics_files import TUNE_PREFIX, details_path, write_stage_metrics
from components.runtime import repo_root
from components.tune.overrides import tuned_file_text, tuned_path, values_line


def metrics_path(root: Path, family: str) -> Path:
    """The sweep's details file (``metrics/tune-<family>.json`` beside it holds its numbers)."""
    return details_path(root, f"{TUNE_PREFIX}{family}")


def _outputs(root: Path, family: str, models: list[str], summary: dict[str, Any]) -> dict[Path, str]:
    """``{path: text}`` of the stage's two outputs."""
    best = (summary.get("best_config") or {}) if summary.get("applied") else {}
    provenance = {k: summary[k] for k in ("model", "metric", "best_value", "default_value", "applied", "reason",
                                          "parent_run_id")
                  if k in summary} if summary["enabled"] else {"enabled": False}
    return {
        tuned_path(root, family): tuned_file_text(models, summary["model"], best, provenance),
        metrics_path(root, family): json.dumps(summary, indent=2) + "\n",
    }


def _write(root: Path, family: str, outputs: dict[Path, str]) -> None:
    """The tuned file, then the sweep's metrics files."""
    for path, text in outputs.items():
        if path == metrics_path(root, family):
            write_stage_metrics(root, f"{TUNE_PREFIX}{family}", json.loads(text))
        else:
            atomic_write_text(path, text)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def verdict(metric: str, mode: str, default_value: float | None, tuned_value: float | None, best_is_default: bool,
            min_improvement: float, length: str) -> tuple[bool, str]:
    """Whether the best trial's values replace params.yaml's, and why (one clause for the tuned
    file, MLflow and the report): they must beat the default by ``min_improvement`` (metric units,
    in the metric's direction) at ``length``."""
    if best_is_default:
        return False, f"the default values were the best at {length}"
    if tuned_value is None:
        return False, f"the best values reported no {metric} at {length}"
    if default_value is None:
        return True, f"the default values reported no {metric} at {length}"
    gain = tuned_value - default_value if mode == "max" else default_value - tuned_value
    shown = f"{metric} {tuned_value:.4g} vs {default_value:.4g} at {length}"
    if gain < min_improvement:
        return False, f"the best values gained {gain:+.4g} ({shown}), less than min_improvement {min_improvement:g}"
    return True, f"the best values gained {gain:+.4g} ({shown}), at least min_improvement {min_improvement:g}"


def summarize(family: str, params: Params, outcome, wall_s: float, parent_run_id: str,
              experiment_id: str) -> dict[str, Any]:
    """The metrics file (keys fixed: the report reads them)."""
    from components.tune.space import mode as sweep_mode

    sweep = getattr(params.tune, family)
    mode = sweep_mode(sweep)
    final = {t.trial_id: outcome.final(t) for t in outcome.trials}  # (time, value) compared
    scored = [t for t in outcome.trials if _finite(final[t.trial_id][1]) is not None]
    if not scored:
        errors = [t.error for t in outcome.trials if t.error]
        cause = errors[0].strip().splitlines()[-1] if errors else "no trial reported a value"
        raise UserError(f"tune.{family}: every trial failed ({cause}); see the trial logs under "
                        f"{params.runtime.storage_path}")
    best = (max if mode == "max" else min)(scored, key=lambda t: final[t.trial_id][1])
    reference = outcome.trials[0]
    length_key = outcome.unit.replace(" ", "_")  # "epochs" | "env_steps"
    applied, reason = verdict(sweep.metric, mode, _finite(final[reference.trial_id][1]), final[best.trial_id][1],
                              best is reference, sweep.min_improvement, f"{outcome.max_t} {outcome.unit}")
    return {
        "family": family,
        "model": sweep.model,
        "metric": sweep.metric,
        "mode": mode,
        "enabled": True,
        "num_trials": len(outcome.trials),
        "num_stopped_early": sum(outcome.stopped_early(t) for t in outcome.trials),
        "best_value": final[best.trial_id][1],
        "best_config": dict(best.config),
        "default_value": _finite(final[reference.trial_id][1]),
        "min_improvement": sweep.min_improvement,
        "applied": applied,  # the tuned file carries best_config (else params.yaml's values stay)
        "reason": reason,
        "confirmation": None,  # the full-length re-check, when the trials were shorter (see confirm)
        "wall_s": round(wall_s, 1),
        "parent_run_id": parent_run_id,
        "experiment_id": experiment_id,
        "trials": [
            {"trial_id": t.trial_id, "config": dict(t.config), "value": _finite(final[t.trial_id][1]),
             length_key: final[t.trial_id][0], "stopped_early": outcome.stopped_early(t)}
            for t in outcome.trials
        ],
    }


def _close_trial_runs(parent_run_id: str, outcome) -> None:
    """Tag every child run of ``outcome``'s trials with how it ended and close those still open (a
    stopped trial's process was killed, so its run is still RUNNING): FINISHED, or FAILED for a
    trial that raised."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    from components import tracking

    records = {t.trial_id: t for t in outcome.trials}
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.`{tracking.PARENT_TAG}` = '{parent_run_id}'",
        output_format="list",
    )
    for run in runs:
        trial = records.get(run.data.tags.get(tracking.TRIAL_TAG))
        if trial is None:
            continue
        tags = {"courselab.stopped_early": str(outcome.stopped_early(trial)).lower(),
                f"courselab.trial_{outcome.unit.replace(' ', '_')}": str(outcome.final(trial)[0])}
        if run.info.status == "RUNNING":
            tracking.end_run(run.info.run_id, "FAILED" if trial.error else "FINISHED", tags=tags)
        else:  # it finished on its own before ASHA's in-order decision stopped it
            MlflowClient().log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _log_parent(params: Params, family: str, summary: dict[str, Any], length: str, outputs: dict[Path, str]) -> None:
    """The parent run: the best trial's values (params ``best.<key>``) and metric, the sweep
    summary, the tuned file and a figure of the metric against each searched parameter."""
    import mlflow

    from components.tracking import figure_png
    from components.tune.figures import metric_vs_params

    sweep = getattr(params.tune, family)
    mlflow.log_params({f"best.{k}": v for k, v in summary["best_config"].items()})
    metrics = {f"best/{sweep.metric}": summary["best_value"], "num_trials": summary["num_trials"],
               "num_stopped_early": summary["num_stopped_early"], "wall_s": summary["wall_s"]}
    if summary["default_value"] is not None:
        metrics[f"default/{sweep.metric}"] = summary["default_value"]
    confirmation = summary["confirmation"]
    for which in ("default", "tuned") if confirmation else ():
        if confirmation[f"{which}_value"] is not None:
            metrics[f"confirm/{which}/{sweep.metric}"] = confirmation[f"{which}_value"]
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"courselab.tuned_kept": "tuned" if summary["applied"] else "default",
                     "courselab.tuned_reason": summary["reason"]})
    trials = summary["trials"]
    best_id = next(t["trial_id"] for t in trials if t["config"] == summary["best_config"]
                   and t["value"] == summary["best_value"])
    fig = metric_vs_params(trials, {k: d.distribution for k, d in sweep.search_space.items()}, sweep.metric,
                           best_id, trials[0]["trial_id"], length)
    with tempfile.TemporaryDirectory(prefix="courselab-sweep-") as directory:  # logged before written
        (Path(directory) / "metric_vs_params.png").write_bytes(figure_png(fig))
        for path, text in outputs.items():
            (Path(directory) / path.name).write_text(text)
        mlflow.log_artifacts(directory, "sweep")


def _sweep_params(params: Params, family: str, length: dict[str, int]) -> dict[str, Any]:
    sweep = getattr(params.tune, family)
    logged = {"model": sweep.model, "metric": sweep.metric, "num_samples": sweep.num_samples,
              **length, "scheduler": sweep.scheduler, "seed": params.seed}
    if sweep.scheduler in ("asha", "pbt"):
        logged.update({f"{sweep.scheduler}.{k}": v for k, v in getattr(sweep, sweep.scheduler).model_dump().items()})
    for key, dist in sweep.search_space.items():
        spec = {k: v for k, v in dist.model_dump().items() if v is not None and k != "distribution"}
        logged[f"search_space.{key}"] = f"{dist.distribution}({', '.join(f'{k}={v}' for k, v in spec.items())})"
    logged.update({f"trial_trainer.{k}": v for k, v in getattr(sweep, "trial_trainer", {}).items()})
    return logged




def confirm(descriptor, params: Params, summary: dict[str, Any], name: str, parent_run_id: str, uri: str,
            root: Path) -> dict[str, Any]:
    """Re-check a win of shorter trials at the train stage's length: the default and the best values
    trained for the model's epochs (two trials, FIFO, children of the sweep's run); returns the
    summary's ``applied``, ``reason`` and ``confirmation``."""
    from components.tune import sweep as sweep_driver

    sweep = descriptor.sweep(params)
    epochs = descriptor.train_length(params)
    print(f"[tune {descriptor.name}/{sweep.model}] confirming at {epochs} epochs: {summary['reason']}", flush=True)
    outcome = sweep_driver.confirm(descriptor, params, summary["best_config"], name, parent_run_id, uri, str(root))
    _close_trial_runs(parent_run_id, outcome)
    reference, tuned = outcome.trials
    default_value, tuned_value = (_finite(outcome.final(t)[1]) for t in (reference, tuned))
    applied, reason = verdict(sweep.metric, summary["mode"], default_value, tuned_value, False, sweep.min_improvement,
                              f"{epochs} epochs")
    return {"applied": applied, "reason": reason,
            "confirmation": {"epochs": epochs, "default_value": default_value, "tuned_value": tuned_value,
                             "trial_ids": [reference.trial_id, tuned.trial_id]}}


def run(family: str, params: Params, root: Path) -> dict[str, Any]:
    """Run the enabled sweep and write its outputs; returns the summary."""
    from components import tracking
    from components.runtime import git_commit, ray_init, with_absolute_paths
    from components.tune import sweep as sweep_driver

    started = time.perf_counter()
    params = with_absolute_paths(params)
    descriptor = get_family(family)
    sweep = descriptor.sweep(params)
    uri = tracking.configure(params.runtime.mlflow_tracking_uri)
    sweep_driver.preflight(descriptor, params)  # missing data fails here, before Ray starts
    ray_init(params.runtime.ray_address)
    sweep_driver.check_trial_fits(descriptor, params)  # one trial must fit, before any run is opened
    length = dict([descriptor.sweep_length(params)])
    name = f"tune-{family}-{sweep.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    tags = {tracking.SWEEP_TAG: name, tracking.GIT_COMMIT_TAG: git_commit(root),
            tracking.STAGE_TAG: os.environ.get("DVC_STAGE", f"tune_{family}"),
            "courselab.family": family, "courselab.model": sweep.model}
    logged = _sweep_params(params, family, length)
    with tracking.sweep_run(descriptor.experiment, f"sweep-{sweep.model}", logged, tags) as parent:
        outcome = sweep_driver.run_sweep(descriptor, params, name, parent.info.run_id, uri, str(root))
        _close_trial_runs(parent.info.run_id, outcome)
        summary = summarize(family, params, outcome, time.perf_counter() - started, parent.info.run_id,
                            parent.info.experiment_id)
        full_length = descriptor.train_length(params)
        if summary["applied"] and full_length is not None and outcome.max_t < full_length:
            summary.update(confirm(descriptor, params, summary, f"{name}-confirm", parent.info.run_id, uri, root))
            summary["wall_s"] = round(time.perf_counter() - started, 1)
        outputs = _outputs(root, family, list(descriptor.models), summary)
        _log_parent(params, family, summary, f"{outcome.max_t} {outcome.unit}", outputs)
    # only after the parent run finished: a failed stage leaves no output that looks valid
    _write(root, family, outputs)
    return summary


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    descriptor = get_family(args.family)
    root = repo_root()
    sweep = descriptor.sweep(params)
    models = list(descriptor.models)
    if not sweep.enabled:
        disabled = {"family": args.family, "model": sweep.model, "enabled": False}
        _write(root, args.family, _outputs(root, args.family, models, disabled))
        print(f"[tune {args.family}] disabled (tune.{args.family}.enabled: false): empty overrides written", flush=True)
        return
    summary = run(args.family, params, root)
    default = summary["default_value"]
    kept = "applied" if summary["applied"] else "not applied (params.yaml's values stay)"
    print(f"[tune {args.family}/{summary['model']}] done in {summary['wall_s']:.0f}s: {summary['num_trials']} trials, "
          f"{summary['num_stopped_early']} stopped early; best {summary['metric']} {summary['best_value']:.4f} "
          f"(default {'n/a' if default is None else f'{default:.4f}'}) with "
          + values_line(summary["best_config"])
          + f"; {kept}: {summary['reason']} -> {tuned_path(root, args.family).relative_to(root)}", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
