"""The loop that trains an RLlib algorithm (DQN, REINFORCE) from params, with checkpoints and tracking.

One ``algo.train()`` call is one iteration. After each, the loop records ``rl/episode_return_mean``,
the mean return of the last ``SMOOTHING_EPISODES`` training episodes (with exploration; gymnasium's
"solved" thresholds are such 100-episode means), against the lifetime env-step count. RLlib 2.60
reports ``env_runners/episode_return_mean`` over one iteration's episodes only (1-2 long CartPole
episodes for DQN), kept as ``rl/iteration_return_mean``. Metrics go to MLflow with the env-step
count as the step (so algorithms share one x-axis), and every
``checkpoint_every`` iterations saves the algorithm (weights, optimizer, replay buffer) with the
history so far. A rerun with the same run directory restores the latest checkpoint and goes on.

It stops at ``max_env_steps`` or, with ``stop_at_threshold``, as soon as the return reaches
``return_threshold``; then it plays ``eval_episodes`` greedy episodes (``explore=False``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.families.rl.config import DQNConfig, ReinforceConfig
from components.families.rl.envs import make_rllib_env, register_envs
from components.io import atomic_write_text
from components.tracking import RunLogger

CHECKPOINT = "checkpoint"  # RLlib's Algorithm.save_to_path directory inside the run directory
PROGRESS = "progress.json"  # history of the iterations up to that checkpoint
SMOOTHING_EPISODES = 100  # rl/episode_return_mean: mean over this many latest episodes


def config_builder(algo_name: str) -> Callable[..., Any]:
    """``(cfg, env_config, seed) -> AlgorithmConfig`` of ``algo_name``."""
    if algo_name == "dqn":
        from components.families.rl.dqn import build_dqn_config

        return build_dqn_config
    from components.families.rl.reinforce import build_reinforce_config

    return build_reinforce_config


@dataclass
class RLOutcome:
    history: list[dict[str, float]]  # one row per iteration
    env_steps: int
    env_steps_to_threshold: int | None  # None: the threshold was never reached
    greedy_returns: list[float]
    train_wall_s: float  # training time summed over attempts (a resume adds to it)
    resumed_from_iteration: int | None = None
    checkpoint: Path | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)


def _save(algo: Any, run_dir: Path, history: list[dict[str, float]]) -> Path:
    """Write the checkpoint beside the previous one, then swap: an interruption leaves one intact."""
    fresh, current, old = run_dir / f"{CHECKPOINT}.tmp", run_dir / CHECKPOINT, run_dir / f"{CHECKPOINT}.old"
    shutil.rmtree(fresh, ignore_errors=True)
    algo.save_to_path(str(fresh))
    atomic_write_text(fresh / PROGRESS, json.dumps(history))
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    fresh.rename(current)
    shutil.rmtree(old, ignore_errors=True)
    return current


def latest_checkpoint(run_dir: Path) -> Path | None:
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):  # .old survives an interruption mid-swap
        if (run_dir / name / PROGRESS).is_file():
            return run_dir / name
    return None


def greedy_returns(algo: Any, env_name: str, env_config: dict[str, Any], episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes played with the greedy (``explore=False``) policy."""
    import torch
    from ray.rllib.core.columns import Columns

    module = algo.get_module()
    env = make_rllib_env(env_name, env_config)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                out = module.forward_inference({Columns.OBS: torch.as_tensor(np.asarray(obs, np.float32)[None])})
            action = out[Columns.ACTIONS] if Columns.ACTIONS in out else out[Columns.ACTION_DIST_INPUTS].argmax(-1)
            obs, reward, terminated, truncated, _ = env.step(int(action[0]))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def smoothed_return(history: list[dict[str, float]], episodes: int = SMOOTHING_EPISODES) -> float:
    """Mean return of the latest ``episodes`` episodes, from per-iteration means and episode counts
    (newest iteration first; the oldest one included counts with the episodes still missing)."""
    total, count = 0.0, 0
    for row in reversed(history):
        n = min(row["rl/iteration_episodes"], episodes - count)  # the oldest iteration may count in part
        if n > 0 and math.isfinite(row["rl/iteration_return_mean"]):
            total += row["rl/iteration_return_mean"] * n
            count += n
        if count >= episodes:
            break
    return total / count if count else math.nan


def iteration_row(result: dict[str, Any], iteration: int, wall_s: float,
                   history: list[dict[str, float]]) -> dict[str, float]:
    runners = result.get("env_runners", {})
    row = {
        "iteration": float(iteration),
        "env_steps": float(result.get("num_env_steps_sampled_lifetime", 0)),
        "rl/iteration_return_mean": float(runners.get("episode_return_mean", math.nan)),
        "rl/iteration_episodes": float(runners.get("num_episodes", 0)),
        "rl/episode_len_mean": float(runners.get("episode_len_mean", math.nan)),
        "time/wall_s": wall_s,
    }
    row["rl/episode_return_mean"] = smoothed_return([*history, row])
    for module_id, module_metrics in result.get("learners", {}).items():
        if module_id == "__all_modules__" or not isinstance(module_metrics, dict):
            continue
        for key in ("total_loss", "policy_loss", "qf_loss", "vf_loss", "entropy"):
            if key in module_metrics:
                row[f"train/{key}"] = float(module_metrics[key])
        break  # one policy (single-agent)
    return row


