"""``tune.<family>`` as Ray Tune sees it: sampling domains, the default point, the scheduler and
how many trials run at once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from components.metrics.direction import metric_mode
from components.schema import TrainerConfig
from components.tune.config import SearchDistribution

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


def plain(value: Any) -> Any:
    """A sampled value as a Python scalar (Tune may hand out NumPy ones)."""
    return value.item() if hasattr(value, "item") else value


def param_space(sweep: BaseModel) -> dict[str, Any]:
    """``{search key: domain}``: the trial config is flat, keyed like ``search_space``."""
    return {key: domain(spec) for key, spec in sweep.search_space.items()}


def mutations(sweep: BaseModel) -> dict[str, Any]:
    """PBT's explore step per key: numbers are perturbed (x0.8 / x1.2) or resampled from their
    domain; ``choice`` keys move to a neighbouring value (a list, as PBT expects for categories)."""
    return {key: list(spec.values) if spec.distribution == "choice" else domain(spec)
            for key, spec in sweep.search_space.items()}


def within_bounds(sweep: BaseModel, reference: Mapping[str, Any]):
    """PBT's ``custom_explore_fn``: a perturbed value (x0.8 / x1.2) clipped back into the sweep's
    range (the search bounds, widened to the default point's value when that lies outside), so that
    it stays valid (a gamma of 0.99 x 1.2 is no discount factor) and within what the sweep
    explores; integers stay integers."""

    def clip(config: dict[str, Any]) -> dict[str, Any]:
        for key, spec in sweep.search_space.items():
            if spec.distribution == "choice" or key not in config:
                continue
            high = spec.high - 1 if spec.distribution == "randint" else spec.high
            low, high = min(spec.low, reference.get(key, spec.low)), max(high, reference.get(key, high))
            value = min(max(config[key], low), high)
            config[key] = round(value) if isinstance(config[key], int) else value
        return config

    return clip


def mode(sweep: BaseModel) -> str:
    return metric_mode(sweep.metric)


def trial_resources(trainer: TrainerConfig) -> dict[str, float]:
    """What one trial reserves: num_workers x the per-worker CPUs, GPUs and custom resources of
    its Ray Train workers, or on the local path (``num_workers: 0``) one worker's CPUs and GPUs,
    held by the trial's own process, which trains."""
    workers = max(trainer.num_workers, 1)
    per_trial = {"CPU": trainer.cpus_per_worker * workers}
    if trainer.num_workers:
        per_trial.update({name: amount * workers for name, amount in trainer.resources_per_worker.items()})
    if trainer.use_gpu:
        per_trial["GPU"] = trainer.gpus_per_worker * workers
    return per_trial


def max_concurrent(sweep: BaseModel, per_trial: Mapping[str, float],
                   cluster: Mapping[str, float]) -> int:
    """``max_concurrent_trials`` when set, else how many trials the cluster holds at once given
    what one trial reserves (``per_trial``: CPUs, GPUs and custom resources, e.g. num_workers x
    the per-worker amounts of a Ray Train trial), at least 1 and at most ``num_samples``."""
    if sweep.max_concurrent_trials is not None:
        return min(sweep.max_concurrent_trials, sweep.num_samples)
    fits = [math.floor(cluster.get(name, 0) / amount + 1e-9) for name, amount in per_trial.items() if amount > 0]
    return max(1, min(min(fits, default=sweep.num_samples), sweep.num_samples))


def scheduler(sweep: BaseModel, max_t: int, reference: Mapping[str, Any],
              time_attr: str = TIME_ATTR):
    """The trial scheduler: ASHA (stops trials below the rung's quantile), PBT (copies better
    trials' weights and perturbs their hyperparameters) or FIFO (runs every trial to the end).

    ``reference`` is the default point: its trial always runs to the end (ASHA) and is never
    overwritten (PBT), so the default's value is measured at the same length as the best trial's.
    ASHA decides in trial order whatever the timing (:class:`~components.tune.schedulers.SerialASHA`).
    ``time_attr``/``max_t``: the trials' time axis (epochs; env steps for RL) and length on it.
    """
    from components.tune.schedulers import ReferencePBT, SerialASHA

    match sweep.scheduler:
        case "asha":
            return SerialASHA(
                reference, time_attr=time_attr, max_t=max_t, grace_period=min(sweep.asha.grace_period, max_t),
                reduction_factor=sweep.asha.reduction_factor,
            )
        case "pbt":
            return ReferencePBT(
                reference, time_attr=time_attr, perturbation_interval=sweep.pbt.perturbation_interval,
                hyperparam_mutations=mutations(sweep), quantile_fraction=sweep.pbt.quantile_fraction,
                resample_probability=sweep.pbt.resample_probability, custom_explore_fn=within_bounds(sweep, reference),
            )
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()
