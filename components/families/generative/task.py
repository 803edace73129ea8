"""The generative family as the harness calls it: which task trains each model, what a run reads
besides its section, rebuilding an export and the sampler MLflow serves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.config import Params
from components.data.schema import read_meta
from components.families.generative import vqvae
from components.families.generative.autoencoders import VAE_MODELS, AutoencoderTask, VAETask
from components.families.generative.base import EVALUATOR_DIR, GenerativeTask
from components.families.generative.evaluator import evaluator_path, file_sha256
from components.families.generative.gan import GANTask
from components.families.generative.models import VAE, AutoEncoder, Generator
from components.families.generative.progan import ProGANTask, ProGenerator
from components.families.generative.sagan import ConditionalGenerator, SAGANTask
from components.families.generative.stylegan import StyleGANTask, StyleGenerator
from components.families.generative.vqvae import VQVAETask
from components.model_logging import ServedModel
from components.runtime import resolve

TASKS = {"autoencoder": AutoencoderTask, "vqvae": VQVAETask, "progan": ProGANTask,
         "stylegan": StyleGANTask, "sagan": SAGANTask}  # the rest: VAETask or GANTask


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


def _network(export: Mapping[str, Any]) -> nn.Module:
    """The untrained network of an export's kind, sized from it."""
    b, kind = export["backbone"], export["kind"]
    channels, side = export["channels"], export["image_size"]
    classes = len(export["class_names"]) if export["conditional"] else 0
    if kind == "vqvae":
        return vqvae.build_model(channels, side, export["config"], b)
    if kind == "progan":
        net = ProGenerator(b["latent_dim"], channels, side, export["width"], b["stages"], b["leak"])
        net.level = export["level"]
        return net
    if kind == "stylegan":
        return StyleGenerator(b["latent_dim"], channels, side, export["width"], b["stages"], b["leak"],
                              export["mapping_layers"], export["mapping_lr_mul"])
    if kind == "sagan":
        return ConditionalGenerator(b["latent_dim"], classes, channels, side, b["g_channels"], b["stages"],
                                    export["attention_resolution"], export["g_spectral_norm"])
    if kind == "gan":
        return Generator(b["latent_dim"] + classes, channels, side, b["g_channels"], b["stages"])
    if kind == "autoencoder":
        return AutoEncoder(channels, side, export["code_dim"], b["g_channels"], b["d_channels"], b["stages"], b["leak"])
    return VAE(channels, side, b["latent_dim"], classes, b["g_channels"], b["d_channels"], b["stages"], b["leak"])


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """Rebuild the trained sampling network from ``model.pt``, in eval mode: a :class:`Generator`
    (GANs: codes (N, latent_dim) to image logits), SAGAN's :class:`ConditionalGenerator` (z and labels
    to image logits), a ProGAN generator at its last level, a :class:`VAE`, an :class:`AutoEncoder`
    (with its fitted code Gaussian) or a VQ-VAE with its prior."""
    net = _network(export)
    net.load_state_dict(export["state_dict"])
    return net.eval()


class Sampler(nn.Module):
    """What MLflow serves for a generative model: codes (N, D) -> images (N, C, S, S) in [0, 1]. D is
    the latent size (the autoencoder's: its code size, standard-normal noise it maps through the
    Gaussian fitted to its codes); a conditional model's codes end with the class's one-hot (K columns;
    SAGAN's generator takes the class as a label: the column of the largest entry). Truncation is the
    caller's: SAGAN's samples of the truncation metrics decode z drawn from N(0, I) within [-t, t]."""

    def __init__(self, net: nn.Module, kind: str):
        super().__init__()
        self.net, self.kind = net, kind

    def forward(self, codes: Tensor) -> Tensor:
        if self.kind in ("gan", "progan", "stylegan"):
            return torch.sigmoid(self.net(codes))
        if self.kind == "sagan":
            latent = self.net.latent_dim
            return torch.sigmoid(self.net(codes[:, :latent], codes[:, latent:].argmax(1)))
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
