"""Sweep schedulers that leave the reference trial (the model's current values) alone, and an ASHA
whose decisions do not depend on timing.

The sweep reports "tuned vs default" from one run: the default point is its first trial. Plain ASHA
may stop that trial at a rung, and plain PBT may overwrite it with a better trial's weights and
config; either way its value would no longer be the default's at the full trial length.

Ray's ASHA is asynchronous: a trial reaching a rung is compared with whatever values that rung has
recorded so far, so with two trials at a time the outcome depends on which result arrives first
(a loaded machine picked another "best" config than an idle one). :class:`SerialASHA` makes each
decision exactly as ASHA would with one trial at a time in creation order (trial ``i`` at a rung is
compared with the rung values of trials ``0..i-1`` that reached it), waiting when an earlier trial
has not reached the rung yet: trials keep running concurrently, but the same params and seed give
the same stopping decisions on any machine and load. A trial whose decision was still pending
trains on; if it is then stopped, only its value at the rung counts (``stopped_at``).

PBT stays asynchronous (Ray's exploit step copies whichever trials are ahead at that moment): with
``scheduler: pbt`` the outcome depends on timing, as the README says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, PopulationBasedTraining, TrialScheduler


def is_reference(config: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
    return all(config.get(key) == value for key, value in reference.items())


def rung_milestones(grace_period: float, reduction_factor: float, max_t: float) -> list[float]:
    """ASHA's rungs below ``max_t``: grace, grace x rf, grace x rf^2, ... (a trial reaching
    ``max_t`` has ended anyway)."""
    milestones, milestone = [], grace_period
    while milestone < max_t:
        milestones.append(milestone)
        milestone *= reduction_factor
    return milestones


class SerialRungs:
    """ASHA's bookkeeping replayed in trial order: which trial stops at which rung, given each
    trial's reports (time, value), whatever order they arrived in.

    ``value`` is the score ASHA maximises (the metric, negated for ``mode: min``). A trial's value
    at a rung is its first report at or past the milestone (an RL iteration may overshoot it). The
    cutoff is Ray's: the ``1 - 1/rf`` percentile (NaNs ignored) of the rung values of the earlier
    trials that reached the rung, so a trial is stopped when below the best ``1/rf`` of those.
    """

    def __init__(self, milestones: list[float], reduction_factor: float):
        self.milestones, self.reduction_factor = list(milestones), reduction_factor
        self.order: list[str] = []
        self.protected: set[str] = set()  # never stopped (the reference trial)
        self.reports: dict[str, list[tuple[float, float]]] = {}
        self.ended: set[str] = set()
        self.stopped_at: dict[str, float] = {}  # decided: trial -> the milestone it stopped at
        self._decided: dict[str, int] = {}  # trial -> how many rungs it has been decided past

    def add(self, trial_id: str, protected: bool = False) -> None:
        if trial_id not in self.reports:
            self.order.append(trial_id)
            self.reports[trial_id] = []
            self._decided[trial_id] = 0
        if protected:
            self.protected.add(trial_id)

    def report(self, trial_id: str, time: float, value: float) -> None:
        self.reports[trial_id].append((time, value))

    def end(self, trial_id: str) -> None:
        self.ended.add(trial_id)

    def rung_value(self, trial_id: str, milestone: float) -> float | None:
        return next((v for t, v in self.reports[trial_id] if t >= milestone), None)

    def _reached(self, trial_id: str, rung: int) -> bool | None:
        """Whether the trial reached rung ``rung`` in the serial replay (None: not known yet)."""
        if trial_id in self.stopped_at and self.stopped_at[trial_id] < self.milestones[rung]:
            return False
        if self._decided[trial_id] < rung:
            return None  # an earlier rung's decision is pending
        if self.rung_value(trial_id, self.milestones[rung]) is not None:
            return True
        return False if trial_id in self.ended else None

    def resolve(self) -> None:
        """Make every decision that the reports so far determine, in trial order."""
        for index, trial_id in enumerate(self.order):
            while trial_id not in self.stopped_at and self._decided[trial_id] < len(self.milestones):
                rung = self._decided[trial_id]
                milestone = self.milestones[rung]
                value = self.rung_value(trial_id, milestone)
                if value is None:
                    break  # not there yet (or never: a trial that ended before the rung)
                earlier = [self._reached(other, rung) for other in self.order[:index]]
                if None in earlier:
                    break  # an earlier trial may still record a value at this rung
                recorded = [self.rung_value(other, milestone) for other, reached in
                            zip(self.order[:index], earlier, strict=True) if reached]
                cutoff = np.nanpercentile(recorded, (1 - 1 / self.reduction_factor) * 100) if recorded else None
                if (trial_id not in self.protected and cutoff is not None and not math.isnan(cutoff)
                        and value < cutoff):
                    self.stopped_at[trial_id] = milestone
                self._decided[trial_id] = rung + 1

    def stops(self, trial_id: str, time: float) -> bool:
        """Whether a trial now at ``time`` is to stop (decided at a rung it has reached)."""
        return trial_id in self.stopped_at and self.stopped_at[trial_id] <= time


class SerialASHA(FIFOScheduler):
    """ASHA (rungs at grace x rf^k, the top ``1/rf`` go on) deciding in trial order, as one trial
    at a time would (see the module docstring); the reference trial is never stopped."""

    def __init__(self, reference: Mapping[str, Any], time_attr: str, max_t: float, grace_period: float,
                 reduction_factor: float):
        super().__init__()
        self._reference, self._time_attr = dict(reference), time_attr
        self.rungs = SerialRungs(rung_milestones(grace_period, reduction_factor, max_t), reduction_factor)
        self._metric: str | None = None
        self._sign = 1.0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._sign = 1.0 if mode == "max" else -1.0
        return True

    def on_trial_add(self, tune_controller, trial) -> None:
        self.rungs.add(trial.trial_id, protected=is_reference(trial.config, self._reference))

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        time, value = result[self._time_attr], result.get(self._metric)
        self.rungs.report(trial.trial_id, time, float("nan") if value is None else self._sign * float(value))
        self.rungs.resolve()
        return TrialScheduler.STOP if self.rungs.stops(trial.trial_id, time) else TrialScheduler.CONTINUE

    def _end(self, trial) -> None:
        self.rungs.end(trial.trial_id)
        self.rungs.resolve()

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._end(trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._end(trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._end(trial)

    def debug_string(self) -> str:
        return f"SerialASHA: rungs at {self.rungs.milestones}, {len(self.rungs.stopped_at)} stopped"


class ReferencePBT(PopulationBasedTraining):
    """PBT whose reference trial is never in the quantile that exploits (it keeps its config), and
    which never pauses a trial to let a waiting one run: the sweep's search algorithm already
    limits how many trials are alive, and each pause would restart a whole Train run."""

    def __init__(self, reference: Mapping[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self._reference = dict(reference)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        return TrialScheduler.CONTINUE if decision == TrialScheduler.PAUSE else decision

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        # Ray 2.60's hook between ranking and exploiting (pinned version; see pyproject.toml).
        if is_reference(trial.config, self._reference):
            lower_quantile = [t for t in lower_quantile if t is not trial]
        return super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)
