"""VQ-VAE (van den Oord et al., 2017): a discrete code of one codebook index per position of the
encoder's feature map, and an autoregressive prior over those indices to sample from.

- :class:`VectorQuantizer`: the nearest of ``num_codes`` learned vectors per position; the
  straight-through estimator copies the decoder's gradient at the quantized vectors onto the
  encoder's outputs (z_e + sg[z_q - z_e]); the codebook learns from ||sg[z_e] - e||^2 and the
  encoder is held near its choices by the commitment term beta ||z_e - sg[e]||^2.
- :class:`VQVAE`: the family's encoder trunk (strided convs) to a ``code_dim``-channel map at
  S / 2**stages (4x4 positions for the 8x8 digits), quantized, then a conv and the DCGAN generator's
  upsampling back to image logits.
- :class:`CodePrior`: a causal Transformer over the indices in raster order (the paper used a
  PixelCNN; a decoder-only Transformer is the later practice, e.g. VQGAN), trained by cross-entropy on
  the training images' indices. Sampling maps the family's fixed standard-normal noise to uniforms
  (Phi(z)) and draws each index by inverting the prior's conditional CDF, so the samples are a
  deterministic function of the noise, as every other model's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from components.errors import UserError
from components.families.generative.base import GenerativeTask
from components.families.generative.config import VQVAEConfig
from components.families.generative.figures import codebook_usage_figure
from components.families.generative.models import ConvTrunk, upsampling
from components.train.schedules import warmup_cosine
from components.train.task import Wrap


class VectorQuantizer(nn.Module):
    """(N, D, H, W) encoder outputs -> nearest of ``num_codes`` codebook vectors (Euclidean)."""

    def __init__(self, num_codes: int, code_dim: int) -> None:
        super().__init__()
        self.codebook = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / num_codes, 1 / num_codes)  # the paper's code's initialisation

    def indices(self, z_e: Tensor) -> Tensor:
        """(N, D, H, W) -> (N, H, W) int64: argmin_k ||z_e - e_k||^2 per position."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        codebook = self.codebook.weight
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(1)
        return distance.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, indices: Tensor) -> Tensor:
        """(N, H, W) indices -> (N, D, H, W) codebook vectors."""
        return self.codebook(indices).permute(0, 3, 1, 2)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(z_q with the straight-through gradient, codebook loss, commitment loss, indices); both
        losses are squared distances summed per image and averaged over the batch."""
        indices = self.indices(z_e.detach())
        z_q = self.lookup(indices)
        codebook_loss = (z_q - z_e.detach()).pow(2).flatten(1).sum(1).mean()
        commitment_loss = (z_e - z_q.detach()).pow(2).flatten(1).sum(1).mean()
        return z_e + (z_q - z_e).detach(), codebook_loss, commitment_loss, indices


class VQVAE(nn.Module):
    """Images (N, C, S, S) in [0, 1] -> discrete codes (N, S / 2**stages, S / 2**stages) -> image logits."""

    def __init__(self, in_channels: int, image_size: int, num_codes: int, code_dim: int, g_channels: int,
                 d_channels: int, stages: int, leak: float) -> None:
        super().__init__()
        self.encoder = ConvTrunk(in_channels, image_size, d_channels, stages, leak, spectral_norm=False)
        self.to_code = nn.Conv2d(self.encoder.out_channels, code_dim, kernel_size=1)
        self.quantizer = VectorQuantizer(num_codes, code_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, g_channels * 2**stages, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(g_channels * 2**stages),
            nn.ReLU(inplace=True),
            upsampling(g_channels, stages),
            nn.Conv2d(g_channels, in_channels, kernel_size=3, padding=1),
        )
        self.grid = self.encoder.out_size  # the code map's side

    def encode(self, images: Tensor) -> Tensor:
        """z_e: (N, code_dim, grid, grid), before quantization."""
        return self.to_code(self.encoder.feature_map(images))

    def decode_indices(self, indices: Tensor) -> Tensor:
        """(N, grid, grid) indices -> image logits (N, C, S, S)."""
        return self.decoder(self.quantizer.lookup(indices))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(reconstruction logits, codebook loss, commitment loss, indices (N, grid, grid))."""
        z_q, codebook_loss, commitment_loss, indices = self.quantizer(self.encode(images))
        return self.decoder(z_q), codebook_loss, commitment_loss, indices


