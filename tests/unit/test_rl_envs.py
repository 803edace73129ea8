"""The RL env registry: every named env builds, passes gymnasium's checker, and bad names are clear errors."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from components.config import parse_params
from components.errors import UserError
from components.families.rl.envs import (
    BREAKOUT,
    CARTPOLE,
    ENV_NAMES,
    GRIDWORLD,
    make_env,
    make_rllib_env,
    register_envs,
)


# The checker is given each env as make_env builds it, our wrappers included on purpose (it warns that a
# wrapped env is not the unwrapped one); CartPole's unbounded observation Box is gymnasium's own.
@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version:UserWarning")
@pytest.mark.filterwarnings("ignore:.*A Box observation space m.* value is -?infinity:UserWarning")
@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_registered_env_passes_gymnasiums_checker(name):
    env = make_env(name, {"step_reward": -0.04, "intended_prob": 0.8, "max_episode_steps": 50})
    check_env(env, skip_render_check=True)


def test_breakout_has_the_dqn_preprocessing():
    env = make_env(BREAKOUT)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype.name == "float32"  # 84x84 grayscale, 4 stacked frames
    assert 0.0 <= obs.min() and obs.max() <= 1.0 and obs.max() > 0
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert obs.shape == (84, 84, 4)
    assert env.action_space.n == 4


def test_rllib_sees_the_grid_world_as_one_hot_states():
    env = make_rllib_env(GRIDWORLD, {"step_reward": -0.04, "intended_prob": 0.8, "max_episode_steps": 20})
    obs, _ = env.reset(seed=0)
    assert obs.shape == (11,) and obs.sum() == 1.0


def test_envs_are_registered_with_gymnasium_and_ray():
    from ray.tune.registry import ENV_CREATOR, _global_registry

    register_envs()
    assert GRIDWORLD in gym.registry
    for name in ENV_NAMES:
        assert _global_registry.contains(ENV_CREATOR, name)
    assert isinstance(gym.make(GRIDWORLD).unwrapped, gym.Env)
    assert make_env(CARTPOLE).spec.id == CARTPOLE


def test_an_unknown_env_in_params_is_one_line_listing_the_registered_envs(tiny_params):
    tiny_params["rl"]["algos"]["dqn"]["env"] = "Cartpole-v1"
    with pytest.raises(UserError) as err:
        parse_params(tiny_params)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: rl.algos.dqn.env: unknown env 'Cartpole-v1'; registered: ")
    for name in ENV_NAMES:
        assert name in message


def test_make_env_rejects_an_unknown_name():
    with pytest.raises(UserError, match="registered: CartPole-v1"):
        make_env("Pong")
