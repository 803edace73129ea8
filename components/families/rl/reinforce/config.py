"""``ReinforceAlgoConfig``: RLlib's AlgorithmConfig plus REINFORCE's own settings."""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

BASELINES = ("none", "normalize", "value")


class ReinforceAlgoConfig(AlgorithmConfig):
    """REINFORCE (Monte-Carlo policy gradient) on the new API stack.

    Own settings (set through :meth:`training`):
        episodes_per_batch: complete episodes sampled per update (split across the env runners).
        baseline: "none" (G_t), "normalize" (G_t standardised over the batch) or "value" (G_t - V(s)).
        vf_loss_coeff: weight of the value regression mean (V(s) - G_t)² (baseline "value" only).
    """

    def __init__(self, algo_class=None) -> None:
        from components.families.rl.reinforce.algorithm import Reinforce

        super().__init__(algo_class=algo_class or Reinforce)
        self.episodes_per_batch = 16
        self.baseline = "normalize"
        self.vf_loss_coeff = 0.5
        self.lr = 1e-3
        self.batch_mode = "complete_episodes"
        self.num_env_runners = 0  # on 2 cores sampling in the driver beats a remote runner

    def training(
        self,
        *,
        episodes_per_batch: int = NotProvided,
        baseline: str = NotProvided,
        vf_loss_coeff: float = NotProvided,
        **kwargs,
    ) -> ReinforceAlgoConfig:
        """RLlib's training settings (lr, gamma, grad_clip, ...) plus REINFORCE's own."""
        super().training(**kwargs)
        if episodes_per_batch is not NotProvided:
            self.episodes_per_batch = episodes_per_batch
        if baseline is not NotProvided:
            self.baseline = baseline
        if vf_loss_coeff is not NotProvided:
            self.vf_loss_coeff = vf_loss_coeff
        return self

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        """RLlib's PPO module: an MLP (or conv) encoder, a policy head and a value head."""
        from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
        from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule

        return RLModuleSpec(module_class=DefaultPPOTorchRLModule, catalog_class=PPOCatalog)

    def get_default_learner_class(self):
        from components.families.rl.reinforce.learner import ReinforceTorchLearner

        return ReinforceTorchLearner

    def validate(self) -> None:
        super().validate()
        if self.framework_str != "torch":
            self._value_error(f"REINFORCE is implemented for torch only (got framework {self.framework_str!r})")
        if self.baseline not in BASELINES:
            self._value_error(f"baseline must be one of {BASELINES} (got {self.baseline!r})")
        if not isinstance(self.episodes_per_batch, int) or self.episodes_per_batch < 1:
            self._value_error(f"episodes_per_batch must be a positive int (got {self.episodes_per_batch!r})")
        if self.vf_loss_coeff < 0:
            self._value_error(f"vf_loss_coeff must be >= 0 (got {self.vf_loss_coeff})")
        if self.num_env_runners > self.episodes_per_batch:
            self._value_error(
                f"episodes_per_batch ({self.episodes_per_batch}) must be >= num_env_runners "
                f"({self.num_env_runners}): every runner samples at least one whole episode"
            )
        model = self.model_config
        if model.get("use_lstm") or model.get("use_attention"):
            self._value_error("REINFORCE supports feed-forward modules only (use_lstm/use_attention is set)")