class CodePrior(nn.Module):
    """p(k_1..k_P) = prod_p p(k_p | k_<p): a causal (pre-norm) Transformer over the P code indices in
    raster order, a start token in front."""

    def __init__(self, num_codes: int, positions: int, width: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.num_codes, self.positions = num_codes, positions
        self.embed = nn.Embedding(num_codes + 1, width)  # index num_codes is the start token
        self.position = nn.Parameter(torch.randn(positions, width) * 0.02)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(positions), persistent=False)

    def forward(self, codes: Tensor) -> Tensor:
        """Indices (N, P) -> logits (N, P, num_codes) of each index given those before it."""
        start = torch.full_like(codes[:, :1], self.num_codes)
        tokens = self.embed(torch.cat([start, codes[:, :-1]], dim=1)) + self.position
        return self.head(self.norm(self.blocks(tokens, mask=self.causal, is_causal=True)))

    def sample(self, uniforms: Tensor) -> Tensor:
        """Uniforms (N, P) in (0, 1) -> indices (N, P): index p is the inverse of p(k_p | k_<p)'s CDF at
        uniforms[:, p] (ancestral sampling, deterministic given the uniforms)."""
        codes = torch.zeros(uniforms.shape, dtype=torch.long, device=uniforms.device)
        for p in range(self.positions):  # later positions are masked: their placeholder values do not matter
            cdf = self(codes)[:, p].softmax(-1).cumsum(-1)
            index = (cdf < uniforms[:, p : p + 1]).sum(-1).clamp(max=self.num_codes - 1)
            codes = torch.cat([codes[:, :p], index[:, None], codes[:, p + 1 :]], dim=1)
        return codes


class VQVAEModel(nn.Module):
    """The autoencoder and its prior: what is sampled from, exported and served.

    ``forward(noise)`` maps standard-normal noise (N, >= P) to image logits: Phi of its first P
    columns are the prior's uniforms.
    """

    def __init__(self, autoencoder: VQVAE, prior: CodePrior) -> None:
        super().__init__()
        self.autoencoder, self.prior = autoencoder, prior

    def forward(self, noise: Tensor) -> Tensor:
        uniforms = torch.special.ndtr(noise[:, : self.prior.positions])
        codes = self.prior.sample(uniforms).view(-1, self.autoencoder.grid, self.autoencoder.grid)
        return self.autoencoder.decode_indices(codes)


def build_model(channels: int, image_size: int, config: Mapping[str, Any], backbone: Mapping[str, Any]) -> VQVAEModel:
    """The network of a ``vqvae`` params section (as a dict) on the family's backbone widths."""
    autoencoder = VQVAE(channels, image_size, config["num_codes"], config["code_dim"], backbone["g_channels"],
                        backbone["d_channels"], backbone["stages"], backbone["leak"])
    prior = config["prior"]
    return VQVAEModel(autoencoder, CodePrior(config["num_codes"], autoencoder.grid**2, prior["width"],
                                             prior["layers"], prior["heads"], prior["dropout"]))


def perplexity(counts: Tensor) -> float:
    """exp(entropy) of the code usage histogram: the number of equally used codes it is worth."""
    probs = counts.double() / counts.sum()
    return math.exp(-float((probs[probs > 0] * probs[probs > 0].log()).sum()))


