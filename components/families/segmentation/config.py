"""``segmentation`` in params.yaml: the dataset, the trainer and one section per model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

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


class ResNet50Option(Section):
    """``backbone`` and ``backbone_weights`` of the models with a torchvision ResNet-50 variant."""

    backbone: Backbone
    backbone_weights: str | None  # local torchvision ResNet-50 state dict (.pth) for resnet50; null: random init

    @model_validator(mode="after")
    def _weights(self) -> ResNet50Option:
        if self.backbone_weights is not None and self.backbone != "resnet50":
            raise ValueError("backbone_weights needs backbone: resnet50 (the course's network has no weights to load)")
        return self


class FCNConfig(SegModelBase, ResNet50Option):
    pass


class UNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class SegNetConfig(SegModelBase):
    depth: Annotated[int, Field(ge=1, le=5)]


class DilatedConfig(SegModelBase, ResNet50Option):
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
