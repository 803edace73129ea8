"""Tabular methods on small discrete MDPs: value iteration on a known model, Q-learning from samples, and
Monte-Carlo evaluation of a fixed policy.

Planning uses the textbook's R(s) form (AIMA ch. 17): ``P`` (S, A, S) transition probabilities, ``R`` (S,)
the reward of each state, ``terminal`` (S,) the states whose utility is fixed at R(s)::

    U(s) = R(s) + gamma * max_a sum_s' P(s' | s, a) U(s')     (non-terminal s),     U(s) = R(s)  (terminal s)

Policies are arrays (S,) of action indices with :data:`NO_ACTION` (-1) where no action is taken (terminal
states, or states Q-learning never acted in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np

NO_ACTION = -1


@dataclass
class ValueIterationResult:
    """Outcome of :func:`value_iteration`.

    ``utilities`` (S,) U(s); ``policy`` (S,) greedy action indices, :data:`NO_ACTION` at terminals;
    ``iterations`` the Bellman sweeps done; ``converged`` whether the last sweep changed no utility by as much
    as the tolerance; ``history`` the max |change| of each sweep (length ``iterations``).
    """

    utilities: np.ndarray
    policy: np.ndarray
    iterations: int
    converged: bool
    history: list[float] = field(default_factory=list)


@dataclass
class QLearningResult:
    """Outcome of :func:`q_learning`.

    ``q`` (S, A) action values; ``policy`` (S,) greedy actions, :data:`NO_ACTION` where no action was ever
    taken (e.g. terminal states); ``visits`` (S, A) update counts; ``episode_returns`` and ``episode_lengths``
    (episodes,) undiscounted return and env steps of each training episode; ``env_steps`` their total.
    """

    q: np.ndarray
    policy: np.ndarray
    visits: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    env_steps: int


def _action_values(P: np.ndarray, R: np.ndarray, utilities: np.ndarray, gamma: float) -> np.ndarray:
    """Q(s, a) = R(s) + gamma * sum_s' P(s' | s, a) U(s'), shape (S, A)."""
    return R[:, None] + gamma * (P @ utilities)


def greedy_policy(
    P: np.ndarray,
    R: np.ndarray,
    terminal: np.ndarray,
    utilities: np.ndarray,
    gamma: float,
    tie_tolerance: float = 1e-9,
) -> np.ndarray:
    """The action maximising expected utility in each state, (S,) int; :data:`NO_ACTION` at terminals.

    Ties are broken deterministically: among the actions whose value is within ``tie_tolerance`` (relative to
    max(1, |best|)) of the best, the lowest action index wins (for the grid world: up, right, down, left).
    The tolerance keeps floating-point noise from choosing between actions that are equal in exact arithmetic.
    """
    q = _action_values(P, R, utilities, gamma)
    best = q.max(axis=1, keepdims=True)
    near_best = q >= best - tie_tolerance * np.maximum(1.0, np.abs(best))
    policy = near_best.argmax(axis=1)  # first True: the lowest index among the (near-)ties
    return np.where(terminal, NO_ACTION, policy)


def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    terminal: np.ndarray,
    gamma: float,
    tolerance: float,
    max_iterations: int = 10_000,
) -> ValueIterationResult:
    """Synchronous Bellman optimality backups from U = 0 (terminals: U = R) until a sweep changes no utility by
    ``tolerance`` or more, or ``max_iterations`` sweeps (then ``converged=False``: e.g. gamma = 1 with positive
    rewards, where utilities grow without bound).

    ``P`` (S, A, S), ``R`` (S,), ``terminal`` (S,) bool; see the module docstring for the backup.
    """
    P, R, terminal = np.asarray(P, dtype=float), np.asarray(R, dtype=float), np.asarray(terminal, dtype=bool)
    utilities = np.where(terminal, R, 0.0)
    history: list[float] = []
    converged = False
    for _ in range(max_iterations):
        updated = np.where(terminal, R, _action_values(P, R, utilities, gamma).max(axis=1))
        change = float(np.abs(updated - utilities).max())
        utilities = updated
        history.append(change)
        if change < tolerance:
            converged = True
            break
    policy = greedy_policy(P, R, terminal, utilities, gamma)
    return ValueIterationResult(utilities, policy, len(history), converged, history)


def epsilon_schedule(episode: int, start: float, end: float, decay_episodes: int) -> float:
    """Linear decay from ``start`` (episode 0) to ``end`` (episode ``decay_episodes`` and after)."""
    fraction = min(1.0, episode / decay_episodes) if decay_episodes > 0 else 1.0
    return start + (end - start) * fraction


def step_size(alpha: float, alpha_decay: Literal["visits", "constant"], visits: int, alpha_power: float = 1.0) -> float:
    """The Q-learning step size for a pair (s, a) updated ``visits`` times before.

    ``"constant"``: alpha. ``"visits"``: alpha / (1 + visits * alpha) ** alpha_power; with alpha_power in
    (1/2, 1] the step sizes satisfy Robbins-Monro (sum = inf, sum of squares < inf). alpha_power = 1 is
    1 / (1/alpha + visits), a running average whose memory of early (badly bootstrapped) targets fades slowly;
    smaller powers forget them faster at the cost of more noise.
    """
    if alpha_decay == "constant":
        return alpha
    return alpha / (1.0 + visits * alpha) ** alpha_power


