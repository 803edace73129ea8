"""``image_translation`` in params.yaml: the scorer, the shared networks, the trainer and one section
per model (the pix2pix ablation rows and CycleGAN)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section, TrainerConfig


class UNetGeneratorConfig(Section):
    """pix2pix's U-Net (both models' generators): ``depth`` 4x4 stride-2 convolutions down to
    S / 2**depth, as many transposed ones up, each encoder map concatenated onto its decoder twin."""

    channels: PositiveInt  # width of the first encoder layer, doubled per level up to 8x (the paper's 64)
    depth: Annotated[int, Field(ge=2, le=8)]  # 6 takes 64 px to a 1x1 bottleneck (the paper's 8 for 256 px)
    dropout: Annotated[float, Field(ge=0, lt=1)]  # on the three innermost decoder layers (the paper's noise: 0.5)


class PatchDiscriminatorConfig(Section):
    """The PatchGAN: ``layers`` 4x4 stride-2 convolutions, one stride-1 and a stride-1 score map;
    each score sees a (receptive_field x receptive_field) patch (layers 3: the paper's 70x70)."""

    channels: PositiveInt  # width of the first layer, doubled per layer up to 8x
    layers: Annotated[int, Field(ge=1, le=5)]  # 1: 16 px patches, 2: 34 px, 3: 70 px


class TranslationBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # Adam, the same rate for G and D (the papers' 2e-4)
    betas: Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]
    lr_schedule: Literal["constant", "linear_decay"]  # linear_decay: constant for the first half, then to 0


class Pix2PixConfig(TranslationBase):
    """G minimises gan_weight x cGAN + l1_weight x L1 (the paper: 1 and 100); D sees (input, image)."""

    l1_weight: NonNegativeFloat  # lambda; 0: cGAN only
    gan_weight: NonNegativeFloat  # 0: L1 only (no discriminator is trained)

    @model_validator(mode="after")
    def _some_loss(self) -> Pix2PixConfig:
        if self.l1_weight == 0 and self.gan_weight == 0:
            raise ValueError("l1_weight and gan_weight are both 0: the generator would have no loss")
        return self


class CycleGANConfig(TranslationBase):
    """Two generators (labels -> scenes, scenes -> labels), two least-squares PatchGANs, trained on
    disjoint halves of the training scenes (no pair ever seen)."""

    cycle_weight: NonNegativeFloat  # lambda of both cycle-consistency L1 terms (the paper's 10)
    identity_weight: NonNegativeFloat  # x cycle_weight: G(y) = y for y of G's target domain (the paper's 0.5)
    pool_size: NonNegativeInt  # D sees fakes from a history of this many (Shrivastava et al.; the paper's 50; 0: off)


class ImageTranslationModels(Section):
    pix2pix_l1: Pix2PixConfig
    pix2pix_cgan: Pix2PixConfig
    pix2pix: Pix2PixConfig
    cyclegan: CycleGANConfig


class ImageTranslationConfig(Section):
    dataset: Literal["scenes", "voc"]  # label maps -> images: a dataset's semantic masks in colour, and its images
    image_size: PositiveInt | None  # both domains resized to this side as they load (voc: pix2pix's 256); None: as is
    scorer: Literal["fcn", "unet", "segnet", "dilated"]  # the FCN-score's network: models/segmentation/<scorer>
    generator: UNetGeneratorConfig
    discriminator: PatchDiscriminatorConfig
    trainer: TrainerConfig
    models: ImageTranslationModels
