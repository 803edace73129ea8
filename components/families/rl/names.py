"""The names params may give an RL environment or algorithm, without importing gymnasium: every
stage validates the whole params.yaml (``components/config.py``), and only RL stages need the envs."""

GRIDWORLD = "GridWorld-v0"
CARTPOLE = "CartPole-v1"
BREAKOUT = "ALE/Breakout-v5"
ENV_NAMES = (CARTPOLE, GRIDWORLD, BREAKOUT)
TABULAR = ("value_iteration", "q_learning")  # the grid-world planners / learners (no RLlib)
