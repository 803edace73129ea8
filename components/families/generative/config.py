"""``generative`` in params.yaml: the evaluator, FID settings, the shared backbone, the trainer and
one section per model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from components.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section, TrainerConfig

# --- generative models ---------------------------------------------------------------------------


class EvaluatorConfig(Section):
    """The classifier whose features define val/fid_evaluator (stage `evaluator`)."""

    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # conv widths, one stage (2 convs + pool) each
    feature_dim: PositiveInt  # penultimate layer: the FID features
    dropout: Annotated[float, Field(ge=0, lt=1)]
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW, warm-up then cosine decay)
    weight_decay: NonNegativeFloat
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)]
    max_shift: NonNegativeInt  # random translation augmentation, pixels
    min_test_accuracy: Annotated[float, Field(ge=0, le=1)]  # the stage fails below this test accuracy


class FIDConfig(Section):
    """How generated samples are scored (the same counts for the model and its reference points)."""

    num_generated: Annotated[int, Field(ge=2)]  # samples per evaluation; also train images for the floor
    reference_split: Literal["val", "test"]  # the real images the samples are compared with
    inception_weights: str | None  # local torchvision Inception-v3 state dict -> val/fid_inception; None: off


class GenerativeBackbone(Section):
    """The one generator/discriminator pair every GAN uses (and the VAE as decoder/encoder)."""

    latent_dim: PositiveInt
    stages: PositiveInt  # resolution doublings in G (halvings in D); image side divisible by 2**stages (family.py)
    g_channels: PositiveInt  # generator width at the output resolution, doubled per stage inward
    d_channels: PositiveInt  # discriminator width at the input resolution, doubled per stage
    leak: Annotated[float, Field(gt=0, lt=1)]  # LeakyReLU slope in D
    init_std: PositiveFloat  # DCGAN initialisation: weights ~ N(0, init_std)


class GANBase(Section):
    epochs: PositiveInt
    optimizer: Literal["adam", "rmsprop"]
    lr_g: PositiveFloat
    lr_d: PositiveFloat
    betas: Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]  # Adam only
    n_critic: PositiveInt  # discriminator steps per generator step
    lr_schedule: Literal["cosine", "constant"]  # cosine: both learning rates decay to 0 over the run
    ema_decay: Annotated[float, Field(gt=0, lt=1)] | None  # EMA of generator weights for sampling; None: off


class DCGANConfig(GANBase):
    # non_saturating: G maximises log D(G(z)) (the DCGAN paper's); saturating: G minimises log(1 - D(G(z)))
    loss: Literal["non_saturating", "saturating"]
    saturation_steps: NonNegativeInt  # D steps from initialisation over which G's gradient is measured (0: off)


class WGANConfig(GANBase):
    clip_value: PositiveFloat  # critic weights are clamped to [-c, c] after each step


class WGANGPConfig(GANBase):
    gp_weight: PositiveFloat  # lambda of the gradient penalty


class LSGANConfig(GANBase):
    pass


class SNGANConfig(GANBase):
    pass


class CGANConfig(GANBase):
    pass


class SAGANConfig(GANBase):
    """The class-conditional SAGAN/BigGAN recipe on the backbone's widths: conditional batch norm in G,
    a projection D, hinge loss, spectral normalisation (D always, G optionally), a self-attention block
    in both, and samples scored at each truncation threshold (sagan.py)."""

    attention_resolution: PositiveInt | None  # side (px) of the self-attention block in G and D; None: none
    g_spectral_norm: bool  # spectral normalisation in G too (SAGAN's; D always has it)
    truncation: list[PositiveFloat]  # thresholds t: samples from N(0, I) truncated to [-t, t], scored each


class ProGANConfig(GANBase):
    """Progressive growing: ``level_epochs`` at each resolution below the top, ``fade_epochs`` fading
    each next one in, the rest of ``epochs`` at the top (``family.check_sizes`` checks the sum)."""

    channels: PositiveInt  # G's and D's width at the full resolution, doubled per level below (backbone's: 64)
    level_epochs: PositiveInt  # epochs at each resolution below the top (the paper's 800k images)
    fade_epochs: NonNegativeInt  # epochs fading each new resolution in (the paper's 800k images)
    gp_weight: PositiveFloat  # lambda of the WGAN-GP gradient penalty
    drift: NonNegativeFloat  # eps of the drift term eps * E[D(x)^2] on real scores (keeps D's output near 0)
    mbstd_group: PositiveInt  # minibatch standard deviation over groups of this many samples


class StyleGANConfig(GANBase):
    """The style-based generator and ProGAN's discriminator at the full resolution."""

    channels: PositiveInt  # G's and D's width at the full resolution, doubled per resolution below
    mapping_layers: PositiveInt  # dense layers z -> w (8 in the paper)
    mapping_lr_mul: PositiveFloat  # the mapping network's learning-rate multiplier (0.01 in the paper)
    mixing_prob: Annotated[float, Field(ge=0, le=1)]  # share of G's batches trained with two codes (0.9)
    # non_saturating: with R1 (the paper's FFHQ setting); wgan_gp: with ProGAN's penalty and drift (CelebA-HQ)
    loss: Literal["non_saturating", "wgan_gp"]
    r1_gamma: NonNegativeFloat  # non_saturating: gamma of the R1 penalty on real images (10 in the paper)
    r1_every: PositiveInt  # non_saturating: lazy R1, computed every this many D steps, weighted by as much
    gp_weight: PositiveFloat  # wgan_gp: lambda of the gradient penalty
    drift: NonNegativeFloat  # wgan_gp: eps of the drift term
    mbstd_group: PositiveInt  # D's minibatch standard deviation group


