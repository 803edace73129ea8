"""REINFORCE on CartPole-v1 through RLlib on local Ray: trains, reports, checkpoints, restores."""

from __future__ import annotations

import math

import pytest
import torch

from components.config import load_params
from components.families.rl.envs import register_envs
from components.families.rl.reinforce import Reinforce, build_reinforce_config
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _tiny_cfg(**update):
    cfg = load_params(REPO / "params.yaml").rl.algos.reinforce
    return cfg.model_copy(update={"episodes_per_batch": 4, "num_envs_per_env_runner": 2, "hiddens": [16], **update})


def _learner_weights(algo) -> dict[str, torch.Tensor]:
    [weights] = algo.learner_group.get_weights().values()
    return weights


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def _train_twice(algo) -> list[dict]:
    results = [algo.train(), algo.train()]
    steps = [r["num_env_steps_sampled_lifetime"] for r in results]
    assert 0 < steps[0] < steps[1]
    assert all(math.isfinite(r["env_runners"]["episode_return_mean"]) for r in results)
    assert all(r["env_runners"]["num_episodes"] >= 4 for r in results)
    return results


def test_reinforce_trains_and_restores_from_a_checkpoint(ray_session, tmp_path):
    register_envs()
    config = build_reinforce_config(_tiny_cfg(), env_config={}, seed=0)
    algo = config.build_algo()
    try:
        results = _train_twice(algo)
        assert {"policy_loss", "entropy", "returns_to_go_mean"} <= set(results[-1]["learners"]["default_policy"])
        algo.save_to_path(str(tmp_path / "ckpt"))
        restored = config.build_algo()
        try:
            trained = _learner_weights(algo)
            assert not _same(trained, _learner_weights(restored))  # a fresh build has the initial weights
            restored.restore_from_path(str(tmp_path / "ckpt"))
            assert _same(trained, _learner_weights(restored))
            assert restored.get_module().state_dict().keys() == algo.get_module().state_dict().keys()
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_value_baseline_with_a_remote_env_runner(ray_session):
    register_envs()
    algo = build_reinforce_config(_tiny_cfg(baseline="value", num_env_runners=1), env_config={}, seed=1).build_algo()
    assert isinstance(algo, Reinforce)
    try:
        results = _train_twice(algo)
        assert math.isfinite(results[-1]["learners"]["default_policy"]["vf_loss"])
    finally:
        algo.stop()
