"""``tune.<family>`` in params.yaml: one Ray Tune sweep per family (stage ``tune_<family>``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Section

# --- sweeps (Ray Tune) --------------------------------------------------------------------------

_LOG_DISTRIBUTIONS = ("loguniform", "qloguniform")
_QUANTIZED = ("quniform", "qloguniform")


class SearchDistribution(Section):
    """One searched key, mapped to a ``ray.tune`` sampling function (components/tune/space.py):
    ``loguniform``/``uniform`` take ``low`` < ``high``; ``quniform``/``qloguniform`` also ``q`` (the
    rounding step); ``randint`` integer ``low`` <= x < ``high`` (as ``ray.tune.randint``); ``choice``
    takes ``values``. Keys a distribution does not use are left out of params.yaml (the one place
    this schema has optional keys)."""

    distribution: Literal["loguniform", "uniform", "quniform", "qloguniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    q: PositiveFloat | None = None
    values: Annotated[list[Any], Field(min_length=1)] | None = None

    @field_validator("low")
    @classmethod
    def _positive_for_log(cls, low: float | None, info: ValidationInfo) -> float | None:
        distribution = info.data.get("distribution")
        if low is not None and distribution in _LOG_DISTRIBUTIONS and low <= 0:
            raise ValueError(f"must be > 0 for {distribution} (it samples the logarithm)")
        return low

    @field_validator("high")
    @classmethod
    def _above_low(cls, high: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("low")
        if high is not None and low is not None and high <= low:
            raise ValueError(f"must be > low ({low:g})")
        return high

    @model_validator(mode="after")
    def _keys_of_distribution(self) -> SearchDistribution:
        name = self.distribution
        if name == "choice":
            if self.values is None or any(v is not None for v in (self.low, self.high, self.q)):
                raise ValueError("choice takes values: [...] (and no low, high or q)")
            return self
        if self.low is None or self.high is None or self.values is not None:
            raise ValueError(f"{name} takes low and high (and no values)")
        if (self.q is None) == (name in _QUANTIZED):
            raise ValueError(f"{name} {'needs' if name in _QUANTIZED else 'takes no'} q")
        if name == "randint" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"randint bounds must be integers (got {self.low:g}, {self.high:g})")
        return self


class ASHAConfig(Section):
    grace_period: PositiveInt  # epochs every trial trains before it can be stopped
    reduction_factor: Annotated[float, Field(gt=1)]  # at each rung only the top 1/reduction_factor go on


class PBTConfig(Section):
    perturbation_interval: PositiveInt  # epochs between exploit (copy a better trial) / explore steps
    quantile_fraction: Annotated[float, Field(gt=0, le=0.5)]  # bottom fraction copies the top fraction
    resample_probability: Annotated[float, Field(ge=0, le=1)]  # explore: resample instead of perturbing


class SweepConfig(Section):
    """A Ray Tune sweep over one model of a family (stage ``tune_<family>``)."""

    enabled: bool  # false: the stage writes empty overrides and runs no trial
    model: str  # the model of the family whose params are searched
    metric: str  # a fixed metric key (val/miou, val/map, ...); its direction gives Tune's mode
    num_samples: PositiveInt  # trials, the first of them the model's current (default) values
    trial_epochs: PositiveInt | None  # epochs per trial (its lr schedule spans them); null: the model's epochs
    scheduler: Literal["asha", "pbt", "fifo"]
    asha: ASHAConfig
    pbt: PBTConfig
    max_concurrent_trials: PositiveInt | None  # null: as many as the cluster's CPUs/GPUs fit at once
    min_improvement: NonNegativeFloat  # the best values replace the default only if better by this (metric units)
    trial_trainer: dict[str, Any]  # overrides of <family>.trainer for the trials (e.g. cpus_per_worker)
    search_space: Annotated[dict[str, SearchDistribution], Field(min_length=1)]  # model keys or trainer.<key>

    @field_validator("metric")
    @classmethod
    def _has_direction(cls, metric: str) -> str:
        from components.metrics.direction import known_metrics, metric_mode

        if metric_mode(metric) is None:
            raise ValueError(
                f"no known direction for {metric!r}; use <split>/<name> with a name in: {', '.join(known_metrics())}"
            )
        return metric
