"""The environments the RL family runs, registered with gymnasium and with Ray Tune.

``ENV_NAMES`` is the registry params may name. RLlib's env runners build envs by the name given
to ``ray.tune.register_env`` (gymnasium's own registry is not visible inside Ray workers), so
:func:`register_envs` registers each creator there too.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from components.families.rl.names import BREAKOUT, CARTPOLE, ENV_NAMES, GRIDWORLD, TABULAR

__all__ = ["BREAKOUT", "CARTPOLE", "ENV_NAMES", "GRIDWORLD", "TABULAR", "env_config", "make_env", "make_rllib_env",
           "register_envs"]


def env_config(algo: str, params: Any) -> dict[str, Any]:
    """What the env creator receives for ``rl.algos.<algo>`` (``params``: the validated params):
    the grid world's settings when the algorithm runs on it, else nothing."""
    cfg = getattr(params.rl.algos, algo)
    if algo in TABULAR or cfg.env == GRIDWORLD:
        return params.rl.gridworld.model_dump()
    return {}


def make_breakout(**kwargs: Any) -> gym.Env:
    """Breakout with the DQN paper's preprocessing: 4-frame skip (max-pooled), 84x84 grayscale,
    a stack of the last 4 frames, and life loss ending the episode for learning.

    Observation: float32 (84, 84, 4) in [0, 1], channels last as RLlib's conv encoders expect.
    """
    import ale_py

    gym.register_envs(ale_py)
    # the ALE's own frame skip is off so that AtariPreprocessing max-pools the last two frames
    env = gym.make(BREAKOUT, frameskip=1, repeat_action_probability=0.0, **kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env, frame_skip=4, screen_size=84, grayscale_obs=True, terminal_on_life_loss=True, noop_max=30
    )
    env = gym.wrappers.FrameStackObservation(env, stack_size=4)
    return _ChannelsLast(env)


class _ChannelsLast(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """(4, 84, 84) uint8 frame stacks -> (84, 84, 4) float32 in [0, 1], as RLlib's conv encoders take them.

    The float frames cost 4x the memory of bytes in the replay buffer (~113 kB per observation):
    size ``replay_capacity`` for the machine (50,000 frames ~ 6 GB).
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        shape = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0.0, 1.0, (shape[1], shape[2], shape[0]), dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, dtype=np.float32).transpose(1, 2, 0) / 255.0


def make_env(name: str, config: dict[str, Any] | None = None) -> gym.Env:
    """Build one of ``ENV_NAMES``. ``config``: the grid world's settings; Breakout takes an optional
    ``max_episode_steps`` (agent steps); CartPole ignores it."""
    config = dict(config or {})
    if name == GRIDWORLD:
        from components.families.rl.gridworld import GridWorld

        return gym.wrappers.TimeLimit(GridWorld(**{k: v for k, v in config.items() if k != "max_episode_steps"}),
                                      max_episode_steps=config.get("max_episode_steps", 100))
    if name == CARTPOLE:
        return gym.make(CARTPOLE)
    if name == BREAKOUT:
        env = make_breakout()
        if "max_episode_steps" in config:  # e.g. for smoke tests: a greedy agent that never serves never ends
            env = gym.wrappers.TimeLimit(env, max_episode_steps=config["max_episode_steps"])
        return env
    from components.errors import UserError

    raise UserError(f"unknown env {name!r}; registered: {', '.join(ENV_NAMES)}")


def make_rllib_env(name: str, config: dict[str, Any] | None = None) -> gym.Env:
    """:func:`make_env` as RLlib's networks see it: the grid world's discrete state becomes a one-hot
    vector (``FlattenObservation``), which RLlib's MLP encoders take as is."""
    env = make_env(name, config)
    if isinstance(env.observation_space, gym.spaces.Discrete):
        env = gym.wrappers.FlattenObservation(env)
    return env


def register_envs() -> None:
    """Register every env with gymnasium (``gym.make``) and with Ray Tune (RLlib's env runners)."""
    from ray.tune.registry import register_env

    for name in ENV_NAMES:
        register_env(name, lambda env_config, name=name: make_rllib_env(name, dict(env_config)))
    if GRIDWORLD not in gym.registry:
        gym.register(GRIDWORLD, entry_point="components.families.rl.gridworld:GridWorld", max_episode_steps=100)
