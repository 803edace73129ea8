"""The generative family's GAN, VAE and autoencoder tasks (on :class:`GenerativeTask`, base.py), the
model dispatch the harness calls, export loading and the served sampler."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics import MeanMetric

from components.config import Params
from components.data.schema import read_meta
from components.errors import UserError
from components.families.generative import vqvae
from components.families.generative.base import EVALUATOR_DIR, GenerativeTask
from components.families.generative.config import AutoencoderConfig, GANBase, VAEConfig
from components.families.generative.evaluator import evaluator_path, file_sha256
from components.families.generative.losses import (
    LOSSES,
    RECONSTRUCTIONS,
    gradient_penalty,
    kl_divergence,
)
from components.families.generative.models import VAE, AutoEncoder, Discriminator, Generator, init_dcgan_weights
from components.families.generative.saturation import Saturation, measure, saturation_figure
from components.families.generative.vqvae import VQVAETask
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.schedules import constant, warmup_cosine
from components.train.task import Wrap, unwrap

GAN_LOSS = {"dcgan": "nonsaturating", "wgan": "wasserstein", "wgan_gp": "wasserstein",
            "lsgan": "least_squares", "sngan": "hinge", "cgan": "nonsaturating"}
CONDITIONAL_GANS = {"cgan"}  # class-conditional G (one-hot code entries) and projection D
VAE_MODELS = {"vae": False, "cvae": True}  # name -> conditional


class GANTask(GenerativeTask):
    """One GAN formulation on the shared backbones: ``n_critic`` D steps per G step, optional G EMA.

    The conditional GAN (``cgan``) feeds the real batch's labels to D with the real images and to G
    (and D) for the fakes, so generated classes follow the data's class frequencies.
    """

    config: GANBase

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conditional = self.model_name in CONDITIONAL_GANS

    def _optimizer(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=tuple(self.config.betas))

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        b, meta = self.section.backbone, self.meta
        classes = meta.num_classes if self.conditional else 0
        generator = Generator(b.latent_dim + classes, meta.channels, meta.height, b.g_channels, b.stages)
        critic = Discriminator(meta.channels, meta.height, b.d_channels, b.stages, b.leak,
                               spectral_norm=self.model_name == "sngan", num_classes=classes)
        init_dcgan_weights(generator, b.init_std)
        init_dcgan_weights(critic, b.init_std)
        self._untrained = copy.deepcopy(generator).to(device).eval()
        self.modules = {"generator": wrap(generator.to(device)), "discriminator": wrap(critic.to(device))}
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
        if self.model_name == "wgan_gp":  # in float32: a double-backward through half-precision grads underflows
            penalty = gradient_penalty(unwrap(d_net), real, fake.float())
            out["gradient_penalty"] = penalty.detach()
            d_loss = d_loss + self.config.gp_weight * penalty
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


class VAETask(GenerativeTask):
    """A VAE (or, with ``cvae``, a class-conditional VAE): one Adam step on -ELBO per batch."""

    config: VAEConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conditional = VAE_MODELS[self.model_name]

    def _net(self) -> VAE:
        b, meta = self.section.backbone, self.meta
        return VAE(meta.channels, meta.height, b.latent_dim, meta.num_classes if self.conditional else 0,
                   b.g_channels, b.d_channels, b.stages, b.leak)

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        net = self._net()
        self._untrained = copy.deepcopy(net).to(device).eval()
        self.modules = {"vae": wrap(net.to(device))}
        self.optimizers = {"vae": torch.optim.Adam(self.modules["vae"].parameters(), lr=self.config.lr)}

    def _labels(self, labels: Tensor) -> Tensor | None:
        return labels.to(self.device) if self.conditional else None

    def _elbo_terms(self, net: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Per-image reconstruction -log p(x|z) and KL(q(z|x) || p(z)), batch means in nats."""
        logits, mu, logvar = net(images, self._labels(labels))
        recon = RECONSTRUCTIONS[self.config.likelihood](logits, images, self.config.sigma)
        return recon.mean(), kl_divergence(mu, logvar).mean()

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        """-ELBO = recon + kl_weight * KL on one batch; returns ``loss``, ``recon`` and ``kl`` (nats)."""
        images, labels = batch
        with self.precision.autocast():
            recon, kl = self._elbo_terms(self.modules["vae"], images.to(self.device), labels)
            loss = recon + self.config.kl_weight * kl
        self.precision.backward_step(loss, self.optimizers["vae"])
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """ELBO terms on the reference images (one posterior sample each), averaged over all ranks."""
        net = unwrap(self.modules["vae"])
        recon_mean, kl_mean = MeanMetric().to(self.device), MeanMetric().to(self.device)
        net.eval()
        with torch.no_grad():
            for images, labels in batches:
                recon, kl = self._elbo_terms(net, images, labels)
                recon_mean.update(recon, weight=len(images))
                kl_mean.update(kl, weight=len(images))
        net.train()
        return {"recon": float(recon_mean.compute()), "kl": float(kl_mean.compute())}

    def _sampling_net(self) -> nn.Module:
        return unwrap(self.modules["vae"])

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
        return torch.sigmoid(net.decode(codes, labels if self.conditional else None))

    @torch.no_grad()
    def reconstruct(self, images: Tensor, labels: Tensor) -> Tensor:
        """Decoded posterior means: images (N, C, S, S) -> (N, C, S, S) in [0, 1]."""
        net = unwrap(self.modules["vae"])
        net.eval()
        try:
            mu, _ = net.encode(images.to(self.device), self._labels(labels))
            return self._decode(net, mu, labels.to(self.device))
        finally:
            net.train()

    def figures(self, batch: Any) -> Mapping[str, Any]:
        return {**super().figures(batch), "reconstructions": self._reconstruction_figure(batch, self.reconstruct)}

    def export(self) -> dict[str, Any]:
        return {**self._export_common(), "kind": "vae", "conditional": self.conditional,
                "state_dict": unwrap(self.modules["vae"]).state_dict()}


