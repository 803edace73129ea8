"""REINFORCE's loss, baselines and returns-to-go connector on hand-built data (no Ray cluster)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.models.torch.torch_distributions import TorchCategorical

from components.families.rl.reinforce import ReinforceAlgoConfig
from components.families.rl.reinforce.connectors import ReturnsToGo, discounted_returns_to_go
from components.families.rl.reinforce.learner import advantages, reinforce_loss

# N = 4 timesteps of a 3-action categorical policy
LOGITS = [[0.2, -1.0, 0.5], [1.5, 0.0, -0.3], [0.0, 0.0, 0.0], [-0.7, 2.0, 0.1]]
ACTIONS = [2, 0, 1, 1]
RETURNS = [3.0, -1.0, 0.5, 2.0]


def _logp(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return TorchCategorical.from_logits(logits).logp(actions)


def _episode(rewards: list[float], done: bool = True) -> SingleAgentEpisode:
    n = len(rewards)
    obs = [np.full(4, t, dtype=np.float32) for t in range(n + 1)]
    return SingleAgentEpisode(
        observations=obs, actions=[t % 2 for t in range(n)], rewards=rewards, terminated=done, len_lookback_buffer=0
    ).to_numpy()


# --- returns-to-go ---------------------------------------------------------------------------------


def test_returns_to_go_of_one_episode():
    np.testing.assert_allclose(discounted_returns_to_go(np.array([1.0, 1.0, 1.0]), 0.5), [1.75, 1.5, 1.0])
    batch = ReturnsToGo(gamma=0.5)(rl_module=None, batch={}, episodes=[_episode([1.0, 1.0, 1.0])])
    [per_episode] = batch[Columns.RETURNS_TO_GO].values()
    np.testing.assert_allclose(np.concatenate(per_episode), [1.75, 1.5, 1.0])


def test_returns_to_go_stop_at_the_episode_boundary():
    episodes = [_episode([1.0, 1.0, 1.0]), _episode([2.0, 0.0])]
    batch = ReturnsToGo(gamma=0.5)(rl_module=None, batch={}, episodes=episodes)
    by_episode = {key[0]: np.concatenate(value) for key, value in batch[Columns.RETURNS_TO_GO].items()}
    np.testing.assert_allclose(by_episode[episodes[0].id_], [1.75, 1.5, 1.0])  # leaking would give 2.0 last
    np.testing.assert_allclose(by_episode[episodes[1].id_], [2.0, 0.0])


def test_returns_to_go_reject_an_unfinished_episode():
    with pytest.raises(ValueError, match="complete episodes"):
        ReturnsToGo(gamma=0.5)(rl_module=None, batch={}, episodes=[_episode([1.0, 1.0], done=False)])


# --- the loss on tensors ---------------------------------------------------------------------------


def test_loss_is_minus_mean_logp_times_return_and_its_logit_gradient_is_analytic():
    logits = torch.tensor(LOGITS, requires_grad=True)
    actions, returns = torch.tensor(ACTIONS), torch.tensor(RETURNS)
    loss, parts = reinforce_loss(_logp(logits, actions), returns, "none")

    log_softmax = torch.log_softmax(logits.detach(), dim=-1)
    expected = -(log_softmax[torch.arange(4), actions] * returns).mean()
    torch.testing.assert_close(loss, expected)
    assert set(parts) == {"policy_loss"}

    loss.backward()
    onehot = torch.nn.functional.one_hot(actions, 3).float()
    analytic = -(onehot - torch.softmax(logits.detach(), dim=-1)) * returns[:, None] / len(ACTIONS)
    torch.testing.assert_close(logits.grad, analytic)


def test_normalize_baseline_standardises_returns_over_the_batch():
    returns = np.array(RETURNS, dtype=np.float32)
    manual = (returns - returns.mean()) / returns.std()
    np.testing.assert_allclose(advantages(torch.tensor(returns), "normalize").numpy(), manual, rtol=1e-6)

    logits = torch.tensor(LOGITS, requires_grad=True)
    actions = torch.tensor(ACTIONS)
    loss, _ = reinforce_loss(_logp(logits, actions), torch.tensor(returns), "normalize")
    loss.backward()
    onehot = torch.nn.functional.one_hot(actions, 3).float()
    analytic = -(onehot - torch.softmax(logits.detach(), dim=-1)) * torch.tensor(manual)[:, None] / len(ACTIONS)
    torch.testing.assert_close(logits.grad, analytic)


def test_normalize_baseline_of_identical_returns_is_zero_not_nan():
    assert torch.equal(advantages(torch.full((5,), 7.0), "normalize"), torch.zeros(5))


def test_value_baseline_detaches_the_advantage_and_regresses_v_on_returns():
    logits = torch.tensor(LOGITS, requires_grad=True)
    values = torch.tensor([1.0, 0.5, -0.5, 2.5], requires_grad=True)
    actions, returns = torch.tensor(ACTIONS), torch.tensor(RETURNS)
    coeff, n = 0.5, len(ACTIONS)

    assert not advantages(returns, "value", values).requires_grad
    loss, parts = reinforce_loss(_logp(logits, actions), returns, "value", values, coeff)
    torch.testing.assert_close(parts["vf_loss"], ((values - returns) ** 2).mean())
    loss.backward()
    # only the value term reaches V: d/dV [c · mean (V - G)²] = 2c (V - G) / N
    torch.testing.assert_close(values.grad, 2 * coeff * (values.detach() - returns) / n)
    onehot = torch.nn.functional.one_hot(actions, 3).float()
    adv = returns - values.detach()
    torch.testing.assert_close(logits.grad, -(onehot - torch.softmax(logits.detach(), -1)) * adv[:, None] / n)


def test_unknown_baseline_is_rejected():
    with pytest.raises(ValueError, match="baseline"):
        advantages(torch.zeros(2), "whiten")
    with pytest.raises(ValueError, match="baseline"):
        ReinforceAlgoConfig().environment("CartPole-v1").training(baseline="whiten").validate()


# --- the learner built by RLlib (local, no Ray cluster) --------------------------------------------


def _learner(baseline: str, gamma: float = 0.5):
    config = (
        ReinforceAlgoConfig()
        .environment("CartPole-v1")
        .training(gamma=gamma, baseline=baseline, vf_loss_coeff=0.5, lr=0.01)
        .rl_module(model_config={"fcnet_hiddens": [8], "vf_share_layers": baseline != "value"})
    )
    return config, config.build_learner(env=gym.make("CartPole-v1"))


@pytest.fixture(scope="module")
def normalize_learner():
    return _learner("normalize")


@pytest.fixture(scope="module")
def value_learner():
    return _learner("value")


def test_learner_pipeline_batches_returns_to_go_per_episode(normalize_learner):
    _, learner = normalize_learner
    episodes = [_episode([1.0, 1.0, 1.0]), _episode([2.0, 0.0])]
    batch = learner._learner_connector(
        rl_module=learner.module, batch={}, episodes=episodes, shared_data={}, metrics=learner.metrics
    )
    expected = torch.tensor([1.75, 1.5, 1.0, 2.0, 0.0])  # episode 1 (3 steps), then episode 2 (2 steps)
    torch.testing.assert_close(batch[DEFAULT_MODULE_ID][Columns.RETURNS_TO_GO], expected)


@pytest.mark.parametrize("baseline", ["none", "value"])
def test_learner_loss_on_a_hand_built_batch(baseline, normalize_learner, value_learner):
    config, learner = value_learner if baseline == "value" else normalize_learner
    config = config.copy(copy_frozen=False).training(baseline=baseline)
    batch = {
        Columns.OBS: torch.randn(4, 4, generator=torch.Generator().manual_seed(0)),
        Columns.ACTIONS: torch.tensor([0, 1, 1, 0]),
        Columns.RETURNS_TO_GO: torch.tensor(RETURNS),
    }
    module = learner.module[DEFAULT_MODULE_ID]
    fwd_out = module.forward_train(batch)
    loss = learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out)

    logp = torch.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS], -1)[torch.arange(4), batch[Columns.ACTIONS]]
    returns = batch[Columns.RETURNS_TO_GO]
    if baseline == "none":
        expected = -(logp * returns).mean()
    else:
        values = module.compute_values(batch)
        expected = -(logp * (returns - values)).mean() + 0.5 * ((values - returns) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    logged = learner.metrics.peek(DEFAULT_MODULE_ID)
    assert {"policy_loss", "entropy", "returns_to_go_mean"} <= set(logged)
    assert ("vf_loss" in logged) == (baseline == "value")
    assert logged["returns_to_go_mean"] == pytest.approx(np.mean(RETURNS))


def _vf_params(learner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.module[DEFAULT_MODULE_ID].vf.parameters()]


@pytest.mark.parametrize("baseline", ["normalize", "value"])
def test_update_trains_the_value_head_only_for_the_value_baseline(baseline, normalize_learner, value_learner):
    _, learner = value_learner if baseline == "value" else normalize_learner
    pi_before = [p.detach().clone() for p in learner.module[DEFAULT_MODULE_ID].pi.parameters()]
    vf_before = _vf_params(learner)
    learner.update(episodes=[_episode([1.0, 0.0, 1.0]), _episode([2.0, 0.5])])
    pi_after = list(learner.module[DEFAULT_MODULE_ID].pi.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(pi_before, pi_after, strict=True))
    vf_changed = any(not torch.equal(a, b) for a, b in zip(vf_before, _vf_params(learner), strict=True))
    assert vf_changed == (baseline == "value")