class VQVAETask(GenerativeTask):
    """Per batch: one Adam step of the VQ-VAE on squared pixel error (summed per image, as the plain
    autoencoder's) + codebook loss + ``commitment`` x commitment loss, then one Adam step of the prior
    on that batch's (detached) indices; both train together from the first step, their learning rates
    decaying on one cosine (the codes settle as the prior's steps shrink)."""

    config: VQVAEConfig
    interpolates = False  # decoded noise passes through a categorical draw: no path between codes

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        meta, b = self.meta, self.section.backbone
        net = build_model(meta.channels, meta.height, self.config.model_dump(), b.model_dump())
        if net.prior.positions > b.latent_dim:
            raise UserError(f"generative.backbone.latent_dim ({b.latent_dim}) is below the VQ-VAE's "
                            f"{net.prior.positions} code positions, each drawn from one noise entry; raise it")
        self._untrained = copy.deepcopy(net).to(device).eval()
        self.net = net.to(device)
        self.modules = {"vqvae": wrap(net.autoencoder), "prior": wrap(net.prior)}
        self.optimizers = {"vqvae": torch.optim.Adam(self.modules["vqvae"].parameters(), lr=self.config.lr),
                           "prior": torch.optim.Adam(self.modules["prior"].parameters(), lr=self.config.prior.lr)}
        total = self.config.epochs * steps_per_epoch
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(0, total))
                           for name, optimizer in self.optimizers.items()}

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        """Returns ``loss`` (the VQ-VAE's), ``recon_mse`` (per pixel), ``codebook``, ``commitment`` and
        ``prior_nll`` (nats per code)."""
        images = batch[0].to(self.device)
        with self.precision.autocast():
            logits, codebook, commitment, indices = self.modules["vqvae"](images)
            squared = (torch.sigmoid(logits) - images).pow(2).flatten(1)
            loss = squared.sum(1).mean() + codebook + self.config.commitment * commitment
        self.precision.backward_step(loss, self.optimizers["vqvae"])
        codes = indices.flatten(1)
        with self.precision.autocast():
            prior_nll = F.cross_entropy(self.modules["prior"](codes).flatten(0, 1), codes.flatten())
        self.precision.backward_step(prior_nll, self.optimizers["prior"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"loss": loss.detach(), "recon_mse": squared.detach().mean(), "codebook": codebook.detach(),
                "commitment": commitment.detach(), "prior_nll": prior_nll.detach()}

    @torch.no_grad()
    def _code_statistics(self, batches: Iterable[tuple[Tensor, Tensor]], reduce: bool = True) -> tuple[Tensor, Tensor]:
        """[summed squared pixel error, pixels, summed prior NLL (nats), codes] and the code usage counts
        (num_codes,) of ``batches``' images; with ``reduce``, summed over ranks (every rank must call)."""
        net = self.net.eval()
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        counts = torch.zeros(self.config.num_codes, dtype=torch.float64, device=self.device)
        for images, _ in batches:
            logits, _, _, indices = net.autoencoder(images)
            codes = indices.flatten(1)
            nll = F.cross_entropy(net.prior(codes).flatten(0, 1), codes.flatten(), reduction="sum")
            totals += torch.tensor([float((torch.sigmoid(logits) - images).pow(2).sum()), images.numel(),
                                    float(nll), codes.numel()], dtype=torch.float64, device=self.device)
            counts += torch.bincount(codes.flatten(), minlength=self.config.num_codes).double()
        net.train()
        if reduce and dist.is_available() and dist.is_initialized():
            dist.all_reduce(totals)
            dist.all_reduce(counts)
        return totals, counts

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """``recon_mse`` per pixel, ``prior_nll`` in nats per code, ``perplexity`` of the code usage,
        ``codebook_usage`` (fraction of codes used) and ``code_bits`` (positions x log2 num_codes)."""
        totals, counts = self._code_statistics(batches)
        return {"recon_mse": float(totals[0] / totals[1]), "prior_nll": float(totals[2] / totals[3]),
                "perplexity": perplexity(counts), "codebook_usage": float((counts > 0).double().mean()),
                "code_bits": self.net.prior.positions * math.log2(self.config.num_codes)}

    def _sampling_net(self) -> nn.Module:
        return self.net

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
        return torch.sigmoid(net(codes))

    @torch.no_grad()
    def reconstruct(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        net = self.net.eval()
        try:
            return torch.sigmoid(net.autoencoder(images.to(self.device))[0])
        finally:
            net.train()

    def figures(self, batch: Any) -> Mapping[str, Any]:
        figures = {**super().figures(batch), "reconstructions": self._reconstruction_figure(batch, self.reconstruct)}
        _, counts = self._code_statistics([(batch[0].to(self.device), batch[1])], reduce=False)
        figures["codebook_usage"] = codebook_usage_figure(counts.cpu(), perplexity(counts))
        return figures

    def export(self) -> dict[str, Any]:
        return {**self._export_common(), "kind": "vqvae", "conditional": False, "config": self.config.model_dump(),
                "state_dict": self.net.state_dict()}

