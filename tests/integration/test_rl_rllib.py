"""RLlib's DQN through our runner on local Ray: CartPole with checkpoint/resume, and a Breakout smoke run."""

from __future__ import annotations

import math

import pytest

from components.config import parse_params
from components.families.rl.envs import BREAKOUT
from components.families.rl.runner import latest_checkpoint, train_rllib
from components.tracking import RunLogger

pytestmark = pytest.mark.slow


def test_dqn_trains_checkpoints_and_resumes(ray_session, tiny_params, tmp_path):
    cfg = parse_params(tiny_params).rl.algos.dqn.model_copy(update={"max_env_steps": 2000, "stop_at_threshold": False})
    first = train_rllib("dqn", cfg, {}, 0, tmp_path, RunLogger(None), "test/dqn")
    assert first.env_steps >= 2000 and first.resumed_from_iteration is None
    assert math.isfinite(first.final_metrics["rl/episode_return_mean"])
    assert len(first.greedy_returns) == cfg.eval_episodes and all(r >= 1 for r in first.greedy_returns)
    assert latest_checkpoint(tmp_path) is not None

    longer = cfg.model_copy(update={"max_env_steps": 3000})
    second = train_rllib("dqn", longer, {}, 0, tmp_path, RunLogger(None), "test/dqn")
    assert second.resumed_from_iteration == len(first.history)  # continued, not restarted
    assert second.history[: len(first.history)] == first.history
    assert second.env_steps >= 3000


def test_dqn_on_breakout_runs_a_few_iterations(ray_session, tiny_params, tmp_path):
    cfg = parse_params(tiny_params).rl.algos.dqn.model_copy(update={
        # an iteration samples >= 1000 steps: two iterations, SGD on the conv net after 1900 steps: 100 env steps
        # x 4 replayed transitions each (the default 25.6 replays 2,560 through RLlib's episode buffer: ~55 s)
        "env": BREAKOUT, "max_env_steps": 1200, "learning_starts": 1900, "hiddens": [64], "training_intensity": 4,
        "replay_capacity": 2000, "stop_at_threshold": False, "eval_episodes": 1, "checkpoint_every": 10,
        "replay_buffer": "episodes", "num_envs_per_env_runner": 1,  # RLlib's buffer: each frame stored once
    })
    outcome = train_rllib("dqn", cfg, {"max_episode_steps": 200}, 0, tmp_path, RunLogger(None), "test/breakout")
    assert outcome.env_steps >= 1200 and len(outcome.history) == 2
    loss = outcome.history[-1]["train/qf_loss"]  # logged once the learner has updated the Q-network
    assert math.isfinite(loss) and loss > 0  # a Huber TD loss of exactly 0 would mean nothing was fitted
    greedy = outcome.greedy_returns
    # Breakout's score counts bricks (1, 4 or 7 points): a return that is not a whole number means
    # a reward was scaled or clipped on the way to the metric
    assert len(greedy) == 1 and math.isfinite(greedy[0]) and float(greedy[0]).is_integer()