class AutoencoderTask(GenerativeTask):
    """The plain autoencoder: one Adam step on the summed squared pixel error per batch. Its samples
    decode codes from a Gaussian fitted to the training images' codes (refitted before each evaluation
    and figure), the course's demonstration that an autoencoder's code space has holes a prior fills."""

    config: AutoencoderConfig

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        b, meta = self.section.backbone, self.meta
        if self.config.code_dim > b.latent_dim:
            raise UserError(f"generative.models.autoencoder.code_dim ({self.config.code_dim}) exceeds "
                            f"generative.backbone.latent_dim ({b.latent_dim}), the width of the fixed sampling noise")
        net = AutoEncoder(meta.channels, meta.height, self.config.code_dim, b.g_channels, b.d_channels, b.stages,
                          b.leak)
        self._untrained = copy.deepcopy(net).to(device).eval()
        self.modules = {"autoencoder": wrap(net.to(device))}
        self.optimizers = {"autoencoder": torch.optim.Adam(self.modules["autoencoder"].parameters(), lr=self.config.lr)}
        self._untrained_fitted = False

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        """L2 summed over pixels, averaged over the batch; also the per-pixel mean squared error."""
        images = batch[0].to(self.device)
        with self.precision.autocast():
            squared = (torch.sigmoid(self.modules["autoencoder"](images)) - images).pow(2).flatten(1)
            loss = squared.sum(1).mean()
        self.precision.backward_step(loss, self.optimizers["autoencoder"])
        return {"loss": loss.detach(), "recon_mse": squared.detach().mean()}

    def _fit(self) -> None:
        """Both sampling networks' code Gaussians, on this run's training images."""
        images = self.datasets()["train"].tensors[0].to(self.device)
        self._sampling_net().fit_codes(images)
        if not self._untrained_fitted:  # once: the untrained net never changes
            self._untrained.fit_codes(images)
            self._untrained_fitted = True

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        self._fit()
        return super().evaluate(batches)

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """Per-pixel mean squared reconstruction error of the reference images, averaged over all ranks."""
        net = self._sampling_net()
        error = MeanMetric().to(self.device)
        net.eval()
        with torch.no_grad():
            for images, _ in batches:
                error.update((torch.sigmoid(net(images)) - images).pow(2).mean(), weight=images.numel())
        net.train()
        return {"recon_mse": float(error.compute())}

    def _sampling_net(self) -> nn.Module:
        return unwrap(self.modules["autoencoder"])

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
        """The family's fixed noise is latent_dim wide: its first code_dim entries are the standard-normal
        draw (the same figure and evaluation noise every epoch, like the other models')."""
        return torch.sigmoid(net.decode_noise(codes[:, : self.config.code_dim]))

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        net = self._sampling_net()
        net.eval()
        try:
            return torch.sigmoid(net(images.to(self.device)))
        finally:
            net.train()

    def figures(self, batch: Any) -> Mapping[str, Any]:
        self._fit()
        return {**super().figures(batch),
                "reconstructions": self._reconstruction_figure(batch, lambda images, _: self.reconstruct(images))}

    def export(self) -> dict[str, Any]:
        self._fit()
        return {**self._export_common(), "kind": "autoencoder", "conditional": False, "code_dim": self.config.code_dim,
                "state_dict": self._sampling_net().state_dict()}


