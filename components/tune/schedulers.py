"""ASHA and PBT that leave the reference trial (the model's current values) alone.

The sweep reports "tuned vs default" from one run: the default point is its first trial. Plain ASHA
may stop that trial at a rung, and plain PBT may overwrite it with a better trial's weights and
config; either way its value would no longer be the default's at the full trial length. These
subclasses keep every other decision of Ray's schedulers (the reference's results still count
in ASHA's rungs and PBT's quantiles; it can still be the trial others copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, PopulationBasedTraining, TrialScheduler


def is_reference(config: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
    return all(config.get(key) == value for key, value in reference.items())


class ReferenceASHA(AsyncHyperBandScheduler):
    """ASHA whose reference trial is never stopped before ``max_t``; completed trials end on their
    own (``stop_last_trials=False``), so "stopped early" means stopped by a rung."""

    def __init__(self, reference: Mapping[str, Any], **kwargs: Any):
        super().__init__(stop_last_trials=False, **kwargs)
        self._reference = dict(reference)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)  # records the rung value
        if action == TrialScheduler.STOP and is_reference(trial.config, self._reference):
            self._num_stopped -= 1
            return TrialScheduler.CONTINUE
        return action


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
