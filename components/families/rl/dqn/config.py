"""RLlib's DQN (new API stack) configured from ``params.yaml`` (``rl.algos.dqn``).

The course's three ingredients map onto RLlib's options one to one: experience replay
(``replay_buffer_config``, optionally prioritised), a target network (``target_network_update_freq``)
and an epsilon-greedy schedule (``epsilon``, linear from ``epsilon_start`` to ``epsilon_end`` over
``epsilon_timesteps`` env steps). Double-Q, the dueling head and n-step returns are RLlib's
extensions, exposed as params.

``replay_buffer`` picks where replayed transitions come from: ``transitions`` (the default) is our
:class:`TransitionReplayDQN`, RLlib's DQN with a flat-array buffer (``replay.py``); ``episodes`` is
RLlib's own ``(Prioritized)EpisodeReplayBuffer`` and training step, ~5x slower per replayed
transition here (BENCHMARKS.md) but storing each observation once (what an Atari run with a large
buffer wants).
"""

from __future__ import annotations

from typing import Any

from components.families.rl.config import DQNConfig as DQNParams


def build_dqn_config(cfg: DQNParams, env_config: dict[str, Any], seed: int):
    """An RLlib ``DQNConfig`` for ``cfg``; ``env_config`` reaches the env creator (grid world settings)."""
    from ray.rllib.algorithms.dqn import DQNConfig

    from components.families.rl.dqn.algorithm import TransitionReplayDQNConfig
    from components.families.rl.rllib_config import with_common_settings

    replay = {"type": "PrioritizedEpisodeReplayBuffer" if cfg.prioritized_replay else "EpisodeReplayBuffer",
              "capacity": cfg.replay_capacity}
    if cfg.prioritized_replay:
        replay.update(alpha=cfg.replay_alpha, beta=cfg.replay_beta)
    n_step = cfg.n_step[0] if len(cfg.n_step) == 1 else tuple(cfg.n_step)
    algo_config = with_common_settings(
        TransitionReplayDQNConfig() if cfg.replay_buffer == "transitions" else DQNConfig(),
        cfg, env_config, seed,
        head_fcnet_hiddens=list(cfg.hiddens),  # the dueling value and advantage streams
        head_fcnet_activation=cfg.activation,
    )
    if cfg.rollout_fragment_length is not None:
        algo_config = algo_config.env_runners(rollout_fragment_length=cfg.rollout_fragment_length)
    return algo_config.training(
        train_batch_size_per_learner=cfg.train_batch_size,
        replay_buffer_config=replay,
        store_buffer_in_checkpoints=True,  # a resumed run keeps its experience
        n_step=n_step,
        double_q=cfg.double_q,
        dueling=cfg.dueling,
        epsilon=[(0, cfg.epsilon_start), (cfg.epsilon_timesteps, cfg.epsilon_end)],
        target_network_update_freq=cfg.target_network_update_freq,
        num_steps_sampled_before_learning_starts=cfg.learning_starts,
        training_intensity=cfg.training_intensity,
    )