def q_learning(
    env: gym.Env,
    gamma: float,
    episodes: int,
    alpha: float,
    alpha_decay: Literal["visits", "constant"],
    epsilon_start: float,
    epsilon_end: float,
    epsilon_decay_episodes: int,
    seed: int,
    callback: Callable[[int, float, int, int], bool | None] | None = None,
    alpha_power: float = 1.0,
    on_progress: Callable[[int, int, np.ndarray], None] | None = None,
    progress_every: int = 1000,
) -> QLearningResult:
    """Tabular Q-learning with epsilon-greedy exploration on an env with ``Discrete`` observations and actions.

    Update after each step: Q(s, a) += alpha_n * (target - Q(s, a)), target = r on termination and
    r + gamma * max_a' Q(s', a') otherwise, truncation included (a time limit is not part of the MDP, so the
    value of s' is bootstrapped). Step sizes alpha_n: :func:`step_size`. Exploration: epsilon decays linearly
    (:func:`epsilon_schedule`); the greedy action is the lowest index among the maximal Q values. Q starts at 0.
    On the grid world with gamma = 1, max_a Q(s, a) converges to value iteration's U(s); with gamma < 1 the env
    pays the exit value on the step that enters it, one discount factor earlier than the textbook's U.

    ``seed`` seeds the env (first reset) and the exploration generator. ``callback(episode, return, length,
    env_steps)`` runs after each episode; returning True stops training early. ``on_progress(episodes done,
    env_steps, Q (S, A) copy)`` runs every ``progress_every`` episodes (to track the greedy policy over time).
    """
    if alpha_decay not in ("visits", "constant"):
        raise ValueError(f"alpha_decay must be 'visits' or 'constant', got {alpha_decay!r}")
    n_states, n_actions = env.observation_space.n, env.action_space.n
    # plain lists: indexing and max() on 4-element rows are several times faster than numpy's per-call overhead
    q = [[0.0] * n_actions for _ in range(n_states)]
    visits = [[0] * n_actions for _ in range(n_states)]
    rng = np.random.default_rng(seed)
    uniforms, actions, draw = [], [], 0  # random numbers drawn in blocks
    returns, lengths = [], []
    env_steps = 0
    for episode in range(episodes):
        epsilon = epsilon_schedule(episode, epsilon_start, epsilon_end, epsilon_decay_episodes)
        state, _ = env.reset(seed=seed if episode == 0 else None)
        state = int(state)
        episode_return, length, done = 0.0, 0, False
        while not done:
            if draw == len(uniforms):
                uniforms, actions, draw = rng.random(4096).tolist(), rng.integers(n_actions, size=4096).tolist(), 0
            row = q[state]
            action = actions[draw] if uniforms[draw] < epsilon else row.index(max(row))
            draw += 1
            next_state, reward, terminated, truncated, _ = env.step(action)
            next_state = int(next_state)
            target = reward if terminated else reward + gamma * max(q[next_state])
            row[action] += step_size(alpha, alpha_decay, visits[state][action], alpha_power) * (target - row[action])
            visits[state][action] += 1
            episode_return += reward
            length += 1
            state, done = next_state, terminated or truncated
        env_steps += length
        returns.append(episode_return)
        lengths.append(length)
        stop = callback is not None and callback(episode, episode_return, length, env_steps)
        if on_progress is not None and (episode + 1) % progress_every == 0:
            on_progress(episode + 1, env_steps, np.array(q))
        if stop:
            break
    q_table, visit_table = np.array(q), np.array(visits, dtype=np.int64)
    policy = np.where(visit_table.sum(axis=1) > 0, q_table.argmax(axis=1), NO_ACTION)
    return QLearningResult(q_table, policy, visit_table, np.array(returns), np.array(lengths), env_steps)


def evaluate_policy(
    env: gym.Env, policy: np.ndarray, episodes: int, seed: int, gamma: float = 1.0
) -> tuple[float, float]:
    """Monte-Carlo estimate of a fixed policy (S,) of action indices: mean and standard deviation (not the
    standard error) of the return over ``episodes`` episodes from the env's start state, discounted by
    ``gamma`` (1: undiscounted). Episodes end on termination or truncation."""
    policy = np.asarray(policy)
    returns = np.empty(episodes)
    for episode in range(episodes):
        state, _ = env.reset(seed=seed if episode == 0 else None)
        total, discount, done = 0.0, 1.0, False
        while not done:
            action = int(policy[int(state)])
            if action < 0:
                raise ValueError(f"policy has no action for non-terminal state {int(state)}")
            state, reward, terminated, truncated, _ = env.step(action)
            total += discount * reward
            discount *= gamma
            done = terminated or truncated
        returns[episode] = total
    return float(returns.mean()), float(returns.std())
