"""``segmentation`` in params.yaml: the dataset, the trainer and one section per model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Section, TrainerConfig

# --- segmentation -------------------------------------------------------------------------------


class SegModelBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]  # cosine: linear warm-up, then cosine decay to 0
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)]  # of all steps (cosine schedule only)
    base_channels: PositiveInt


class FCNConfig(SegModelBase):
    pass


class UNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class SegNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class DilatedConfig(SegModelBase):
    downsample: Literal[2, 4]  # front-end stride before the context module
    context_channels: PositiveInt


class SegmentationModels(Section):
    fcn: FCNConfig
    unet: UNetConfig
    segnet: SegNetConfig
    dilated: DilatedConfig


class SegmentationConfig(Section):
    dataset: Literal["scenes", "voc"]
    trainer: TrainerConfig
    models: SegmentationModels
