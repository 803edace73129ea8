"""The sweep driver: a ``Tuner`` over :func:`components.tune.trial.run_trial`, one line per trial
event, and the summary the tune stage writes (the metrics file's fields)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from components.config import Params
from components.errors import UserError
from components.metrics.direction import best_value
from components.tune import space
from components.tune.schedulers import is_reference
from components.tune.trial import SweepContext, plain, trainable


@dataclass
class TrialRecord:
    """One trial as the sweep saw it: its config and the metric after each epoch it reported."""

    trial_id: str
    config: dict[str, Any]
    values: list[float] = field(default_factory=list)  # the metric per reported epoch
    status: str = "RUNNING"
    error: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.values)

    @property
    def value(self) -> float | None:
        """The metric at the trial's last epoch (what its config reached in the epochs it got)."""
        return self.values[-1] if self.values else None


@dataclass
class SweepOutcome:
    trials: list[TrialRecord]  # in creation order: the first is the default point
    epochs: int  # per trial
    scheduler: str
    concurrency: int
    fit_s: float

    def stopped_early(self, trial: TrialRecord) -> bool:
        """Stopped by the scheduler before the last epoch (PBT and FIFO stop none)."""
        return self.scheduler == "asha" and trial.error is None and trial.epochs < self.epochs


class ProgressLines:
    """A Tune callback printing one line per trial event (start, epoch result, end) and keeping the
    per-epoch values it prints (they are the sweep's record of each trial)."""

    def __init__(self, label: str, metric: str, mode: str, epochs: int, num_samples: int):
        self.label, self.metric, self.mode, self.epochs, self.num_samples = label, metric, mode, epochs, num_samples
        self.records: dict[str, TrialRecord] = {}
        self.started = time.perf_counter()

    def _say(self, line: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[tune {self.label}] {elapsed:5.0f}s  {line}", flush=True)

    def _best(self) -> float | None:
        return best_value([r.value for r in self.records.values() if r.value is not None], self.mode)

    def on_trial_start(self, trial) -> None:
        config = {k: plain(v) for k, v in trial.config.items()}
        self.records.setdefault(trial.trial_id, TrialRecord(trial.trial_id, config))
        shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())
        self._say(f"trial {trial.trial_id} started ({len(self.records)}/{self.num_samples}): {shown}")

    def on_trial_result(self, trial, result: dict) -> None:
        record = self.records[trial.trial_id]
        record.config = {k: plain(v) for k, v in trial.config.items()}  # PBT changes it
        epoch = int(result[space.TIME_ATTR])
        del record.values[epoch - 1:]  # PBT restarts a trial from a copied checkpoint's epoch
        record.values.extend([float("nan")] * (epoch - 1 - len(record.values)))
        record.values.append(float(result.get(self.metric, float("nan"))))
        self._say(f"trial {trial.trial_id} epoch {epoch}/{self.epochs}: {self.metric} {record.value:.4f}"
                  f"  (best so far {self._best():.4f})")

    def on_trial_end(self, trial, error: str | None = None) -> None:
        record = self.records.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.status, record.error = ("ERROR", error) if error else ("TERMINATED", None)
        if error:
            how = f"failed: {error.strip().splitlines()[-1]}"
        elif record.epochs < self.epochs:
            how = f"stopped early after epoch {record.epochs} (below the rung's cutoff)"
        else:
            how = f"completed {record.epochs} epochs"
        done = sum(r.status != "RUNNING" for r in self.records.values())
        self._say(f"trial {trial.trial_id} {how}  [{done}/{self.num_samples} done]")


def _tune_callback(progress: ProgressLines):
    """``progress`` as a ``ray.tune.Callback`` (defined lazily: it imports Ray)."""
    from ray.tune import Callback

    class _Callback(Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            progress.on_trial_start(trial)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            progress.on_trial_result(trial, result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            progress.on_trial_end(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            progress.on_trial_end(trial, error=_error_text(trial))

    return _Callback()


def _error_text(trial) -> str:
    """The last lines of a failed trial's error file (Tune writes the traceback there)."""
    try:
        with open(trial.error_file) as f:
            return f.read().strip() or "error"
    except (OSError, TypeError):
        return "error (no error file)"


def run_sweep(family: str, params: Params, name: str, parent_run_id: str, tracking_uri: str,
              repo_root: str) -> SweepOutcome:
    """Run the sweep ``tune.<family>`` (Ray initialised; MLflow parent run ``parent_run_id`` open)."""
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    sweep = getattr(params.tune, family)
    epochs = space.max_epochs(params, family)
    mode = space.mode(sweep)
    reference = space.default_point(params, family)
    concurrency = space.max_concurrent(sweep, space.trial_trainer(params, family), ray.cluster_resources())
    if sweep.scheduler == "pbt" and concurrency < 2:
        raise UserError(
            f"tune.{family}.scheduler: pbt needs a population of at least 2 trials at once, but only "
            f"{concurrency} fits the cluster ({ray.cluster_resources().get('CPU', 0):g} CPUs); lower "
            f"tune.{family}.trial_trainer.cpus_per_worker or use asha"
        )
    storage = params.runtime.storage_path.rstrip("/")
    context = SweepContext(
        family=family, model=sweep.model, params=params, name=name, storage_path=f"{storage}/{name}/train",
        parent_run_id=parent_run_id, tracking_uri=tracking_uri, repo_root=repo_root, epochs=epochs,
        forward_checkpoints=sweep.scheduler == "pbt",
    )
    progress = ProgressLines(f"{family}/{sweep.model}", sweep.metric, mode, epochs, sweep.num_samples)
    direction = "maximising" if mode == "max" else "minimising"
    print(f"[tune {family}/{sweep.model}] {sweep.num_samples} trials x {epochs} epochs, {sweep.scheduler}, "
          f"{concurrency} at a time, {direction} {sweep.metric}", flush=True)
    tuner = tune.Tuner(
        trainable(context),
        param_space=space.param_space(sweep),
        tune_config=tune.TuneConfig(
            metric=sweep.metric, mode=mode, num_samples=sweep.num_samples,
            scheduler=space.scheduler(sweep, epochs, reference),
            # The generator limits concurrency itself (Tune ignores max_concurrent_trials next to one).
            search_alg=BasicVariantGenerator(points_to_evaluate=[reference], random_state=params.seed,
                                             max_concurrent=concurrency),
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, verbose=0, callbacks=[_tune_callback(progress)],
            failure_config=tune.FailureConfig(max_failures=0),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        ),
    )
    started = time.perf_counter()
    tuner.fit()
    fit_s = time.perf_counter() - started
    trials = sorted(progress.records.values(), key=lambda r: r.trial_id)  # creation order
    trials.sort(key=lambda r: not is_reference(r.config, reference))  # stable: the default point first
    return SweepOutcome(trials=trials, epochs=epochs, scheduler=sweep.scheduler, concurrency=concurrency,
                        fit_s=fit_s)
