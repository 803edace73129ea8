"""Value iteration and Q-learning on the grid world as pipeline runs: metrics, history, figures, files.

Both report the greedy policy's Monte-Carlo return from the start state (``rl/greedy_return_mean``)
and how far the policy is from the optimum (``rl/policy_agreement``: the fraction of non-terminal
states where it picks value iteration's action, or an action of equal value).
Q-learning reports every ``REPORT_EPISODES`` episodes (fewer in short runs): ``rl/episode_return_mean``
is the mean return of those training episodes (exploring, as RLlib's metric of the same name), and
``rl/env_steps_to_threshold`` the env-step count at which its greedy policy first equalled the optimal one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from components.config import Params
from components.families.rl.envs import GRIDWORLD, make_env
from components.families.rl.figures import gridworld_figure, learning_curve_figure
from components.families.rl.gridworld import format_grid
from components.families.rl.tabular import evaluate_policy, q_learning, value_iteration
from components.tracking import RunLogger

REPORT_EPISODES = 500  # Q-learning: one history row (and MLflow step) per this many episodes (at most)


def _optimal(env: Any, gamma: float, tolerance: float):
    P, R, terminal = env.unwrapped.transition_model()
    return value_iteration(P, R, terminal, gamma, tolerance), (P, R, terminal)


def _agreement(policy: np.ndarray, model: tuple[np.ndarray, ...], utilities: np.ndarray, gamma: float) -> float:
    """Fraction of non-terminal states whose action is optimal (within 1e-6 of the best action value)."""
    P, R, terminal = model
    values = R[:, None] + gamma * (P @ utilities)
    live = ~terminal
    chosen = values[np.flatnonzero(live), policy[live]]
    return float(np.mean(chosen >= values[live].max(axis=1) - 1e-6))


def _save(out: Path, policy: np.ndarray, **arrays: np.ndarray) -> None:
    np.savez(out / "tabular.npz", policy=policy, **arrays)
    (out / "policy.txt").write_text(format_grid(policy) + "\n")


def run(algo: str, params: Params, logger: RunLogger, out: Path) -> dict[str, Any]:
    """Solve the grid world with ``algo`` ("value_iteration" or "q_learning"); write its tables into ``out``."""
    world = params.rl.gridworld.model_dump()
    env = make_env(GRIDWORLD, world)
    cfg = getattr(params.rl.algos, algo)
    vi_cfg = params.rl.algos.value_iteration
    optimum, model = _optimal(env, cfg.gamma, vi_cfg.tolerance)

    if algo == "value_iteration":
        result = optimum
        history = [{"iteration": float(i + 1), "max_change": change} for i, change in enumerate(result.history)]
        for row in history:
            logger.log_metrics({"max_change": row["max_change"]}, step=int(row["iteration"]))
        policy, utilities = result.policy, result.utilities
        extra = {"rl/iterations": float(result.iterations), "rl/converged": float(result.converged)}
        _save(out, policy, utilities=utilities)
        curve = None
    else:
        history: list[dict[str, float]] = []
        solved_at: list[int] = []
        returns: list[float] = []

        every = max(1, min(REPORT_EPISODES, cfg.episodes // 10))  # >= 10 rows however short the run

        def on_progress(episodes: int, env_steps: int, q: np.ndarray) -> None:
            row = {"episode": float(episodes), "env_steps": float(env_steps),
                   "rl/episode_return_mean": float(np.mean(returns[-every:])),
                   "rl/policy_agreement": _agreement(q.argmax(axis=1), model, optimum.utilities, cfg.gamma)}
            if row["rl/policy_agreement"] == 1.0 and not solved_at:
                solved_at.append(env_steps)
            history.append(row)
            logger.log_metrics({k: v for k, v in row.items() if k != "env_steps"}, step=env_steps)

        result = q_learning(
            env, cfg.gamma, cfg.episodes, cfg.alpha, cfg.alpha_decay, cfg.epsilon_start, cfg.epsilon_end,
            cfg.epsilon_decay_episodes, params.seed, alpha_power=cfg.alpha_power,
            callback=lambda episode, episode_return, length, env_steps: returns.append(episode_return),
            on_progress=on_progress, progress_every=every,
        )
        policy = result.policy
        utilities = np.where(model[2], model[1], result.q.max(axis=1))  # exits keep their value
        extra = {
            "rl/episode_return_mean": float(np.mean(result.episode_returns[-every:])),
            "rl/env_steps": float(result.env_steps),
            "rl/env_steps_to_threshold": float(solved_at[0]) if solved_at else float("nan"),
        }
        _save(out, policy, q=result.q, visits=result.visits)
        curve = learning_curve_figure([r["env_steps"] for r in history], [r["rl/episode_return_mean"] for r in history],
                                      threshold=float(optimum.utilities[env.unwrapped.start]),
                                      title=f"Q-learning on the grid world (r = {world['step_reward']})")

    live = ~model[2]
    greedy_mean, greedy_std = evaluate_policy(env, policy, cfg.eval_episodes, seed=10_000 + params.seed)
    final = {
        "rl/greedy_return_mean": greedy_mean,
        "rl/greedy_return_std": greedy_std,
        "rl/optimal_start_utility": float(optimum.utilities[env.unwrapped.start]),
        "rl/policy_agreement": _agreement(np.where(live, policy, 0), model, optimum.utilities, cfg.gamma),
        **extra,
    }
    figures = {"gridworld": gridworld_figure(env, utilities, policy, title=f"{algo}: utilities and policy")}
    if curve is not None:
        figures["learning_curve"] = curve
    print(f"[rl/{algo}]\n{format_grid(utilities)}\n{format_grid(policy)}", flush=True)
    return {"final": final, "history": history, "figures": figures, "extra": {"env": GRIDWORLD}}
