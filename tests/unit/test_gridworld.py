"""The 4x3 grid world: gymnasium conformance, the transition model, rewards and rendering."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from components.families.rl.gridworld import ACTIONS, STATES, GridWorld, cell, format_grid, state_index

UP, RIGHT, DOWN, LEFT = (ACTIONS.index(name) for name in ("up", "right", "down", "left"))


def test_states_and_actions_are_the_documented_ones():
    assert len(STATES) == 11 and (2, 2) not in STATES
    assert STATES[0] == (1, 1) and STATES[-1] == (4, 3)
    assert all(state_index(cell(s)) == s for s in range(11))
    env = GridWorld()
    assert env.observation_space == gym.spaces.Discrete(11) and env.action_space == gym.spaces.Discrete(4)
    assert ACTIONS == ("up", "right", "down", "left")


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_check_env_passes(render_mode):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(GridWorld(render_mode=render_mode), skip_render_check=False)
    # the only warning: without gym.make there is no spec to build the other render modes from
    assert all("spec" in str(w.message) for w in caught), [str(w.message) for w in caught]


def test_check_env_through_gym_make_has_no_warnings():
    if "GridWorld-v0" not in gym.registry:
        gym.register("GridWorld-v0", entry_point="components.families.rl.gridworld:GridWorld", max_episode_steps=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make("GridWorld-v0", render_mode="ansi").unwrapped, skip_render_check=False)
    assert not caught, [str(w.message) for w in caught]


def test_transition_rows_sum_to_one_and_exits_absorb():
    P, R, terminal = GridWorld().transition_model()
    assert P.shape == (11, 4, 11) and R.shape == (11,) and terminal.shape == (11,)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    assert np.flatnonzero(terminal).tolist() == [state_index((4, 2)), state_index((4, 3))]
    for exit_cell, value in (((4, 3), 1.0), ((4, 2), -1.0)):
        s = state_index(exit_cell)
        assert R[s] == value and (P[s, :, s] == 1).all()
    assert np.allclose(R[~terminal], -0.04)


def test_hand_checked_transitions():
    env = GridWorld()
    up_from_start = dict((cell(n), p) for p, n in env.transitions(state_index((1, 1)), UP))
    assert up_from_start == pytest.approx({(1, 2): 0.8, (1, 1): 0.1, (2, 1): 0.1})  # the left slip bumps the edge
    # (3,2) right: 0.8 into the -1 exit, slips up to (3,3) and down to (3,1)
    right = dict((cell(n), p) for p, n in env.transitions(state_index((3, 2)), RIGHT))
    assert right == pytest.approx({(4, 2): 0.8, (3, 3): 0.1, (3, 1): 0.1})
    # (1,2) right bumps the wall with 0.8; slips to (1,3) and (1,1)
    wall = dict((cell(n), p) for p, n in env.transitions(state_index((1, 2)), RIGHT))
    assert wall == pytest.approx({(1, 2): 0.8, (1, 3): 0.1, (1, 1): 0.1})
    # corner (1,1) left: 0.8 bump + 0.1 bump (down) merge; up slip to (1,2)
    corner = dict((cell(n), p) for p, n in env.transitions(state_index((1, 1)), LEFT))
    assert corner == pytest.approx({(1, 1): 0.9, (1, 2): 0.1})
    deterministic = GridWorld(intended_prob=1.0)
    assert deterministic.transitions(state_index((1, 1)), RIGHT) == [(1.0, state_index((2, 1)))]


def test_scripted_episode_rewards_and_termination():
    env = GridWorld(intended_prob=1.0, step_reward=-0.04)  # deterministic moves
    obs, info = env.reset(seed=0)
    assert cell(obs) == (1, 1) and info["cell"] == (1, 1)
    path = [(UP, (1, 2)), (UP, (1, 3)), (RIGHT, (2, 3)), (RIGHT, (3, 3))]
    rewards = []
    for action, expected in path:
        obs, reward, terminated, truncated, _ = env.step(action)
        assert cell(obs) == expected and not terminated and not truncated
        rewards.append(reward)
    obs, reward, terminated, truncated, _ = env.step(RIGHT)
    assert cell(obs) == (4, 3) and terminated and not truncated
    assert reward == pytest.approx(-0.04 + 1.0)  # r(s) of (3,3) plus the exit
    assert sum(rewards) + reward == pytest.approx(5 * -0.04 + 1.0)  # five non-terminal states visited
    # into the -1 exit
    env.reset(options={"start": (3, 2)})
    _, reward, terminated, _, _ = env.step(RIGHT)
    assert terminated and reward == pytest.approx(-0.04 - 1.0)


def test_reset_with_seed_is_deterministic():
    def rollout(seed):
        env = GridWorld()
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for t in range(40):
            obs, _, terminated, _, _ = env.step(t % 4)
            trace.append(obs)
            if terminated:
                obs, _ = env.reset()
        return trace

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_slip_frequencies_match_the_model():
    env = GridWorld()
    env.reset(seed=0)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(4000):
        env.reset(options={"start": (1, 1)})
        obs, *_ = env.step(UP)
        counts[cell(obs)] = counts.get(cell(obs), 0) + 1
    assert counts[(1, 2)] / 4000 == pytest.approx(0.8, abs=0.03)
    assert counts[(1, 1)] / 4000 == pytest.approx(0.1, abs=0.02)
    assert counts[(2, 1)] / 4000 == pytest.approx(0.1, abs=0.02)


def test_render_modes():
    env = GridWorld(render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    assert text.splitlines() == [" .  .  . +1", " .  #  . -1", " A  .  .  ."]
    env = GridWorld(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (96, 128, 3)
    assert image.min() < image.max()


def test_format_grid_of_utilities_and_policy():
    utilities = np.arange(11) / 10
    lines = format_grid(utilities).splitlines()
    assert len(lines) == 3 and lines[0].split() == ["0.700", "0.800", "0.900", "1.000"]
    assert "#" in lines[1] and lines[2].split()[0] == "0.000"
    policy = np.array([UP, LEFT, LEFT, LEFT, UP, UP, -1, RIGHT, RIGHT, RIGHT, -1])
    assert format_grid(policy).splitlines() == ["  →   →   →  +1", "  ↑   #   ↑  -1", "  ↑   ←   ←   ←"]
    with pytest.raises(ValueError):
        format_grid(np.zeros(3))
