"""``TransitionReplayDQN``: RLlib's DQN (module, loss, target network, epsilon-greedy runners) with
its replay path swapped for :class:`~components.families.rl.dqn.replay.TransitionReplayBuffer`.

One ``training_step``: sample a rollout fragment from the env runners, append it to the buffer, then
(after ``num_steps_sampled_before_learning_starts``) run as many SGD updates as keep
``training_intensity`` replayed transitions per sampled env step, each on a batch straight from the
buffer's arrays (no episode objects, no learner connector), feed the TD errors back as priorities,
and push the new weights to the env runners once.
"""

from __future__ import annotations

import numpy as np
from ray.rllib.algorithms.dqn import DQN, DQNConfig
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TD_ERROR_KEY,
    TIMERS,
)
from ray.rllib.utils.numpy import convert_to_numpy

from components.families.rl.dqn.replay import TransitionReplayBuffer


class TransitionReplayDQNConfig(DQNConfig):
    """RLlib's ``DQNConfig``; the replay buffer's ``capacity``, ``alpha`` and ``beta`` come from
    ``replay_buffer_config`` as for RLlib's prioritised buffer (no ``alpha``: uniform replay)."""

    def __init__(self, algo_class=None) -> None:
        super().__init__(algo_class=algo_class or TransitionReplayDQN)


class TransitionReplayDQN(DQN):
    @classmethod
    def get_default_config(cls) -> TransitionReplayDQNConfig:
        return TransitionReplayDQNConfig()

    def setup(self, config) -> None:
        self._updates_owed = 0.0  # fractional SGD updates carried to the next training_step
        super().setup(config)

    def _create_local_replay_buffer_if_necessary(self, config) -> TransitionReplayBuffer:
        replay = config["replay_buffer_config"]
        return TransitionReplayBuffer(replay["capacity"], alpha=replay.get("alpha", 0.0),
                                      seed=config.get("seed") or 0)

    def training_step(self) -> None:
        config = self.config
        buffer: TransitionReplayBuffer = self.local_replay_buffer
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = synchronous_parallel_sample(
                worker_set=self.env_runner_group, concat=True, sample_timeout_s=config.sample_timeout_s,
                _uses_new_env_runners=True, _return_metrics=True,
            )
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            buffer.add(episodes)

        lifetime = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if lifetime < config.num_steps_sampled_before_learning_starts:
            return
        batch_size = config.total_train_batch_size
        sampled = sum(len(episode) for episode in episodes)
        self._updates_owed += sampled * self._replayed_per_env_step() / batch_size
        updates, self._updates_owed = int(self._updates_owed), self._updates_owed % 1
        n_step = config.n_step if isinstance(config.n_step, tuple | list) else (config.n_step, config.n_step)
        timesteps = {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: lifetime,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}),
        }
        learner_results = []
        for _ in range(updates):
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
                batch = buffer.sample(batch_size, tuple(n_step), config.gamma,
                                      beta=config.replay_buffer_config.get("beta", 0.0))
                indices = batch.pop("indices")
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self.learner_group.update(
                    batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(batch)}, env_steps=batch_size),
                    timesteps=timesteps,
                )
            td_errors = np.concatenate([
                convert_to_numpy(result[DEFAULT_MODULE_ID].pop(TD_ERROR_KEY).peek()) for result in results
            ])
            buffer.update_priorities(indices, td_errors)
            learner_results.extend(results)
        if not learner_results:
            return
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0]) - {ALL_MODULES},
                inference_only=True,
            )

    def _replayed_per_env_step(self) -> float:
        """``training_intensity`` or, unset, RLlib's native ratio: one batch per rollout fragment."""
        config = self.config
        if config.training_intensity is not None:
            return config.training_intensity
        fragment = config.get_rollout_fragment_length() * config.num_envs_per_env_runner
        return config.total_train_batch_size / (fragment * max(1, config.num_env_runners))
