"""The sweep driver: a ``Tuner`` over :func:`components.tune.trial.run_trial` (a family) or over the
RLlib algorithm (``tune.rl``), one line per trial event, and each trial's record for the summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from components.config import Params
from components.errors import UserError
from components.families import Family, RLFamily
from components.metrics.direction import best_value
from components.tune import space
from components.tune.overrides import values_line
from components.tune.schedulers import SerialASHA, is_reference
from components.tune.space import plain
from components.tune.trial import SweepContext, trainable


@dataclass
class TrialRecord:
    """One trial as the sweep saw it: its config and the metric at each point of the sweep's time
    axis it reported (epochs, or env steps for RL)."""

    trial_id: str
    config: dict[str, Any]
    points: list[tuple[int, float]] = field(default_factory=list)  # (time, metric) per report
    status: str = "RUNNING"
    error: str | None = None

    @property
    def progress(self) -> int:
        """How far the trial got: its last reported epoch (env step count for RL)."""
        return self.points[-1][0] if self.points else 0

    @property
    def value(self) -> float | None:
        """The metric at the trial's last report (what its config reached in the time it got)."""
        return self.points[-1][1] if self.points else None


@dataclass
class SweepOutcome:
    trials: list[TrialRecord]  # in creation order: the first is the default point
    max_t: int  # per trial, in ``unit``
    unit: str  # "epochs" | "env steps"
    scheduler: str
    concurrency: int
    fit_s: float
    stopped_at: dict[str, float] = field(default_factory=dict)  # ASHA: trial -> the rung it stopped at

    def stopped_early(self, trial: TrialRecord) -> bool:
        """Stopped by ASHA at a rung (PBT and FIFO stop none). ASHA decides in trial order
        (:class:`~components.tune.schedulers.SerialASHA`), so a trial whose decision had to wait
        for an earlier one may have trained on, even to the end, before it was stopped."""
        return trial.trial_id in self.stopped_at

    def final(self, trial: TrialRecord) -> tuple[int, float | None]:
        """``(time, metric)`` that the sweep compares: for a stopped trial, its report at the
        rung that stopped it (what one trial at a time would have reached); at exactly ``max_t``
        for a trial that got there (linear between the two reports around it: an RL iteration may
        overshoot max_t by a whole batch of episodes, so trials would otherwise be compared at
        different env steps); else at the trial's last report (one that failed)."""
        if trial.trial_id in self.stopped_at:
            return next((t, v) for t, v in trial.points if t >= self.stopped_at[trial.trial_id])
        points = trial.points
        if len(points) < 2 or points[-1][0] <= self.max_t or points[-2][0] > self.max_t:
            return trial.progress, trial.value
        (t0, v0), (t1, v1) = points[-2], points[-1]
        return self.max_t, v0 + (v1 - v0) * (self.max_t - t0) / (t1 - t0)


class ProgressLines:
    """A Tune callback printing one line per trial event (start, a result per tenth of the trial,
    end) and keeping every reported value (they are the sweep's record of each trial)."""

    def __init__(self, label: str, metric: str, mode: str, time_attr: str, max_t: int, unit: str,
                 num_samples: int):
        self.label, self.metric, self.mode, self.num_samples = label, metric, mode, num_samples
        self.time_attr, self.max_t, self.unit = time_attr, max_t, unit
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
        shown = values_line(config, "  ")
        self._say(f"trial {trial.trial_id} started ({len(self.records)}/{self.num_samples}): {shown}")

    def on_trial_result(self, trial, result: dict) -> None:
        record = self.records[trial.trial_id]
        record.config = {k: plain(v) for k, v in trial.config.items()}  # PBT changes it
        now = int(result[self.time_attr])
        before = record.progress
        record.points = [p for p in record.points if p[0] < now]  # PBT restarts from a copied checkpoint
        record.points.append((now, float(result.get(self.metric, float("nan")))))
        if now < self.max_t and now * 10 // self.max_t == before * 10 // self.max_t:
            return  # one line per tenth of the trial (every epoch of a short one; RL reports per iteration)
        self._say(f"trial {trial.trial_id} {self.unit} {now}/{self.max_t}: {self.metric} {record.value:.4f}"
                  f"  (best so far {self._best():.4f})")

    def on_trial_end(self, trial, error: str | None = None) -> None:
        record = self.records.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.status, record.error = ("ERROR", error) if error else ("TERMINATED", None)
        if error:
            how = f"failed: {error.strip().splitlines()[-1]}"
        elif record.progress < self.max_t:
            how = f"stopped early after {record.progress} {self.unit} (below the rung's cutoff)"
        else:
            how = f"completed {record.progress} {self.unit}"
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


