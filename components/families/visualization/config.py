"""``visualization`` in params.yaml: the scene classifier it trains, the digit classifier it explains
(the adversarial family's undefended CNN), and how each attribution and unit-level method runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section, TrainerConfig

Fraction = Annotated[float, Field(gt=0, lt=1)]


class SceneCNNConfig(Section):
    """Which digits a scene holds (multi-label, image-level labels only: no boxes, no masks). One stage
    per entry of ``channels``: ``convs_per_stage`` 3x3 conv-BN-ReLU, then a 2x2 max-pool (not after the
    last stage); global average pooling and a linear layer (so Grad-CAM's last conv map is the CAM)."""

    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)]
    channels: Annotated[list[PositiveInt], Field(min_length=2)]
    convs_per_stage: PositiveInt


class VisualizationModels(Section):
    scene_cnn: SceneCNNConfig


class MethodOptions(Section):
    """The input-size dependent options of the attribution methods on one dataset."""

    occlusion_patch: PositiveInt  # side of the grey (zero) square slid over the image, pixels
    occlusion_stride: PositiveInt
    rise_masks: PositiveInt  # random masks (Petsiuk et al. 2018: 4,000-8,000 on 224-px images)
    rise_cell_size: PositiveInt  # pixels per cell of the low-resolution random grid
    rise_p: Fraction  # probability a cell is kept


class AttributionConfig(Section):
    """Stage ``visualization_attribution``: every method on the digit classifier (deletion / insertion
    AUC) and on the scene classifier (pointing game)."""

    num_images: PositiveInt  # test images of each dataset (a seeded subset)
    causal_steps: PositiveInt  # deletion/insertion curves: pixels switched in this many equal steps
    insertion_sigma: PositiveFloat  # insertion starts from the image blurred by this Gaussian sigma (pixels)
    pointing_tolerance: NonNegativeInt  # a hit may miss the target's mask by this many pixels
    random_maps: PositiveInt  # the random-saliency baseline is the mean over this many random maps
    digits: MethodOptions
    scenes: MethodOptions


class ClassModelConfig(Section):
    """Class-model visualisation (Simonyan et al. 2014): gradient ascent on the input to maximise a
    class score, with the course's regularisers (Yosinski et al. 2015)."""

    steps: PositiveInt
    lr: PositiveFloat
    l2: NonNegativeFloat  # weight of the L2 penalty on the image
    blur_every: PositiveInt  # Gaussian blur of the image every N steps ...
    blur_sigma: NonNegativeFloat  # ... with this sigma (0: never)
    upsample: PositiveInt  # optimise the digit classifier's input at this many times its size, pooled back


class UnitsConfig(Section):
    """Stage ``visualization_units``: network dissection of the scene classifier (trained and random
    weights), max-activating patches, nearest neighbours, t-SNE and class models of the digit classifier."""

    num_images: PositiveInt  # test scenes dissected (a seeded subset)
    dissection_quantile: Fraction  # a unit's mask: its upsampled activation above its top-quantile level
    min_iou: Fraction  # a unit detects a concept when their IoU exceeds this (Bau et al.: 0.04)
    top_patches: PositiveInt  # max-activating patches shown per unit
    neighbours: PositiveInt  # nearest neighbours per query (feature and pixel space)
    tsne_perplexity: PositiveFloat
    class_model: ClassModelConfig


class VisualizationConfig(Section):
    dataset: Literal["scenes"]  # the scene classifier's data: its masks are where each digit is
    trainer: TrainerConfig
    models: VisualizationModels
    attribution: AttributionConfig
    units: UnitsConfig
