"""``TransitionReplayBuffer``: prioritised n-step experience replay in flat numpy arrays.

RLlib's ``PrioritizedEpisodeReplayBuffer`` samples by building one ``SingleAgentEpisode`` per
replayed transition, which the learner connector then turns back into a batch: ~20 ms per update of
128 transitions on this 2-core machine against ~1 ms for the same batch from arrays (BENCHMARKS.md).
This buffer keeps one row per transition and hands the learner the batch RLlib's DQN loss reads
(``obs``, ``actions``, ``rewards``, ``new_obs``, ``terminateds``, ``n_step``, ``weights``).

- Rows are written in a ring: the oldest transition is overwritten first.
- ``successor[i]`` links a transition to the next one of its episode (episode chunks from several
  vectorised envs interleave), so an n-step return is summed by following links at sample time;
  it stops early at an episode end or at the newest transition of a running episode (its future is
  not sampled yet), and ``n_step`` records how many rewards it summed.
- Proportional prioritisation (Schaul et al. 2016): P(i) = p_i^alpha / sum_k p_k^alpha, new rows
  get the largest priority so far, importance weights (N P(i))^-beta normalised by their maximum.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.core.columns import Columns

PRIORITY_EPS = 1e-6  # keeps every transition sampleable after a zero TD error


class TransitionReplayBuffer:
    """A ring of ``capacity`` transitions; ``alpha = 0`` samples uniformly (weights all 1)."""

    def __init__(self, capacity: int, alpha: float, seed: int) -> None:
        self.capacity, self.alpha = capacity, alpha
        self.rng = np.random.default_rng(seed)
        self.size = 0
        self.writes = 0  # rows written in the buffer's lifetime (slot = writes % capacity)
        self.arrays: dict[str, np.ndarray] = {}
        self.successor = np.full(capacity, -1, np.int64)  # slot of the episode's next transition
        self.written_at = np.full(capacity, -1, np.int64)  # lifetime write number of each slot
        self.priorities = np.zeros(capacity, np.float64)  # p_i^alpha
        self.max_priority = 1.0
        self._open: dict[str, tuple[int, int]] = {}  # running episode id -> (slot, write number) of its newest row

    def __len__(self) -> int:
        return self.size

    # --- writing ---------------------------------------------------------------------------------

    def add(self, episodes: list[Any]) -> None:
        """Append the transitions of RLlib episode chunks (``SingleAgentEpisode``), in order."""
        for episode in episodes:
            steps = len(episode)
            if steps == 0:
                continue
            observations = np.asarray(episode.get_observations())  # steps + 1 observations
            terminal = np.zeros(steps, bool)
            terminal[-1] = episode.is_terminated
            self._append(episode.id_, {
                Columns.OBS: observations[:-1],
                Columns.NEXT_OBS: observations[1:],
                Columns.ACTIONS: np.asarray(episode.get_actions()),
                Columns.REWARDS: np.asarray(episode.get_rewards(), np.float32),
                Columns.TERMINATEDS: terminal,
            }, ended=episode.is_done)

    def _append(self, episode_id: str, columns: dict[str, np.ndarray], ended: bool) -> None:
        steps = len(columns[Columns.REWARDS])
        if not self.arrays:
            self.arrays = {k: np.zeros((self.capacity, *v.shape[1:]), v.dtype) for k, v in columns.items()}
        writes = self.writes + np.arange(steps)
        slots = writes % self.capacity
        for key, values in columns.items():
            self.arrays[key][slots] = values
        self.written_at[slots] = writes
        self.successor[slots[:-1]] = slots[1:]
        self.successor[slots[-1]] = -1
        previous = self._open.pop(episode_id, None)
        if previous is not None and self.written_at[previous[0]] == previous[1]:  # not overwritten since
            self.successor[previous[0]] = slots[0]
        if not ended:
            self._open[episode_id] = (int(slots[-1]), int(writes[-1]))
        self.priorities[slots] = self.max_priority
        self.writes += steps
        self.size = min(self.size + steps, self.capacity)

    # --- sampling --------------------------------------------------------------------------------

    def sample(self, batch_size: int, n_step: tuple[int, int], gamma: float, beta: float) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn by priority, each with an n-step return, ``n`` drawn
        uniformly from ``n_step = (min, max)`` per transition. Adds ``indices`` (for
        :meth:`update_priorities`) and the importance ``weights``."""
        priorities = self.priorities[: self.size]
        cumulative = np.cumsum(priorities)
        draws = self.rng.random(batch_size) * cumulative[-1]
        indices = np.minimum(np.searchsorted(cumulative, draws, side="right"), self.size - 1)
        probabilities = priorities[indices] / cumulative[-1]
        weights = (self.size * probabilities) ** -beta
        weights /= (self.size * priorities.min() / cumulative[-1]) ** -beta  # the largest possible weight

        wanted = self.rng.integers(n_step[0], n_step[1] + 1, size=batch_size)
        last = indices.copy()  # the transition whose next observation bootstraps the return
        returns = self.arrays[Columns.REWARDS][indices].astype(np.float64)
        summed = np.ones(batch_size, np.int64)
        for k in range(1, int(wanted.max())):
            nxt = self.successor[last]
            go = (summed < wanted) & (nxt >= 0) & ~self.arrays[Columns.TERMINATEDS][last]
            if not go.any():
                break
            last[go] = nxt[go]
            returns[go] += gamma**k * self.arrays[Columns.REWARDS][last[go]]
            summed[go] += 1
        return {
            Columns.OBS: self.arrays[Columns.OBS][indices],
            Columns.ACTIONS: self.arrays[Columns.ACTIONS][indices],
            Columns.REWARDS: returns.astype(np.float32),
            Columns.NEXT_OBS: self.arrays[Columns.NEXT_OBS][last],
            Columns.TERMINATEDS: self.arrays[Columns.TERMINATEDS][last],
            "n_step": summed.astype(np.float32),
            "weights": weights.astype(np.float32),
            "indices": indices,
        }

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities ``(|td| + eps)^alpha`` for the rows ``indices`` of the last sample."""
        priorities = (np.abs(td_errors) + PRIORITY_EPS) ** self.alpha
        self.priorities[indices] = priorities
        self.max_priority = max(self.max_priority, float(priorities.max()))

    # --- checkpoints (RLlib saves ``local_replay_buffer.get_state()`` with store_buffer_in_checkpoints)

    def get_state(self) -> dict[str, Any]:
        return {
            "arrays": {k: v[: self.size] for k, v in self.arrays.items()},
            "successor": self.successor[: self.size], "written_at": self.written_at[: self.size],
            "priorities": self.priorities[: self.size], "max_priority": self.max_priority,
            "writes": self.writes, "size": self.size, "open": dict(self._open),
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.size, self.writes = state["size"], state["writes"]
        self.arrays = {}
        for key, values in state["arrays"].items():
            self.arrays[key] = np.zeros((self.capacity, *values.shape[1:]), values.dtype)
            self.arrays[key][: self.size] = values
        for name in ("successor", "written_at", "priorities"):
            getattr(self, name)[: self.size] = state[name]
        self.max_priority = state["max_priority"]
        self._open = dict(state["open"])
        self.rng.bit_generator.state = state["rng"]
