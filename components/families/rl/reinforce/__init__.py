"""REINFORCE as a custom RLlib algorithm on the new API stack.

``config.py`` (settings), ``learner.py`` (loss), ``connectors.py`` (returns-to-go per episode),
``algorithm.py`` (sampling/update loop), and :func:`build_reinforce_config` from params.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.families.rl.reinforce.algorithm import Reinforce
from components.families.rl.reinforce.config import ReinforceAlgoConfig

if TYPE_CHECKING:
    from components.families.rl.config import ReinforceConfig

__all__ = ["Reinforce", "ReinforceAlgoConfig", "build_reinforce_config"]


def build_reinforce_config(cfg: ReinforceConfig, env_config: dict[str, Any], seed: int) -> ReinforceAlgoConfig:
    """The RLlib config for ``params.yaml``'s ``rl.algos.reinforce`` section.

    Call ``components.families.rl.envs.register_envs()`` first (the env runners build ``cfg.env`` by its
    registered name) and start Ray before ``.build_algo()``. No evaluation runners are configured:
    the greedy evaluation (``cfg.eval_episodes``) is the caller's, after training.

    The value baseline gets its own encoder (a value loss on a shared encoder would also move the
    policy's features); without it the unused value head sits on the policy encoder, out of the
    optimizer, and costs next to nothing.
    """
    from components.families.rl.rllib_config import with_common_settings

    algo_config = with_common_settings(
        ReinforceAlgoConfig(), cfg, env_config, seed, vf_share_layers=cfg.baseline != "value"
    )
    return algo_config.training(
        grad_clip=cfg.grad_clip,
        episodes_per_batch=cfg.episodes_per_batch,
        baseline=cfg.baseline,
        vf_loss_coeff=cfg.vf_loss_coeff,
    )