# What differs between the kinds of family (components/families/base.py) is dispatched on the
# descriptor's class: a Ray Train family's trials run its harness, an RL family's trials are
# RLlib algorithms.


@singledispatch
def preflight(family: Family, params: Params) -> None:
    """Before Ray starts: the tuned model's data exist (a missing path fails here)."""
    family.build_task(family.sweep(params).model, params).datasets()


@preflight.register
def _(family: RLFamily, params: Params) -> None:
    pass  # the envs are generated or ship with their packages


@singledispatch
def check_trial_fits(family: Family, params: Params) -> None:
    """After ``ray.init``, before any run is opened: one trial fits the cluster (a local-path
    trial, num_workers 0, trains in its own Ray actor, which must fit like one worker)."""
    from components.train.harness import check_resources

    trainer = family.trial_trainer(params)
    check_resources(trainer if trainer.num_workers else trainer.model_copy(update={"num_workers": 1}))


@check_trial_fits.register
def _(family: RLFamily, params: Params) -> None:
    pass  # an RLlib trial's resources are known once its algorithm class is built: run_sweep checks them


@singledispatch
def run_sweep(family: Family, params: Params, name: str, parent_run_id: str, tracking_uri: str,
              repo_root: str, points: tuple[dict[str, Any], ...] = ()) -> SweepOutcome:
    """Run the sweep ``tune.<family>`` (Ray initialised; MLflow parent run ``parent_run_id`` open):
    each trial a Ray Train run of the family's harness, reporting every epoch. The first trials run
    the default point, then ``points``, then sampled values."""
    import ray

    sweep = family.sweep(params)
    epochs = family.sweep_length(params)[1]
    per_trial = space.trial_resources(family.trial_trainer(params))
    concurrency = space.max_concurrent(sweep, per_trial, ray.cluster_resources())
    storage = params.runtime.storage_path.rstrip("/")
    context = SweepContext(
        family=family.name, model=sweep.model, params=params, name=name, storage_path=f"{storage}/{name}/train",
        parent_run_id=parent_run_id, tracking_uri=tracking_uri, repo_root=repo_root, epochs=epochs,
        forward_checkpoints=sweep.scheduler == "pbt",
    )
    return _fit(trainable(context), params, family.name, f"{family.name}/{sweep.model}", family.default_point(params),
                space.TIME_ATTR, epochs, family.sweep_unit, concurrency, name, points=points)


def confirm(family: Family, params: Params, best_config: dict[str, Any], name: str, parent_run_id: str,
            tracking_uri: str, repo_root: str) -> SweepOutcome:
    """The default point and ``best_config`` trained for the model's full epochs (FIFO, as many at
    once as fit): a win of shorter trials re-checked at the train stage's length."""
    sweep = family.sweep(params).model_copy(update={"num_samples": 2, "scheduler": "fifo", "trial_epochs": None})
    full = params.model_copy(update={"tune": params.tune.model_copy(update={family.name: sweep})})
    return run_sweep(family, full, name, parent_run_id, tracking_uri, repo_root, points=(best_config,))


