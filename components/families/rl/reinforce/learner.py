"""Torch learner: the REINFORCE policy-gradient loss with an optional baseline.

Loss over a batch of N timesteps (all from complete episodes):

    L = -mean_t( log π(a_t|s_t) · Â_t )  [+ vf_loss_coeff · mean_t (V(s_t) - G_t)²  for "value"]

with Â_t = G_t ("none"), (G_t - mean G) / std G over the batch ("normalize"), or G_t - V(s_t)
("value", V detached so the advantage does not train the critic).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from components.families.rl.reinforce.connectors import ReturnsToGo

BASELINES = ("none", "normalize", "value")
RETURNS_TO_GO_MEAN_KEY = "returns_to_go_mean"
_STD_FLOOR = 1e-6  # a batch of identical returns standardises to 0 instead of dividing by 0


def advantages(returns_to_go: torch.Tensor, baseline: str, values: torch.Tensor | None = None) -> torch.Tensor:
    """Â_t for each of the N timesteps: shape (N,), no gradient into ``values``.

    "normalize" uses the population std (ddof 0), like RLlib's own advantage standardisation.
    """
    if baseline == "none":
        return returns_to_go
    if baseline == "normalize":
        std = returns_to_go.std(unbiased=False).clamp_min(_STD_FLOOR)
        return (returns_to_go - returns_to_go.mean()) / std
    if baseline == "value":
        if values is None:
            raise ValueError("baseline 'value' needs V(s)")
        return returns_to_go - values.detach()
    raise ValueError(f"unknown baseline {baseline!r}; expected one of {BASELINES}")


def reinforce_loss(
    logp: torch.Tensor,
    returns_to_go: torch.Tensor,
    baseline: str,
    values: torch.Tensor | None = None,
    vf_loss_coeff: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss (scalar) and its parts.

    logp: log π(a_t|s_t), shape (N,); returns_to_go: G_t, shape (N,); values: V(s_t), shape (N,)
    (baseline "value" only). Returns ``(loss, {"policy_loss": ..., "vf_loss": ...})``; vf_loss is
    present for the value baseline only.
    """
    policy_loss = -torch.mean(logp * advantages(returns_to_go, baseline, values))
    parts = {POLICY_LOSS_KEY: policy_loss}
    if baseline != "value":
        return policy_loss, parts
    vf_loss = torch.mean((values - returns_to_go) ** 2)
    parts[VF_LOSS_KEY] = vf_loss
    return policy_loss + vf_loss_coeff * vf_loss, parts


class ReinforceTorchLearner(TorchLearner):
    """REINFORCE on RLlib's ``DefaultPPOTorchRLModule`` (policy head + value head).

    Without the value baseline the value head is never evaluated: its parameters get no gradient
    and Adam leaves them as they are.
    """

    def build(self) -> None:
        super().build()
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.prepend(ReturnsToGo(gamma=self.config.gamma))

    def compute_loss_for_module(self, *, module_id, config, batch: dict[str, Any], fwd_out: dict[str, Any]):
        module = self.module[module_id].unwrapped()
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        returns_to_go = batch[Columns.RETURNS_TO_GO]
        values = None
        if config.baseline == "value":
            values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        loss, parts = reinforce_loss(
            dist.logp(batch[Columns.ACTIONS]), returns_to_go, config.baseline, values, config.vf_loss_coeff
        )
        parts[ENTROPY_KEY] = dist.entropy().mean()
        parts[RETURNS_TO_GO_MEAN_KEY] = returns_to_go.mean()
        self.metrics.log_dict({k: v.detach() for k, v in parts.items()}, key=module_id, window=1)
        return loss