TASKS = {"autoencoder": AutoencoderTask, "vqvae": VQVAETask}  # the rest: VAETask or GANTask


def build_task(model: str, params: Params) -> GenerativeTask:
    section = params.generative
    directory = resolve(params.data.root) / section.dataset
    task_class = TASKS.get(model, VAETask if model in VAE_MODELS else GANTask)
    return task_class(model, getattr(section.models, model), section, directory, read_meta(directory),
                      resolve(EVALUATOR_DIR), params.seed)


def run_params(model: str, params: Params) -> dict[str, Any]:
    """What a run reads besides its model section and trainer: the shared backbone, the scoring
    settings and the evaluator's file hash (a retrained evaluator starts a fresh run)."""
    section = params.generative
    return {
        "backbone": section.backbone.model_dump(),
        "fid": section.fid.model_dump(),
        "evaluator_sha256": file_sha256(evaluator_path(resolve(EVALUATOR_DIR))),
    }


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """Rebuild the trained sampling network from ``model.pt``: a :class:`Generator` (GANs, maps codes
    (N, latent_dim) to image logits), a :class:`VAE` or an :class:`AutoEncoder` (with its fitted code
    Gaussian); in eval mode."""
    b = export["backbone"]
    if export["kind"] == "vqvae":
        return vqvae.load(export)
    if export["kind"] == "gan":
        classes = len(export["class_names"]) if export["conditional"] else 0
        net = Generator(b["latent_dim"] + classes, export["channels"], export["image_size"], b["g_channels"],
                        b["stages"])
    elif export["kind"] == "autoencoder":
        net = AutoEncoder(export["channels"], export["image_size"], export["code_dim"], b["g_channels"],
                          b["d_channels"], b["stages"], b["leak"])
    else:
        classes = len(export["class_names"]) if export["conditional"] else 0
        net = VAE(export["channels"], export["image_size"], b["latent_dim"], classes, b["g_channels"],
                  b["d_channels"], b["stages"], b["leak"])
    net.load_state_dict(export["state_dict"])
    return net.eval()


class Sampler(nn.Module):
    """What MLflow serves for a generative model: codes (N, D) -> images (N, C, S, S) in [0, 1]. D is
    the latent size (the autoencoder's: its code size, standard-normal noise it maps through the
    Gaussian fitted to its codes); a conditional model's codes end with the class's one-hot (K columns)."""

    def __init__(self, net: nn.Module, kind: str):
        super().__init__()
        self.net, self.kind = net, kind

    def forward(self, codes: Tensor) -> Tensor:
        if self.kind == "gan":
            return torch.sigmoid(self.net(codes))
        if self.kind == "autoencoder":
            return torch.sigmoid(self.net.decode_noise(codes))
        if self.kind == "vqvae":  # noise -> Phi -> the prior's inverse CDFs -> code indices -> decoder
            return torch.sigmoid(self.net(codes))
        return torch.sigmoid(self.net.decoder(codes))  # the VAE: decode(z, labels) = decoder([z, one_hot])


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """The :class:`Sampler` of a trained generative model (components/model_logging.py), with a
    standard-normal example (conditional: classes 0 and 1)."""
    kind, classes = export["kind"], len(export["class_names"]) if export["conditional"] else 0
    width = export["code_dim"] if kind == "autoencoder" else export["backbone"]["latent_dim"]
    example = torch.randn(2, width, generator=torch.Generator().manual_seed(0))
    if classes:
        example = torch.cat([example, F.one_hot(torch.arange(2), classes).float()], dim=1)
    return ServedModel(Sampler(load_exported(export), kind).eval(), example)
