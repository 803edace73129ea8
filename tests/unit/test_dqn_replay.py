"""TransitionReplayBuffer: n-step returns across chunks and episodes, priorities, ring, checkpoints.

Every observation is ``[episode, t]``, so a sampled row names the transition it came from and the
test recomputes its n-step return by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from components.families.rl.dqn.replay import TransitionReplayBuffer

GAMMA = 0.5


def chunk(episode: int, t0: int, rewards: list[float], terminated=False, truncated=False) -> SingleAgentEpisode:
    """An RLlib episode chunk: steps t0 .. t0 + len(rewards) - 1 of ``episode``."""
    observations = [np.array([episode, t], np.float32) for t in range(t0, t0 + len(rewards) + 1)]
    piece = SingleAgentEpisode(id_=f"ep{episode}", observations=observations,
                               actions=[t % 2 for t in range(len(rewards))], rewards=rewards,
                               terminated=terminated, truncated=truncated, len_lookback_buffer=0)
    piece.to_numpy()
    return piece


def expected(rewards: dict[int, list[float]], ended: dict[int, bool], terminated: dict[int, bool],
             episode: int, t: int, n: int) -> tuple[float, int, float, bool]:
    """(n-step return, steps summed, t of the bootstrap observation, terminated) of transition (episode, t)."""
    known = rewards[episode]
    steps = min(n, len(known) - t)  # stops at the episode's end or at its newest sampled transition
    ret = sum(GAMMA**k * known[t + k] for k in range(steps))
    last = t + steps - 1
    return ret, steps, last + 1, bool(terminated[episode] and last == len(known) - 1)


def check_sample(buffer, rewards, ended, terminated, n_step, batch_size=256):
    batch = buffer.sample(batch_size, n_step, GAMMA, beta=0.4)
    for row in range(batch_size):
        episode, t = (int(v) for v in batch[Columns.OBS][row])
        steps = int(batch["n_step"][row])
        assert n_step[0] <= steps or steps == len(rewards[episode]) - t  # shorter only at an episode end
        ret, want_steps, next_t, term = expected(rewards, ended, terminated, episode, t, steps)
        assert steps == want_steps
        assert batch[Columns.REWARDS][row] == pytest.approx(ret)
        assert tuple(batch[Columns.NEXT_OBS][row]) == (episode, next_t)
        assert bool(batch[Columns.TERMINATEDS][row]) == term
        assert batch[Columns.ACTIONS][row] in (0, 1)
    return batch


def test_n_step_returns_follow_chunks_of_interleaved_episodes_and_stop_at_episode_ends():
    buffer = TransitionReplayBuffer(capacity=100, alpha=0.0, seed=0)
    rng = np.random.default_rng(1)
    r = {e: list(rng.integers(1, 9, size=n).astype(float)) for e, n in ((0, 9), (1, 7), (2, 4))}
    # two vectorised envs: their chunks interleave; episode 0 continues over three chunks
    buffer.add([chunk(0, 0, r[0][:3]), chunk(1, 0, r[1][:3])])
    buffer.add([chunk(0, 3, r[0][3:6]), chunk(1, 3, r[1][3:7], terminated=True)])
    buffer.add([chunk(0, 6, r[0][6:9], truncated=True), chunk(2, 0, r[2][:4])])  # episode 2 still running
    assert len(buffer) == 9 + 7 + 4
    ended, terminated = {0: True, 1: True, 2: False}, {0: False, 1: True, 2: False}
    for n_step in ((1, 1), (3, 3), (2, 5)):
        batch = check_sample(buffer, r, ended, terminated, n_step)
    assert set(np.unique(batch["n_step"])) >= {2, 3, 4, 5}  # n drawn per transition
    assert np.all(batch["weights"] == 1.0)  # uniform replay


def test_priorities_decide_sampling_and_importance_weights():
    buffer = TransitionReplayBuffer(capacity=50, alpha=1.0, seed=0)
    buffer.add([chunk(0, 0, [1.0] * 10, terminated=True)])
    buffer.update_priorities(np.arange(10), np.array([9.0] + [1.0] * 9))  # row 0: 9 / 18 of the mass
    batch = buffer.sample(20_000, (1, 1), GAMMA, beta=0.5)
    first = batch[Columns.OBS][:, 1] == 0
    assert first.mean() == pytest.approx(0.5, abs=0.02)
    # w_i = (N P_i)^-beta / max_j w_j: the rare rows get weight 1, row 0 (9 / 18) gets (1 / 9) ** 0.5
    assert np.allclose(batch["weights"][~first], 1.0)
    assert np.allclose(batch["weights"][first], (1 / 9) ** 0.5, rtol=1e-5)
    assert buffer.sample(1, (1, 1), GAMMA, 0.5)["weights"].max() <= 1.0
    # a new transition gets the largest priority seen so far
    buffer.add([chunk(1, 0, [1.0])])
    assert buffer.priorities[10] == pytest.approx(buffer.priorities[0])


def test_ring_overwrites_oldest_rows_and_never_links_into_them():
    buffer = TransitionReplayBuffer(capacity=8, alpha=0.0, seed=0)
    buffer.add([chunk(0, 0, [1.0] * 5)])
    buffer.add([chunk(1, 0, [2.0] * 5, terminated=True)])  # overwrites episode 0's first two rows
    assert len(buffer) == 8
    kept = sorted(tuple(o) for o in buffer.arrays[Columns.OBS])
    assert (0, 0) not in kept and (0, 1) not in kept and (1, 4) in kept
    buffer.add([chunk(2, 0, [3.0] * 6)])  # overwrites episode 0's remaining rows (and its open link)
    buffer.add([chunk(0, 5, [4.0] * 2)])  # episode 0 goes on, but its predecessor row is gone
    for slot, nxt in enumerate(buffer.successor):
        if nxt >= 0:  # every link joins consecutive steps of one episode
            (e0, t0), (e1, t1) = buffer.arrays[Columns.OBS][slot], buffer.arrays[Columns.OBS][nxt]
            assert e0 == e1 and t1 == t0 + 1


def test_state_round_trip_samples_identically():
    buffer = TransitionReplayBuffer(capacity=32, alpha=0.6, seed=3)
    buffer.add([chunk(0, 0, [1.0, 2.0, 3.0]), chunk(1, 0, [4.0, 5.0], terminated=True)])
    buffer.update_priorities(np.array([0, 1]), np.array([5.0, 0.1]))
    restored = TransitionReplayBuffer(capacity=32, alpha=0.6, seed=99)
    restored.set_state(buffer.get_state())
    buffer.add([chunk(0, 3, [6.0])])  # the open episode continues in both
    restored.add([chunk(0, 3, [6.0])])
    a, b = buffer.sample(64, (2, 4), GAMMA, 0.4), restored.sample(64, (2, 4), GAMMA, 0.4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