def loggable(row: dict[str, float]) -> dict[str, float]:
    """An iteration row as MLflow metrics: the env-step count is the step, not a metric; NaNs
    (no episode finished yet) are left out."""
    return {k: v for k, v in row.items() if k != "env_steps" and math.isfinite(v)}


def steps_to_threshold(history: list[dict[str, float]], threshold: float) -> int | None:
    """The first lifetime env-step count at which ``rl/episode_return_mean`` reached ``threshold``."""
    for row in history:
        if row["rl/episode_return_mean"] >= threshold:
            return int(row["env_steps"])
    return None


def train_rllib(
    algo_name: str,
    cfg: DQNConfig | ReinforceConfig,
    env_config: dict[str, Any],
    seed: int,
    run_dir: Path,
    logger: RunLogger,
    label: str,
) -> RLOutcome:
    """Train ``algo_name`` ("dqn" or "reinforce") until ``cfg``'s stop rule; resume from ``run_dir``."""
    import torch

    register_envs()
    algo_config = config_builder(algo_name)(cfg, env_config, seed)
    # torch's default pool (one thread per core) made a [64, 64] forward pass on 16 CartPole states
    # ~1000x slower (30 ms vs 36 us) when another process was busy; this process samples and learns
    # on the CPUs Ray reserves for it (remote runners get OMP_NUM_THREADS from Ray).
    torch.set_num_threads(max(1, int(algo_config.num_cpus_for_main_process)))
    algo = algo_config.build_algo()
    run_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    resumed_from = None
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        algo.restore_from_path(str(checkpoint))
        history = json.loads((checkpoint / PROGRESS).read_text())
        resumed_from = len(history)
        print(f"[{label}] resumed from iteration {resumed_from} ({int(history[-1]['env_steps'])} env steps)",
              flush=True)

    def done(row: dict[str, float] | None) -> bool:
        if row is None:
            return False
        if row["env_steps"] >= cfg.max_env_steps:
            return True
        return cfg.stop_at_threshold and row["rl/episode_return_mean"] >= cfg.return_threshold

    wall_before = history[-1]["time/wall_s"] if history else 0.0
    started = time.perf_counter()
    saved_at = len(history)
    while not done(history[-1] if history else None):
        iteration_started = time.perf_counter()
        result = algo.train()
        row = iteration_row(result, len(history) + 1, wall_before + time.perf_counter() - started, history)
        history.append(row)
        logger.log_metrics(loggable(row), step=int(row["env_steps"]))
        iteration_s = time.perf_counter() - iteration_started
        steps_per_s = (row["env_steps"] - (history[-2]["env_steps"] if len(history) > 1 else 0)) / iteration_s
        eta = max(0, cfg.max_env_steps - row["env_steps"]) / max(steps_per_s, 1e-9)
        print(f"[{label}] iter {len(history)}  env steps {int(row['env_steps'])}/{cfg.max_env_steps}"
              f"  rl/episode_return_mean {row['rl/episode_return_mean']:.1f}"
              f"  {steps_per_s:.0f} steps/s  ETA <= {int(eta // 60)}m{int(eta % 60):02d}s", flush=True)
        if len(history) % cfg.checkpoint_every == 0:
            _save(algo, run_dir, history)
            saved_at = len(history)
    if saved_at != len(history) or latest_checkpoint(run_dir) is None:
        _save(algo, run_dir, history)

    returns = greedy_returns(algo, cfg.env, env_config, cfg.eval_episodes, seed=10_000 + seed)
    algo.stop()
    reached = steps_to_threshold(history, cfg.return_threshold)
    final = {
        "rl/episode_return_mean": history[-1]["rl/episode_return_mean"],
        "rl/greedy_return_mean": float(np.mean(returns)),
        "rl/greedy_return_std": float(np.std(returns)),
        "rl/env_steps": history[-1]["env_steps"],
        "rl/env_steps_to_threshold": float(reached) if reached is not None else math.nan,
        "rl/return_threshold": float(cfg.return_threshold),
        "rl/iterations": float(len(history)),
    }
    return RLOutcome(
        history=history,
        env_steps=int(history[-1]["env_steps"]),
        env_steps_to_threshold=reached,
        greedy_returns=returns,
        train_wall_s=history[-1]["time/wall_s"],
        resumed_from_iteration=resumed_from,
        checkpoint=latest_checkpoint(run_dir),
        final_metrics=final,
    )
