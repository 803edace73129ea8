"""GANs on the shared DCGAN backbones as the harness drives them: ``n_critic`` discriminator steps per
generator step, the formulation's loss and penalties, an EMA of the generator for sampling."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from components.families.generative.base import GenerativeTask
from components.families.generative.config import GANBase
from components.families.generative.losses import (
    LOSSES,
    gradient_penalty,
)
from components.families.generative.models import Discriminator, Generator, init_dcgan_weights
from components.families.generative.saturation import Saturation, measure, saturation_figure
from components.train.schedules import constant, warmup_cosine
from components.train.task import Wrap, unwrap

GAN_LOSS = {"dcgan": "nonsaturating", "wgan": "wasserstein", "wgan_gp": "wasserstein",
            "lsgan": "least_squares", "sngan": "hinge", "cgan": "nonsaturating", "progan": "wasserstein",
            "stylegan": "nonsaturating", "sagan": "hinge"}
# Class-conditional G and projection D: cgan's G reads one-hot code entries, sagan's conditional batch norms.
CONDITIONAL_GANS = {"cgan", "sagan"}

class GANTask(GenerativeTask):
    """One GAN formulation on the shared backbones: ``n_critic`` D steps per G step, optional G EMA.

    The conditional GANs (``cgan``, ``sagan``) feed the real batch's labels to D with the real images and
    to G (and D) for the fakes, so generated classes follow the data's class frequencies.
    """

    config: GANBase
    ddp_options: Mapping[str, Any] = {}  # for the harness's wrap (ProGAN: find_unused_parameters)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conditional = self.model_name in CONDITIONAL_GANS

    def _optimizer(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=tuple(self.config.betas))

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator) at initialisation: the shared DCGAN backbones."""
        b, meta = self.section.backbone, self.meta
        classes = meta.num_classes if self.conditional else 0
        generator = Generator(b.latent_dim + classes, meta.channels, meta.height, b.g_channels, b.stages)
        critic = Discriminator(meta.channels, meta.height, b.d_channels, b.stages, b.leak,
                               spectral_norm=self.model_name == "sngan", num_classes=classes)
        init_dcgan_weights(generator, b.init_std)
        init_dcgan_weights(critic, b.init_std)
        return generator, critic

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        b = self.section.backbone
        generator, critic = self._networks()
        self._untrained = copy.deepcopy(generator).to(device).eval()
        self.modules = {"generator": wrap(generator.to(device), **self.ddp_options),
                        "discriminator": wrap(critic.to(device), **self.ddp_options)}
        self.optimizers = {"generator": self._optimizer(self.modules["generator"].parameters(), self.config.lr_g),
                           "discriminator": self._optimizer(self.modules["discriminator"].parameters(),
                                                            self.config.lr_d)}
        # Learning rates decay per own step: D steps every batch, G every n_critic-th batch.
        d_total = self.config.epochs * steps_per_epoch
        totals = {"discriminator": d_total, "generator": -(-d_total // self.config.n_critic)}
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(
                optimizer, warmup_cosine(0, totals[name]) if self.config.lr_schedule == "cosine" else constant())
            for name, optimizer in self.optimizers.items()
        }
        self.ema = None
        if self.config.ema_decay is not None:
            self.ema = AveragedModel(unwrap(self.modules["generator"]), use_buffers=True,
                                     multi_avg_fn=get_ema_multi_avg_fn(self.config.ema_decay)).eval()
        self.loss = LOSSES[self._loss_name()]
        self.saturation: Saturation | None = None
        if getattr(self.config, "saturation_steps", 0):  # DCGAN: G's gradient under both losses, from init
            self.saturation = measure(generator, critic, self.datasets()["train"].tensors[0], b.latent_dim,
                                      self.config.saturation_steps, self.config.lr_d, tuple(self.config.betas),
                                      self.seed)
        self.d_steps = 0
        self._last_g_loss: Tensor | None = None

    def _loss_name(self) -> str:
        """The key of :data:`LOSSES`: the model's own (DCGAN's ``loss`` chooses saturating or not)."""
        if getattr(self.config, "loss", "non_saturating") == "saturating":
            return "saturating"
        return GAN_LOSS[self.model_name]

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        return self.saturation.final() if self.saturation is not None else {}

    def figures(self, batch: Any) -> Mapping[str, Any]:
        figures = dict(super().figures(batch))
        if self.saturation is not None:
            figures["saturation"] = saturation_figure(self.saturation)
        return figures

    def _noise(self, n: int) -> Tensor:
        return torch.randn(n, self.section.backbone.latent_dim, device=self.device)

    def _penalties(self, critic: nn.Module, real: Tensor, fake: Tensor, real_scores: Tensor
                   ) -> dict[str, tuple[float, Tensor]]:
        """Terms added to D's loss, by name: (weight, value). WGAN-GP's gradient penalty, computed in
        float32 on the unwrapped critic (a double backward through half-precision grads underflows)."""
        if self.model_name == "wgan_gp":
            return {"gradient_penalty": (self.config.gp_weight, gradient_penalty(critic, real, fake.float()))}
        return {}

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        """One critic step; every ``n_critic``-th call also one generator step. Returns ``loss_d``,
        ``loss_g`` (of the latest generator step) and, for WGAN-GP, the ``gradient_penalty``."""
        real = batch[0].to(self.device)
        labels = batch[1].to(self.device) if self.conditional else None
        g_net, d_net = self.modules["generator"], self.modules["discriminator"]
        with self.precision.autocast():
            with torch.no_grad():
                fake = self._decode(g_net, self._noise(len(real)), labels)
            # One DDP forward for both halves (D has no batch norm).
            scores = d_net(torch.cat([real, fake]), None if labels is None else torch.cat([labels, labels]))
            d_loss = self.loss.discriminator(scores[: len(real)], scores[len(real) :])
        out = {"loss_d": d_loss.detach()}
        for name, (weight, penalty) in self._penalties(unwrap(d_net), real, fake, scores[: len(real)]).items():
            out[name] = penalty.detach()
            d_loss = d_loss + weight * penalty
        self.precision.backward_step(d_loss, self.optimizers["discriminator"])
        self.schedulers["discriminator"].step()
        if self.model_name == "wgan":
            with torch.no_grad():
                for param in d_net.parameters():
                    param.clamp_(-self.config.clip_value, self.config.clip_value)

        if self.d_steps % self.config.n_critic == 0 or self._last_g_loss is None:
            with self.precision.autocast():
                g_loss = self.loss.generator(d_net(self._decode(g_net, self._noise(len(real)), labels), labels))
            self.precision.backward_step(g_loss, self.optimizers["generator"])
            self.schedulers["generator"].step()
            if self.ema is not None:
                self.ema.update_parameters(unwrap(g_net))
            self._last_g_loss = g_loss.detach()
        self.d_steps += 1
        out["loss_g"] = self._last_g_loss
        return out

    def _sampling_net(self) -> nn.Module:
        return self.ema.module if self.ema is not None else unwrap(self.modules["generator"])

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor | None) -> Tensor:
        if self.conditional:
            codes = torch.cat([codes, F.one_hot(labels, self.meta.num_classes).to(codes.dtype)], dim=1)
        return torch.sigmoid(net(codes))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["d_steps"] = self.d_steps
        state["ema"] = self.ema.state_dict() if self.ema is not None else None
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.d_steps = state["d_steps"]
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def export(self) -> dict[str, Any]:
        return {**self._export_common(), "kind": "gan", "ema": self.ema is not None, "conditional": self.conditional,
                "state_dict": self._sampling_net().state_dict()}
