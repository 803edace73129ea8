"""Benchmark: DQN's replay path, RLlib's episode buffer vs our flat-array buffer, side by side.

    python -m bench.dqn_replay [--env-steps 15000] [--append]

Both sides are the default ``rl.algos.dqn`` params (same batch, replay ratio, vectorised envs,
prioritisation and n-step range) with only ``replay_buffer`` changed: ``episodes`` is RLlib's
``PrioritizedEpisodeReplayBuffer`` and DQN training step, ``transitions`` is
``components.families.rl.dqn.TransitionReplayDQN``. Each samples ``--env-steps`` env steps of CartPole in this
process (the sides alternate twice, so a busy moment hits both); env steps/s counts the steps after
``learning_starts`` only, and the per-update cost is RLlib's own replay-sampling + learner-update
timers. Prints one row per side and the ratio; ``--append`` adds them to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import torch

from bench.rows import emit
from components.config import load_params
from components.families.rl.envs import register_envs
from components.families.rl.runner import config_builder
from components.runtime import ray_init

SIDES = ("episodes", "transitions")


def measure(cfg, env_steps: int) -> dict[str, float]:
    """Env steps/s after learning starts and ms per SGD update (replay sampling + learner update)."""
    algo = config_builder("dqn")(cfg, {}, 0).build_algo()
    learning, started, steps_at_start = False, 0.0, 0
    sample_s = update_s = updates = 0.0
    while True:
        result = algo.train()
        steps = int(result["num_env_steps_sampled_lifetime"])
        if not learning and steps >= cfg.learning_starts:
            learning, started, steps_at_start = True, time.perf_counter(), steps
            continue
        if learning:
            timers = result["timers"]
            trained = result["learners"]["__all_modules__"].get("num_env_steps_trained", 0) / cfg.train_batch_size
            sample_s += timers.get("replay_buffer_sampling_timer", 0.0) * trained
            update_s += timers.get("learner_update_timer", 0.0) * trained
            updates += trained
        if steps >= env_steps:
            break
    wall = time.perf_counter() - started
    algo.stop()
    return {"steps_per_s": (steps - steps_at_start) / wall,
            "ms_per_update": float(1000 * (sample_s + update_s) / max(updates, 1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=15_000)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    params = load_params()
    ray_init(params.runtime.ray_address)
    register_envs()
    torch.set_num_threads(1)
    base = params.rl.algos.dqn
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for _ in range(2):
        for side in SIDES:
            runs[side].append(measure(base.model_copy(update={"replay_buffer": side}), args.env_steps))
            print(side, runs[side][-1], flush=True)
    best = {side: max(r["steps_per_s"] for r in runs[side]) for side in SIDES}
    per_update = {side: min(r["ms_per_update"] for r in runs[side]) for side in SIDES}
    rows = [
        f"| {date.today()} | `replay_buffer: {side}` | {base.train_batch_size} | {best[side]:,.0f} |"
        f" {per_update[side]:.1f} | {best[side] / best['episodes']:.2f} | {platform.machine()}, 2 cores |"
        for side in SIDES
    ]
    emit(rows, args.append)


if __name__ == "__main__":
    main()
