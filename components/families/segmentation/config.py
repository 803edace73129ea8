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


# ours: the course's small network (base_channels and the model's own keys size it).
# resnet50: torchvision's paper-size network on a dilated ResNet-50 (output stride 8), built with
# weights=None: FCN-ResNet50 for fcn, DeepLabV3-ResNet50 for dilated; base_channels and the
# model's own size keys do not apply.
Backbone = Literal["ours", "resnet50"]


class FCNConfig(SegModelBase):
    backbone: Backbone
    backbone_weights: str | None  # local torchvision ResNet-50 state dict (.pth) for resnet50; null: random init


class UNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class SegNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class DilatedConfig(SegModelBase):
    downsample: Literal[2, 4]  # front-end stride before the context module
    context_channels: PositiveInt
    backbone: Backbone
    backbone_weights: str | None  # local torchvision ResNet-50 state dict (.pth) for resnet50; null: random init


class SegmentationModels(Section):
    fcn: FCNConfig
    unet: UNetConfig
    segnet: SegNetConfig
    dilated: DilatedConfig


class SegmentationConfig(Section):
    dataset: Literal["scenes", "voc"]
    trainer: TrainerConfig
    models: SegmentationModels
