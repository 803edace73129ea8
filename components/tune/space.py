"""``tune.<family>`` as Ray Tune sees it: sampling domains, the default point, the scheduler and
how many trials run at once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from components.config import Params, SearchDistribution, SweepConfig, TrainerConfig
from components.metrics.direction import metric_mode
from components.tune.overrides import TRAINER_PREFIX

TIME_ATTR = "training_iteration"  # one Tune result per epoch (the harness reports every epoch)


def domain(spec: SearchDistribution):
    """The ``ray.tune`` sampling domain of one search key."""
    from ray import tune

    match spec.distribution:
        case "loguniform":
            return tune.loguniform(spec.low, spec.high)
        case "uniform":
            return tune.uniform(spec.low, spec.high)
        case "quniform":
            return tune.quniform(spec.low, spec.high, spec.q)
        case "qloguniform":
            return tune.qloguniform(spec.low, spec.high, spec.q)
        case "randint":
            return tune.randint(int(spec.low), int(spec.high))
        case "choice":
            return tune.choice(list(spec.values))
    raise ValueError(f"unknown distribution {spec.distribution!r}")  # unreachable: the schema checks it


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """``{search key: domain}``: the trial config is flat, keyed like ``search_space``."""
    return {key: domain(spec) for key, spec in sweep.search_space.items()}


def mutations(sweep: SweepConfig) -> dict[str, Any]:
    """PBT's explore step per key: numbers are perturbed (x0.8 / x1.2) or resampled from their
    domain; ``choice`` keys move to a neighbouring value (a list, as PBT expects for categories)."""
    return {key: list(spec.values) if spec.distribution == "choice" else domain(spec)
            for key, spec in sweep.search_space.items()}


def trial_trainer(params: Params, family: str) -> TrainerConfig:
    """The family's trainer as the sweep's trials use it (``tune.<family>.trial_trainer`` applied)."""
    sweep = getattr(params.tune, family)
    return getattr(params, family).trainer.model_copy(update=dict(sweep.trial_trainer))


def default_point(params: Params, family: str) -> dict[str, Any]:
    """The current values of every search key (the model's params, or the trials' trainer): the
    first trial runs them, so "tuned beats default" is measured within the sweep."""
    sweep = getattr(params.tune, family)
    model_cfg = getattr(getattr(params, family).models, sweep.model)
    trainer = trial_trainer(params, family)
    return {
        key: getattr(trainer, key.removeprefix(TRAINER_PREFIX)) if key.startswith(TRAINER_PREFIX)
        else getattr(model_cfg, key)
        for key in sweep.search_space
    }


def mode(sweep: SweepConfig) -> str:
    return metric_mode(sweep.metric)


def max_epochs(params: Params, family: str) -> int:
    sweep = getattr(params.tune, family)
    return sweep.trial_epochs or getattr(getattr(params, family).models, sweep.model).epochs


def max_concurrent(sweep: SweepConfig, trainer: TrainerConfig, cluster: Mapping[str, float]) -> int:
    """``max_concurrent_trials`` when set, else how many trials' Ray Train workers the cluster
    holds at once (CPUs, GPUs and custom resources per trial = num_workers x per-worker amounts),
    at least 1 and at most ``num_samples``."""
    if sweep.max_concurrent_trials is not None:
        return min(sweep.max_concurrent_trials, sweep.num_samples)
    per_trial = {"CPU": trainer.cpus_per_worker, **trainer.resources_per_worker}
    if trainer.use_gpu:
        per_trial["GPU"] = trainer.gpus_per_worker
    fits = min(
        math.floor(cluster.get(name, 0) / (amount * trainer.num_workers) + 1e-9)
        for name, amount in per_trial.items() if amount > 0
    )
    return max(1, min(fits, sweep.num_samples))


def scheduler(sweep: SweepConfig, epochs: int, reference: Mapping[str, Any]):
    """The trial scheduler: ASHA (stops trials below the rung's quantile), PBT (copies better
    trials' weights and perturbs their hyperparameters) or FIFO (runs every trial to the end).

    ``reference`` is the default point: its trial always runs to the end (ASHA) and is never
    overwritten (PBT), so the default's value is measured at the same length as the best trial's.
    """
    from components.tune.schedulers import ReferenceASHA, ReferencePBT

    match sweep.scheduler:
        case "asha":
            return ReferenceASHA(
                reference, time_attr=TIME_ATTR, max_t=epochs, grace_period=min(sweep.asha.grace_period, epochs),
                reduction_factor=sweep.asha.reduction_factor,
            )
        case "pbt":
            return ReferencePBT(
                reference, time_attr=TIME_ATTR, perturbation_interval=sweep.pbt.perturbation_interval,
                hyperparam_mutations=mutations(sweep), quantile_fraction=sweep.pbt.quantile_fraction,
                resample_probability=sweep.pbt.resample_probability,
            )
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()
