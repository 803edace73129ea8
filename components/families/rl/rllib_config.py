"""Settings every RLlib algorithm here takes from the shared part of its params (``RLlibAlgoBase``)."""

from __future__ import annotations

from typing import Any

from components.families.rl.config import RLlibAlgoBase


def with_common_settings(algo_config: Any, cfg: RLlibAlgoBase, env_config: dict[str, Any], seed: int,
                         **model_config: Any) -> Any:
    """``algo_config`` with the env, env runners, learner GPU, lr, gamma, MLP and seed of ``cfg``.

    The learner is RLlib's local one (``num_learners=0``, in the stage's process); with
    ``num_gpus_per_learner > 0`` it trains on one GPU (RLlib's rule for a local learner).

    ``model_config``: extra ``DefaultModelConfig`` fields of the algorithm (e.g. its head layers).
    """
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        algo_config
        .environment(cfg.env, env_config=env_config)
        .env_runners(num_env_runners=cfg.num_env_runners, num_envs_per_env_runner=cfg.num_envs_per_env_runner)
        .learners(num_learners=0, num_gpus_per_learner=cfg.num_gpus_per_learner)
        .training(lr=cfg.lr, gamma=cfg.gamma)
        .rl_module(model_config=DefaultModelConfig(
            fcnet_hiddens=list(cfg.hiddens), fcnet_activation=cfg.activation, **model_config
        ))
        .debugging(seed=seed)
    )
