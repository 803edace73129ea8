"""``Reinforce``: sample whole episodes, one policy-gradient step on them, push the new weights."""

from __future__ import annotations

import math

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import ALL_MODULES
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from components.families.rl.reinforce.config import ReinforceAlgoConfig


class Reinforce(Algorithm):
    """REINFORCE: each ``training_step`` is one gradient step on ``episodes_per_batch`` complete,
    freshly sampled (on-policy) episodes; ``train()`` runs one or more steps (RLlib's
    ``min_*_per_iteration`` settings) and reports the usual ``env_runners``/``learners`` results."""

    @classmethod
    def get_default_config(cls) -> ReinforceAlgoConfig:
        return ReinforceAlgoConfig()

    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = self._sample_episodes()
        if not episodes:  # every remote runner failed or timed out
            return
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)

        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                },
            )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0].keys()) - {ALL_MODULES},
                inference_only=True,
            )

    def _sample_episodes(self) -> tuple[list, list[dict]]:
        """``episodes_per_batch`` complete episodes (at least; split evenly over the remote runners,
        or all from the local one) and each runner's metrics."""
        group = self.env_runner_group
        remote = group.num_healthy_remote_workers()
        per_runner = math.ceil(self.config.episodes_per_batch / max(remote, 1))

        def sample(runner):
            return runner.sample(num_episodes=per_runner), runner.get_metrics()

        results = group.foreach_env_runner(
            sample, local_env_runner=remote == 0, timeout_seconds=self.config.sample_timeout_s
        )
        episodes = [episode for runner_episodes, _ in results for episode in runner_episodes]
        return episodes, [metrics for _, metrics in results]

