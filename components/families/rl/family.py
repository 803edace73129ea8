"""The reinforcement-learning family's descriptor (see components/families/base.py)."""

from components.families.base import Curve, RLFamily
from components.families.rl.config import RLConfig, RLSweepConfig


def shrink(params: dict, sweep: dict) -> None:
    """Tests: a few hundred episodes or env steps per algorithm, 16-unit networks; two 1000-step trials."""
    algos = params["algos"]
    algos["value_iteration"].update(eval_episodes=50)
    algos["q_learning"].update(episodes=400, epsilon_decay_episodes=200, eval_episodes=50)
    algos["dqn"].update(max_env_steps=1500, learning_starts=500, hiddens=[16], replay_capacity=2000,
                        train_batch_size=32, epsilon_timesteps=1000, checkpoint_every=1, eval_episodes=2)
    algos["reinforce"].update(max_env_steps=600, episodes_per_batch=4, num_envs_per_env_runner=2, hiddens=[16],
                              checkpoint_every=1, eval_episodes=2)
    sweep.update(num_samples=2, trial_env_steps=1000, asha={"grace_period": 500, "reduction_factor": 2},
                 pbt={"perturbation_interval": 500, "quantile_fraction": 0.5, "resample_probability": 0.25})


FAMILIES = (
    RLFamily(
        name="rl", order=60, title="Reinforcement learning", experiment="rl",
        config=RLConfig, sweep_config=RLSweepConfig,
        task_module="components.families.rl.runner",  # RLlib's loop; the stage is pipelines.rl
        headline="rl/greedy_return_mean",
        higher_is_better=frozenset({"episode_return_mean", "greedy_return_mean"}),
        references=(("solved threshold", "rl/return_threshold"), ("optimal", "rl/optimal_start_utility")),
        stage_params=("gridworld",),
        shrink=shrink,
        curves=(Curve("rl/episode_return_mean", "mean episode return"),),
        uncurved=("value_iteration",),  # planning: no episodes, an empty learning curve
    ),
)
