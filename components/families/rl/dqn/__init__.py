"""DQN: RLlib's algorithm configured from params (``config.py``), with a flat-array prioritised
n-step replay buffer (``replay.py``) driven by its own training step (``algorithm.py``)."""

from components.families.rl.dqn.config import build_dqn_config

__all__ = ["build_dqn_config"]
