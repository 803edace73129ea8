"""Learner connector piece: discounted returns-to-go, computed per complete episode.

REINFORCE weights log π(a_t|s_t) by G_t = Σ_{k≥0} γ^k r_{t+k}, the discounted reward from step t to the
end of *that* episode. Episodes reach the learner whole (the algorithm samples complete episodes), so
the sum simply stops at the episode's last step; it never crosses into the next episode of the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns


def discounted_returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + γ G_{t+1} with G_T = 0 for one episode.

    rewards: shape (T,), the episode's rewards in order. Returns float32 of shape (T,).
    """
    returns = np.empty(len(rewards), dtype=np.float32)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


class ReturnsToGo(ConnectorV2):
    """Adds ``Columns.RETURNS_TO_GO`` (shape (T,) per episode, float32) to the train batch.

    Prepended to the learner pipeline, so RLlib's default pieces that follow batch it with the
    observations/actions of the same timesteps and turn it into a tensor. Raises on an episode
    chunk that is not done: returns-to-go of a cut episode would silently drop the rest.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float) -> None:
        super().__init__(input_observation_space, input_action_space)
        self.gamma = gamma

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs) -> dict[str, Any]:
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            if not episode.is_done:
                raise ValueError(
                    f"returns-to-go need complete episodes; episode {episode.id_} is not done "
                    "(sample with num_episodes=..., not num_timesteps)"
                )
            self.add_n_batch_items(
                batch=batch,
                column=Columns.RETURNS_TO_GO,
                items_to_add=discounted_returns_to_go(np.asarray(episode.get_rewards()), self.gamma),
                num_items=len(episode),
                single_agent_episode=episode,
            )
        return batch