@run_sweep.register
def _(family: RLFamily, params: Params, name: str, parent_run_id: str, tracking_uri: str,
      repo_root: str, points: tuple[dict[str, Any], ...] = ()) -> SweepOutcome:
    """Each trial is the RLlib algorithm itself as the trainable
    (:func:`components.tune.rl_trial.sweep_algorithm`), one report per ``train()`` iteration,
    stopped at ``trial_env_steps``."""
    import ray

    from components.tune import rl_trial

    sweep = family.sweep(params)
    context = rl_trial.RLSweepContext(algo=sweep.algo, params=params, name=name, parent_run_id=parent_run_id,
                                      tracking_uri=tracking_uri, search_keys=tuple(sweep.search_space))
    trainable_class = rl_trial.sweep_algorithm(context)
    reference = family.default_point(params)
    per_trial = rl_trial.trial_resources(trainable_class, reference)
    rl_trial.check_trial_fits(per_trial, ray.cluster_resources(), sweep.algo)
    concurrency = space.max_concurrent(sweep, per_trial, ray.cluster_resources())
    steps = family.sweep_length(params)[1]
    return _fit(trainable_class, params, family.name, f"{family.name}/{sweep.algo}", reference, rl_trial.TIME_ATTR,
                steps, family.sweep_unit, concurrency, name, stop={rl_trial.TIME_ATTR: steps}, points=points)


def _fit(trainable_: Any, params: Params, family: str, label: str, reference: dict[str, Any], time_attr: str,
         max_t: int, unit: str, concurrency: int, name: str, stop: dict[str, int] | None = None,
         points: tuple[dict[str, Any], ...] = ()) -> SweepOutcome:
    """The Tuner of a sweep: the default point first, ``concurrency`` trials at a time (set on
    the search generator: Tune ignores ``max_concurrent_trials`` next to one)."""
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    sweep = getattr(params.tune, family)
    mode = space.mode(sweep)
    if sweep.scheduler == "pbt" and concurrency < 2:
        raise UserError(
            f"tune.{family}.scheduler: pbt needs a population of at least 2 trials at once, but only "
            f"{concurrency} fits the cluster ({ray.cluster_resources().get('CPU', 0):g} CPUs); lower "
            f"the trials' CPUs or use asha"
        )
    progress = ProgressLines(label, sweep.metric, mode, time_attr, max_t, unit, sweep.num_samples)
    direction = "maximising" if mode == "max" else "minimising"
    print(f"[tune {label}] {sweep.num_samples} trials x {max_t} {unit}, {sweep.scheduler}, "
          f"{concurrency} at a time, {direction} {sweep.metric}", flush=True)
    storage = params.runtime.storage_path.rstrip("/")
    scheduler = space.scheduler(sweep, max_t, reference, time_attr)
    tuner = tune.Tuner(
        trainable_,
        param_space=space.param_space(sweep),
        tune_config=tune.TuneConfig(
            metric=sweep.metric, mode=mode, num_samples=sweep.num_samples,
            scheduler=scheduler,
            search_alg=BasicVariantGenerator(points_to_evaluate=[reference, *points], random_state=params.seed,
                                             max_concurrent=concurrency),
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, verbose=0, callbacks=[_tune_callback(progress)], stop=stop,
            failure_config=tune.FailureConfig(max_failures=0),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None, checkpoint_at_end=False),
        ),
    )
    started = time.perf_counter()
    tuner.fit()
    fit_s = time.perf_counter() - started
    trials = sorted(progress.records.values(), key=lambda r: r.trial_id)  # creation order
    trials.sort(key=lambda r: not is_reference(r.config, reference))  # stable: the default point first
    stopped_at = dict(scheduler.rungs.stopped_at) if isinstance(scheduler, SerialASHA) else {}
    outcome = SweepOutcome(trials=trials, max_t=max_t, unit=unit, scheduler=sweep.scheduler, concurrency=concurrency,
                           fit_s=fit_s, stopped_at=stopped_at)
    for record in trials:
        if outcome.stopped_early(record) and outcome.final(record)[0] < record.progress:
            progress._say(f"trial {record.trial_id} counts as stopped at {outcome.final(record)[0]:g} {unit}, its rung "
                          f"(the decision waited for an earlier trial's value there; it trained on meanwhile)")
    return outcome
