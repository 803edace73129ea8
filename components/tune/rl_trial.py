"""One RL Tune trial: the RLlib algorithm itself as the trainable (RLlib's Tune pattern), built
from params with the trial's sampled values, reporting the smoothed return the rl stage uses.

Tune instantiates :func:`sweep_algorithm`'s class with the trial's flat config (``{search key:
value}``); the class applies those values to ``rl.algos.<algo>`` (validated like params.yaml),
builds the AlgorithmConfig with the rl stage's own builder (``components.families.rl.runner``), and hands
it to RLlib's ``Algorithm``. Every ``step()`` is one ``algo.train()`` iteration whose result gains
the rl stage's metrics (``rl/episode_return_mean``: the mean of the latest 100 episodes, and
``rl/env_steps``, the sweep's time axis) and is logged, with ``best/<metric>``, into the trial's
MLflow child run (env steps as the step).
Checkpoints (PBT) carry that history, so a trial continued from another one's checkpoint keeps
smoothing over the episodes it inherited.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import tracking
from components.config import Params, flatten
from components.families import get_family
from components.metrics.direction import best_summaries
from components.tune.space import plain

TIME_ATTR = "rl/env_steps"  # the sweep's time axis: trials are compared at equal env steps
HISTORY_FILE = "courselab_history.json"  # beside RLlib's files in a trial checkpoint


@dataclass(frozen=True)
class RLSweepContext:
    """What every trial of one RL sweep shares."""

    algo: str
    params: Params  # repository paths made absolute
    name: str
    parent_run_id: str
    tracking_uri: str
    search_keys: tuple[str, ...]


def trial_algo_config(context: RLSweepContext, values: dict[str, Any]):
    """The RLlib AlgorithmConfig of a trial: ``rl.algos.<algo>`` with ``values`` applied."""
    from components.families.rl.envs import env_config, register_envs
    from components.families.rl.runner import config_builder

    register_envs()
    params = get_family("rl").with_values(context.params, context.algo, values, "tune.rl trial")
    cfg = getattr(params.rl.algos, context.algo)
    return cfg, config_builder(context.algo)(cfg, env_config(context.algo, params), params.seed)


def _split(context: RLSweepContext, config: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tune's trial config as ``(searched values, the rest)`` (the rest: Tune's own keys)."""
    config = dict(config or {})
    values = {key: plain(config.pop(key)) for key in context.search_keys if key in config}
    return values, config


def trial_resources(trainable: type, values: dict[str, Any]) -> dict[str, float]:
    """What one trial of ``trainable`` (a :func:`sweep_algorithm` class) reserves, as RLlib asks
    Tune for it: the main process (sampling and learning when num_env_runners is 0), the remote
    env runners and learners."""
    return dict(trainable.default_resource_request(dict(values)).required_resources)


def check_trial_fits(need: dict[str, float], cluster: dict[str, float], algo: str) -> None:
    """A trial (needing ``need``, see :func:`trial_resources`) the cluster can never hold is an
    error, not a sweep that waits forever."""
    from components.errors import UserError

    if any(amount > cluster.get(name, 0) for name, amount in need.items()):
        have = {name: cluster.get(name, 0) for name in need}
        raise UserError(f"tune.rl: one {algo} trial needs {need} but the Ray cluster has {have}; "
                        f"lower rl.algos.{algo}.num_env_runners")


def sweep_algorithm(context: RLSweepContext) -> type:
    """The trainable class of an RL sweep: a subclass of the algorithm's RLlib ``Algorithm``."""
    from components.families.rl.runner import iteration_row, loggable

    base_config = trial_algo_config(context, {})[1]
    algo_class = base_config.algo_class

    class SweepAlgorithm(algo_class):
        @classmethod
        def default_resource_request(cls, config):
            values, rest = _split(context, config if isinstance(config, dict) else {})
            return super().default_resource_request({**trial_algo_config(context, values)[1].to_dict(), **rest})

        def __init__(self, config=None, **kwargs):
            import torch
            from ray.tune.result import TRIAL_INFO

            values, rest = _split(context, config)
            # RLlib turns Tune's dict into an AlgorithmConfig, which drops the trial's info, so
            # ``self.trial_id`` would read "default": keep the id Tune passed.
            trial_info = rest.get(TRIAL_INFO)
            self.sweep_trial_id = trial_info.trial_id if trial_info is not None else "default"
            cfg, algo_config = trial_algo_config(context, values)
            self._history: list[dict[str, float]] = []  # the rl stage's rows, one per iteration
            self._started = time.perf_counter()
            self._wall_before = 0.0
            # as in the rl stage: sample and learn on the CPUs Ray reserved for this trial
            torch.set_num_threads(max(1, int(algo_config.num_cpus_for_main_process)))
            super().__init__(config={**algo_config.to_dict(), **rest}, **kwargs)
            self._mlflow_run_id = tracking.open_child_run(
                context.parent_run_id, f"{context.algo}-{self.sweep_trial_id}",
                flatten({"seed": context.params.seed, "algo": context.algo, "cfg": cfg.model_dump()}),
                {tracking.SWEEP_TAG: context.name, tracking.TRIAL_TAG: self.sweep_trial_id,
                 "courselab.family": "rl", "courselab.model": context.algo},
                context.tracking_uri,
            )
            self._mlflow = tracking.RunLogger(self._mlflow_run_id, context.tracking_uri)

        def step(self):
            result = super().step()
            wall = self._wall_before + time.perf_counter() - self._started
            row = iteration_row(result, len(self._history) + 1, wall, self._history)
            self._history.append(row)
            self._mlflow.log_metrics({**loggable(row), **best_summaries(self._history)}, step=int(row["env_steps"]))
            result.update({k: v for k, v in row.items() if k.startswith("rl/")})
            result[TIME_ATTR] = row["env_steps"]
            return result

        def save_checkpoint(self, checkpoint_dir: str):
            super().save_checkpoint(checkpoint_dir)
            (Path(checkpoint_dir) / HISTORY_FILE).write_text(json.dumps(self._history))

        def load_checkpoint(self, checkpoint_dir: str):
            super().load_checkpoint(checkpoint_dir)
            path = Path(checkpoint_dir) / HISTORY_FILE
            if path.is_file():
                self._history = json.loads(path.read_text())
                self._wall_before = self._history[-1]["time/wall_s"] if self._history else 0.0
                self._started = time.perf_counter()

    SweepAlgorithm.__name__ = SweepAlgorithm.__qualname__ = f"Sweep{algo_class.__name__}"
    return SweepAlgorithm
