"""``selfsup`` in params.yaml: the one encoder every method pretrains, the augmentations of its inputs,
one section per method, and the linear probe that judges them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Section, TrainerConfig

Fraction = Annotated[float, Field(ge=0, lt=1)]


class EncoderConfig(Section):
    """The generative family's digit CNN without its classifier: one stage per width (two 3x3
    conv-BN-ReLU, a 2x2 max-pool), then a linear layer to ``feature_dim`` with ReLU (the final
    features) or, with ``feature_dim`` null, none: the final features are the last stage's pooled maps.
    The probe also reads the last and the first stage's pooled maps."""

    channels: Annotated[list[PositiveInt], Field(min_length=2)]
    feature_dim: PositiveInt | None


class AugmentConfig(Section):
    """Every pretext input is an augmented view (without them rotation and jigsaw over-fit 1,257 digits):
    a random crop of ``min_scale``..1 of the side resized back, a brightness factor in 1 +- ``brightness``,
    Gaussian noise of standard deviation ``noise`` and, with probability ``erase_p``, a zeroed square of
    up to ``erase_size`` pixels."""

    min_scale: Annotated[float, Field(gt=0, le=1)]
    brightness: Fraction
    noise: NonNegativeFloat
    erase_p: Annotated[float, Field(ge=0, le=1)]
    erase_size: PositiveInt


class MethodBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]
    warmup_fraction: Fraction
    init_seed: int  # added to the top-level seed for this encoder's initial weights and draws


class RotationConfig(MethodBase):
    """Gidaris et al. (2018): predict which of four rotations was applied (all four of each image)."""


class JigsawConfig(MethodBase):
    """Noroozi & Favaro (2016): the view cut into grid x grid tiles, shuffled by one of ``permutations``
    permutations (a fixed subset of maximal Hamming distance; ``shuffles`` distinct ones of each view in a
    batch), encoded (each tile alone, or the shuffled tiles as one image), the features classify which
    permutation was applied."""

    grid: Annotated[int, Field(ge=2)]
    permutations: Annotated[int, Field(ge=2)]
    # tiles: each tile encoded alone (the authors' siamese network; a tile is scaled up to the image size);
    # image: the shuffled tiles put back into one image, encoded once (tile borders may give the answer away)
    encode: Literal["tiles", "image"]
    hidden: PositiveInt  # the head's hidden layer over the concatenated tile features
    # each view shuffled by this many distinct permutations in one batch (as rotation's four turns of each
    # view): the head must tell apart arrangements of the same content; 1: one per view, as the authors
    shuffles: PositiveInt

    @model_validator(mode="after")
    def _distinct_shuffles(self) -> JigsawConfig:
        if self.shuffles > self.permutations:
            raise ValueError(f"shuffles = {self.shuffles} distinct permutations of each view, but permutations = "
                             f"{self.permutations}: shuffles must be 1..{self.permutations}")
        return self


class ContextConfig(MethodBase):
    """Doersch et al. (2015), context prediction: a patch at the view's centre and one of its eight
    neighbours, each resampled to the image size and encoded alone (siamese), the two features
    concatenated classify where the second lies. Lengths are fractions of the image side; the outer
    patches may reach past the image (zeros there), as 8x8 digits leave no room for a 3x3 layout of
    patches with content."""

    patch: Annotated[float, Field(gt=0, lt=1)]  # side of each square patch
    gap: NonNegativeFloat  # between neighbouring patches
    jitter: NonNegativeFloat  # each patch moved by up to this in x and y
    hidden: PositiveInt  # the head's hidden layer over the two patches' features

    @model_validator(mode="after")
    def _neighbours_overlap_the_image(self) -> ContextConfig:
        if self.patch / 2 + self.gap >= 0.5:
            raise ValueError(f"patch / 2 + gap = {self.patch / 2 + self.gap:g} puts every neighbour outside the image "
                             "(it must be < 0.5): lower patch or gap")
        return self


class InpaintingConfig(MethodBase):
    """Pathak et al. (2016), context encoders: a square hole cut from each view at a random place, the
    encoder sees the rest, a decoder paints the hole (L2 on the hole's pixels; their adversarial term
    left out)."""

    hole: PositiveInt  # side of the removed square, pixels


class SimCLRConfig(MethodBase):
    """Chen et al. (2020): two augmented views, NT-Xent on L2-normalised projections."""

    temperature: PositiveFloat
    projection_dim: PositiveInt  # the MLP head's output (dropped after pretraining)


class MoCoConfig(MethodBase):
    """He et al. (2020): a query encoder trained against the keys of a momentum (moving-average) copy of
    itself, the negatives a queue of past keys."""

    temperature: PositiveFloat
    projection_dim: PositiveInt  # the MLP head's output (MoCo v2's head), kept by the key encoder too
    queue_size: PositiveInt  # negatives: the keys of the last queue_size / batch_size batches
    momentum: Annotated[float, Field(ge=0, lt=1)]  # of the key encoder (He et al.: 0.999)


class DeepClusterConfig(MethodBase):
    """Caron et al. (2018): k-means pseudo-labels of the encoder's own features, re-computed every
    ``recluster_every`` epochs (the classifier re-initialised), the loss balanced over the clusters."""

    clusters: Annotated[int, Field(ge=2)]  # k of k-means (over-clustering: more than the 10 digits)
    pca_dim: PositiveInt  # the features are PCA-whitened to this many dimensions, then L2-normalised
    recluster_every: PositiveInt  # epochs between clusterings (Caron et al.: every epoch of ImageNet's 1.3M images)


class SupervisedConfig(MethodBase):
    """The reference: the same encoder trained with every label (cross-entropy) on the same views."""


class SelfSupModels(Section):
    rotation: RotationConfig
    jigsaw: JigsawConfig
    context: ContextConfig
    inpainting: InpaintingConfig
    simclr: SimCLRConfig
    moco: MoCoConfig
    deepcluster: DeepClusterConfig
    supervised: SupervisedConfig


class ProbeConfig(Section):
    """Stage ``selfsup_probe``: a logistic regression (scikit-learn) on each encoder's frozen features."""

    c_grid: Annotated[list[PositiveFloat], Field(min_length=1)]  # inverse regularisation, chosen on val
    labels_per_class: PositiveInt  # the low-label probe (the course's 10 per class) ...
    draws: PositiveInt  # ... over this many seeded draws of them (mean +- std)
    # the random_init row: the mean over this many untrained encoders (seeds seed .. seed + n - 1, the
    # starting weights of init_seed 0 .. n - 1); one draw's probe moves by points with its seed
    random_inits: PositiveInt
    max_iter: PositiveInt


class TransferConfig(Section):
    """Stage ``selfsup_transfer``: each encoder's conv stages, with an FCN-style decoder, fine-tuned on
    few labelled scenes (semantic segmentation), against the same network from scratch."""

    dataset: Literal["scenes"]
    label_fraction: Annotated[float, Field(gt=0, le=1)]  # of the training scenes whose masks are used
    downscale: PositiveInt  # the scenes shrunk by this factor (average pooling) to the digits' scale
    steps: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat  # AdamW, cosine decay over the steps
    weight_decay: NonNegativeFloat
    draws: PositiveInt  # seeded labelled subsets (and decoder initialisations): mean +- std


class SelfSupConfig(Section):
    dataset: Literal["digits"]
    encoder: EncoderConfig
    augment: AugmentConfig
    trainer: TrainerConfig
    models: SelfSupModels
    probe: ProbeConfig
    transfer: TransferConfig