class VAEConfig(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # Adam
    kl_weight: PositiveFloat  # beta: 1 is the ELBO
    likelihood: Literal["bernoulli", "gaussian"]  # p(x|z) per pixel, mean sigmoid(decoder logits)
    sigma: PositiveFloat  # the Gaussian likelihood's fixed standard deviation (unused by bernoulli)


class AutoencoderConfig(Section):
    """The plain autoencoder: a code of ``code_dim`` numbers, L2 on the pixels (Adam)."""

    epochs: PositiveInt
    lr: PositiveFloat
    code_dim: PositiveInt  # the bottleneck (the GANs' and VAEs' latent_dim is backbone.latent_dim)


class CodePriorConfig(Section):
    """The VQ-VAE's prior: a causal Transformer over the code indices in raster order (Adam)."""

    width: PositiveInt  # token embedding size
    layers: PositiveInt
    heads: PositiveInt  # must divide width
    dropout: Annotated[float, Field(ge=0, lt=1)]  # in attention and MLP: the prior sees ~20k codes and overfits
    lr: PositiveFloat

    @field_validator("heads")
    @classmethod
    def _divides_width(cls, heads: int, info: ValidationInfo) -> int:
        width = info.data.get("width")
        if width is not None and width % heads:
            raise ValueError(f"must divide width ({width}): each head attends over width / heads channels")
        return heads


class VQVAEConfig(Section):
    """VQ-VAE: one of ``num_codes`` codebook vectors (``code_dim`` wide) per position of the encoder's
    S / 2**stages map; squared pixel error + codebook loss + ``commitment`` x commitment loss (Adam)."""

    epochs: PositiveInt
    lr: PositiveFloat  # both networks' learning rates decay to 0 on a cosine over the run
    num_codes: Annotated[int, Field(ge=2)]  # codebook size K: each position carries log2 K bits
    code_dim: PositiveInt  # D, the width of each codebook vector
    commitment: NonNegativeFloat  # beta (0.25 in the paper)
    prior: CodePriorConfig


class GenerativeModels(Section):
    dcgan: DCGANConfig
    wgan: WGANConfig
    wgan_gp: WGANGPConfig
    lsgan: LSGANConfig
    sngan: SNGANConfig
    cgan: CGANConfig
    sagan: SAGANConfig
    vae: VAEConfig
    cvae: VAEConfig
    autoencoder: AutoencoderConfig
    vqvae: VQVAEConfig
    progan: ProGANConfig
    stylegan: StyleGANConfig


class LatentsConfig(Section):
    """Stage generative_latents: how the GANs' codes of the test images are found (Adam on z)."""

    steps: PositiveInt  # optimisation steps per inversion (every test image at once)
    lr: PositiveFloat


class GenerativeConfig(Section):
    dataset: Literal["digits", "mnist", "cifar10"]
    evaluator: EvaluatorConfig
    fid: FIDConfig
    backbone: GenerativeBackbone
    trainer: TrainerConfig
    models: GenerativeModels
    latents: LatentsConfig
