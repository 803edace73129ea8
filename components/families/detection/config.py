"""``detection`` in params.yaml: the dataset, the trainer and one section per detector."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
    TrainerConfig,
)

# --- detection ----------------------------------------------------------------------------------


class DetModelBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]  # cosine: linear warm-up, then cosine decay to 0
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)]  # of all steps (cosine schedule only)
    grad_clip: PositiveFloat | None  # max global gradient norm; None = off
    augment: Literal["none", "affine"]  # affine: random shifts/scales moving boxes and masks along
    batch_size: PositiveInt | None  # per worker; None = the trainer's (set-based losses want larger batches)


class ConvBackboneConfig(DetModelBase):
    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # conv backbone: stage widths; stage i: stride 2**(i+1)
    levels: Annotated[list[NonNegativeInt], Field(min_length=1)]  # conv backbone: stages the heads see (increasing)

    @model_validator(mode="after")
    def _levels(self) -> ConvBackboneConfig:
        if sorted(set(self.levels)) != self.levels or self.levels[-1] >= len(self.channels):
            raise ValueError(
                f"levels {self.levels} must be increasing stage indices below len(channels) = {len(self.channels)}"
            )
        per_level = getattr(self, "anchor_sizes", None)
        if per_level is not None and len(per_level) != len(self.levels):
            raise ValueError(f"anchor_sizes needs one list per level ({len(self.levels)}), got {len(per_level)}")
        scales = getattr(self, "scales", None)
        if scales is not None and len(scales) != len(self.levels) + 1:
            raise ValueError(f"scales needs len(levels) + 1 = {len(self.levels) + 1} values, got {len(scales)}")
        return self


class TorchvisionDetectorConfig(ConvBackboneConfig):
    """A torchvision detector on the conv backbone or in its paper configuration (resnet_fpn.py).

    With ``resnet50_fpn`` the architecture and sampling budgets are torchvision's (the paper's):
    the fields marked "conv backbone" are ignored; the others apply to both.
    """

    backbone: Literal["conv", "resnet50_fpn"]  # resnet50_fpn: torchvision's <model>_resnet50_fpn
    backbone_weights: str | None  # resnet50_fpn: local torchvision ResNet-50 state dict (.pth); None = random init

    @model_validator(mode="after")
    def _weights(self) -> TorchvisionDetectorConfig:
        if self.backbone_weights is not None and self.backbone != "resnet50_fpn":
            raise ValueError("backbone_weights needs backbone: resnet50_fpn (the conv backbone has no weights to load)")
        return self


AnchorSizes = Annotated[list[Annotated[list[PositiveInt], Field(min_length=1)]], Field(min_length=1)]
AspectRatios = Annotated[list[PositiveFloat], Field(min_length=1)]


class FasterRCNNConfig(TorchvisionDetectorConfig):
    fpn_channels: PositiveInt  # conv backbone
    anchor_sizes: AnchorSizes  # conv backbone: anchor side lengths in pixels, one list per level
    aspect_ratios: AspectRatios  # conv backbone: height / width of the anchors at every size
    representation_size: PositiveInt  # conv backbone: width of the two-layer box head
    rpn_proposals: PositiveInt  # conv backbone: proposals kept per image after NMS in training (half at test)
    roi_samples: PositiveInt  # conv backbone: anchors per image for the RPN loss and RoIs per image for the box head
    detections_per_img: PositiveInt  # evaluation: the most detections kept per image (COCO counts 100)


class MaskRCNNConfig(FasterRCNNConfig):
    mask_channels: PositiveInt  # conv backbone: width of the mask head's convolutions


class RetinaNetConfig(TorchvisionDetectorConfig):
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)]  # conv backbone; the head's GroupNorm has 32 groups
    anchor_sizes: AnchorSizes  # conv backbone
    aspect_ratios: AspectRatios  # conv backbone


class FCOSConfig(TorchvisionDetectorConfig):
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)]  # conv backbone; the head's GroupNorm has 32 groups
    center_sampling_radius: PositiveFloat  # locations within this many strides of a box centre are positives


class SSDConfig(ConvBackboneConfig):
    scales: Annotated[list[Fraction], Field(min_length=2)]  # default-box scale per level (+1), fractions of the image
    aspect_ratios: Annotated[list[Annotated[int, Field(ge=2)]], Field(min_length=1)]  # r adds boxes of r:1 and 1:r


WidthHeight = Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)]


class YOLOConfig(DetModelBase):
    grid_size: PositiveInt  # S: the S x S grid; image_size / S must be a power of 2
    boxes_per_cell: PositiveInt  # B, v1 only (v2 has one slot per anchor)
    base_channels: PositiveInt  # first stage width, doubled at each stride-2 stage
    variant: Literal["v1", "v2"]  # v1: B boxes + one class distribution per cell; v2: anchors
    anchors: list[WidthHeight] | None  # v2 anchors in pixels; None = k-means of the scenes' boxes
    lambda_coord: NonNegativeFloat  # weight of the box-coordinate loss (paper: 5)
    lambda_noobj: NonNegativeFloat  # weight of the confidence loss where there is no object (paper: 0.5)
    score_thresh: Annotated[float, Field(ge=0, lt=1)]  # evaluation: detections below are dropped
    nms_thresh: Fraction  # evaluation: class-wise NMS IoU
    detections_per_img: PositiveInt


class DETRConfig(DetModelBase):
    base_channels: PositiveInt  # backbone width at stride 2 (x2 per stage)
    num_stages: PositiveInt  # stride-2 backbone stages: the feature grid is image_size / 2**num_stages
    d_model: PositiveInt  # transformer width (divisible by 8 and by nhead)
    nhead: PositiveInt
    num_encoder_layers: NonNegativeInt
    num_decoder_layers: PositiveInt
    dim_feedforward: PositiveInt
    num_queries: PositiveInt  # learned object queries: the most objects one image can yield
    dropout: Annotated[float, Field(ge=0, lt=1)]
    two_stage: bool  # decoder queries start at the top-scoring encoder tokens' boxes
    anchor_size: Fraction  # two_stage: initial w/h of each encoder token's box, fraction of the image
    cost_class: NonNegativeFloat  # Hungarian matching weights
    cost_bbox: NonNegativeFloat
    cost_giou: NonNegativeFloat
    loss_ce: NonNegativeFloat  # set-loss weights
    loss_bbox: NonNegativeFloat
    loss_giou: NonNegativeFloat
    eos_coef: Annotated[float, Field(gt=0, le=1)]  # cross-entropy weight of "no object"
    aux_loss: bool  # the set loss at every decoder layer
    detections_per_img: PositiveInt | None  # None = every query

    @model_validator(mode="after")
    def _heads(self) -> DETRConfig:
        if self.d_model % self.nhead or self.d_model % 8:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead}) and by 8")
        return self


class RegionCNNConfig(DetModelBase):
    """A CNN on warped region crops (regions.py): the sliding window's and R-CNN's."""

    crop_size: PositiveInt  # every region is warped to crop_size x crop_size (divisible by 2**len(channels))
    context: NonNegativeFloat  # each region grown by this fraction of its size per side before warping (R-CNN: ~0.08)
    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # stride-2 conv stage widths of the crop CNN
    blocks: PositiveInt  # 3x3 conv-BN-ReLU per stage (the first strided)
    representation_size: PositiveInt  # width of its fully connected layer ("fc7")
    roi_samples: PositiveInt  # training regions per image
    positive_fraction: Fraction  # of them foreground (at most)
    fg_iou: Fraction  # training: a region with IoU >= fg_iou to a box takes its class
    bg_iou: Fraction  # training: below bg_iou it is background; between the two, never sampled
    score_thresh: Annotated[float, Field(ge=0, lt=1)]  # evaluation: detections below are dropped
    nms_thresh: Fraction  # evaluation: per-class NMS IoU
    detections_per_img: PositiveInt

    @model_validator(mode="after")
    def _crops(self) -> RegionCNNConfig:
        if self.crop_size % 2 ** len(self.channels):
            raise ValueError(f"crop_size ({self.crop_size}) must be divisible by 2**len(channels) "
                             f"= {2 ** len(self.channels)}")
        if self.bg_iou > self.fg_iou:
            raise ValueError(f"bg_iou ({self.bg_iou}) must be <= fg_iou ({self.fg_iou})")
        return self


class SlidingWindowConfig(RegionCNNConfig):
    window_sizes: Annotated[list[PositiveInt], Field(min_length=1)]  # sides in pixels (of a square of equal area)
    aspect_ratios: AspectRatios  # height / width of the windows at every size
    stride: PositiveInt  # pixels between neighbouring windows


class RCNNConfig(RegionCNNConfig):
    augment: Literal["none"]  # the cached proposals would not move with the pixels
    svm_images: PositiveInt  # training images whose features fit the SVMs and box regressors (before each evaluation)
    svm_c: PositiveFloat  # LinearSVC's C (hinge loss)
    svm_neg_iou: Fraction  # SVM negatives of a class: proposals below this IoU with all of its boxes (paper: 0.3)
    initial_negatives: PositiveInt  # negatives the first SVM fit sees; hard ones are added after
    mining_rounds: NonNegativeInt  # hard-negative mining: refits, each adding the negatives inside the margin
    regression_iou: Fraction  # box regression learns from proposals with IoU >= this to a box (paper: 0.6)
    ridge_alpha: PositiveFloat  # the regressors' L2 penalty (paper: 1000)


class FastRCNNConfig(DetModelBase):
    augment: Literal["none"]  # the cached proposals would not move with the pixels
    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # conv stages; the last map (stride 2**len) is shared
    roi_size: PositiveInt  # RoI max pooling to roi_size x roi_size bins
    representation_size: PositiveInt  # width of the two-layer head
    roi_samples: PositiveInt  # RoIs per image in training
    positive_fraction: Fraction  # of them foreground (IoU >= 0.5), at most
    score_thresh: Annotated[float, Field(ge=0, lt=1)]
    nms_thresh: Fraction
    detections_per_img: PositiveInt


class DetectionModels(Section):
    faster_rcnn: FasterRCNNConfig
    retinanet: RetinaNetConfig
    ssd: SSDConfig
    fcos: FCOSConfig
    yolo: YOLOConfig
    detr: DETRConfig
    mask_rcnn: MaskRCNNConfig
    sliding_window: SlidingWindowConfig
    rcnn: RCNNConfig
    fast_rcnn: FastRCNNConfig


class DetectionConfig(Section):
    dataset: Literal["scenes", "coco", "voc_detection"]
    trainer: TrainerConfig
    models: DetectionModels
