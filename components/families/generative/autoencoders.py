"""The autoencoders as the harness drives them: the VAE and CVAE (one Adam step on -ELBO per batch) and
the plain autoencoder (L2, sampled through a Gaussian fitted to its codes)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from components.errors import UserError
from components.families.generative.base import GenerativeTask
from components.families.generative.config import AutoencoderConfig, VAEConfig
from components.families.generative.losses import (
    RECONSTRUCTIONS,
    kl_divergence,
)
from components.families.generative.models import VAE, AutoEncoder
from components.train.task import Wrap, unwrap

VAE_MODELS = {"vae": False, "cvae": True}  # name -> conditional


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
