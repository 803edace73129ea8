"""``rl`` and ``tune.rl`` in params.yaml: the grid world, one section per algorithm, the RL sweep."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from components.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section
from components.tune.config import ASHAConfig, PBTConfig, SearchDistribution

# --- reinforcement learning ---------------------------------------------------------------------

Gamma = Annotated[float, Field(gt=0, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]


class GridWorldConfig(Section):
    step_reward: float  # r(s) of every non-terminal state
    intended_prob: Probability  # the chosen move happens; each perpendicular slip has (1 - p) / 2
    max_episode_steps: PositiveInt  # truncation for the sampling learners (planning ignores it)


class ValueIterationConfig(Section):
    gamma: Gamma
    tolerance: PositiveFloat  # stop when no utility changes by more than this in one sweep
    eval_episodes: PositiveInt  # Monte-Carlo episodes of the greedy policy for rl/greedy_return_mean


class QLearningConfig(Section):
    gamma: Gamma
    episodes: PositiveInt
    alpha: Annotated[float, Field(gt=0, le=1)]  # initial step size
    alpha_decay: Literal["visits", "constant"]  # visits: alpha / (1 + visits(s, a) * alpha) ** alpha_power
    alpha_power: Annotated[float, Field(gt=0.5, le=1)]  # in (1/2, 1]: the Robbins-Monro conditions hold
    epsilon_start: Probability
    epsilon_end: Probability
    epsilon_decay_episodes: PositiveInt  # linear decay of epsilon over this many episodes
    eval_episodes: PositiveInt


def _check_env(name: str) -> str:
    from components.families.rl.names import ENV_NAMES  # not components.families.rl.envs: that imports gymnasium

    if name not in ENV_NAMES:
        raise ValueError(f"unknown env {name!r}; registered: {', '.join(ENV_NAMES)}")
    return name


EnvName = Annotated[str, AfterValidator(_check_env)]


class RLlibAlgoBase(Section):
    env: EnvName
    max_env_steps: PositiveInt  # stop after sampling this many env steps
    return_threshold: float  # rl/env_steps_to_threshold: first step count with episode_return_mean >= this
    stop_at_threshold: bool  # stop as soon as the threshold is reached
    num_env_runners: NonNegativeInt  # 0: sample in the driver process (fastest on 2 cores)
    num_envs_per_env_runner: PositiveInt  # vectorised copies of the env per runner
    gamma: Gamma
    lr: PositiveFloat
    hiddens: list[PositiveInt]  # MLP widths (image observations get RLlib's default conv stack first)
    activation: Literal["tanh", "relu"]
    eval_episodes: PositiveInt  # greedy (explore=False) episodes after training: rl/greedy_return_mean
    checkpoint_every: PositiveInt  # iterations between checkpoints (and after the last)
    num_gpus_per_learner: Annotated[float, Field(ge=0, le=1)]  # > 0: the (local) learner trains on a GPU


class DQNConfig(RLlibAlgoBase):
    train_batch_size: PositiveInt  # transitions per SGD step
    n_step: Annotated[list[PositiveInt], Field(min_length=1, max_length=2)]  # [n] or [min, max] (sampled)
    double_q: bool
    dueling: bool
    replay_buffer: Literal["transitions", "episodes"]  # ours (flat arrays) | RLlib's episode buffer
    replay_capacity: PositiveInt
    prioritized_replay: bool
    replay_alpha: NonNegativeFloat  # prioritisation exponent (prioritized_replay only)
    replay_beta: NonNegativeFloat  # importance-sampling exponent (prioritized_replay only)
    epsilon_start: Probability
    epsilon_end: Probability
    epsilon_timesteps: PositiveInt  # linear decay over this many env steps
    target_network_update_freq: PositiveInt  # env steps between target-network syncs
    learning_starts: NonNegativeInt  # env steps sampled before the first update
    training_intensity: PositiveFloat | None  # replayed / sampled transitions; None: RLlib's default
    rollout_fragment_length: PositiveInt | None  # env steps per env between updates; None: RLlib's (max n_step)


class ReinforceConfig(RLlibAlgoBase):
    episodes_per_batch: PositiveInt  # whole episodes sampled per update
    baseline: Literal["none", "normalize", "value"]  # none: G_t; normalize: (G_t - mean) / std; value: G_t - V(s)
    vf_loss_coeff: NonNegativeFloat  # weight of the value-baseline regression (baseline: value)
    grad_clip: PositiveFloat | None


class RLAlgos(Section):
    value_iteration: ValueIterationConfig
    q_learning: QLearningConfig
    dqn: DQNConfig
    reinforce: ReinforceConfig


class RLConfig(Section):
    gridworld: GridWorldConfig
    algos: RLAlgos

    @model_validator(mode="after")
    def _epsilons_decrease(self) -> RLConfig:
        for name in ("q_learning", "dqn"):
            algo = getattr(self.algos, name)
            if algo.epsilon_end > algo.epsilon_start:
                raise ValueError(f"algos.{name}.epsilon_end must be <= epsilon_start")
        return self





class RLSweepConfig(Section):
    """A Ray Tune sweep over one RLlib algorithm's params (stage ``tune_rl``). Each trial is the
    RLlib algorithm itself as a Tune trainable; trials are compared at equal env steps, so ASHA's
    ``grace_period`` and PBT's ``perturbation_interval`` count env steps here, not epochs."""

    enabled: bool
    algo: Literal["dqn", "reinforce"]  # the rl.algos section whose params are searched
    metric: Literal["rl/episode_return_mean"]  # the 100-episode mean (the rl stage's), maximised
    num_samples: PositiveInt  # trials, the first of them the algorithm's current (default) values
    trial_env_steps: PositiveInt  # env steps per trial (ASHA's max_t)
    scheduler: Literal["asha", "pbt", "fifo"]
    asha: ASHAConfig
    pbt: PBTConfig
    max_concurrent_trials: PositiveInt | None  # null: as many as the cluster's CPUs/GPUs fit at once
    min_improvement: NonNegativeFloat  # the best values replace the default only if better by this (metric units)
    search_space: Annotated[dict[str, SearchDistribution], Field(min_length=1)]  # keys of rl.algos.<algo>

    @property
    def model(self) -> str:
        """What the sweep tunes, named as in a family's sweep (the tuned file's key)."""
        return self.algo
