"""Typed schema of ``params.yaml``: the single source of every knob.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type or an
out-of-range value is an error that names the key path and what is allowed::

    error: params.yaml: segmentation.models.unet.lr: must be > 0 (got -0.1)
    error: params.yaml: segmentation.models.unet.lrr: unknown key; allowed: base_channels, batch_size, ...

Defaults live in ``params.yaml``, not here: every field is required, so the file stays the one
place a reader looks (a shrunk copy for tests is still a complete file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.errors import UserError

PARAMS_FILE = "params.yaml"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- runtime ----------------------------------------------------------------------------------


class RuntimeConfig(Section):
    ray_address: str | None  # None: RAY_ADDRESS if set, else a local Ray started by the stage
    storage_path: str  # Ray Train checkpoints; relative paths are resolved against the repo root
    mlflow_tracking_uri: str | None  # None: MLFLOW_TRACKING_URI if set, else sqlite:///<repo>/mlflow.db


# --- data -------------------------------------------------------------------------------------


class DigitsConfig(Section):
    image_size: Annotated[int, Field(ge=8, le=64)]  # 8 = native; larger = bilinear upsampling
    val_fraction: Fraction
    test_fraction: Fraction


class ScenesConfig(Section):
    num_train: PositiveInt
    num_val: PositiveInt
    num_test: PositiveInt
    canvas_size: Annotated[int, Field(ge=32, le=512, multiple_of=16)]
    min_digits: PositiveInt
    max_digits: PositiveInt
    min_digit_size: Annotated[int, Field(ge=8)]
    max_digit_size: Annotated[int, Field(ge=8)]
    max_box_iou: Annotated[float, Field(ge=0, le=1)]
    mask_threshold: Fraction
    captions_per_scene: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _ranges(self) -> ScenesConfig:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) must be <= max_digits ({self.max_digits})")
        if self.min_digit_size > self.max_digit_size:
            raise ValueError(
                f"min_digit_size ({self.min_digit_size}) must be <= max_digit_size ({self.max_digit_size})"
            )
        if self.max_digit_size > self.canvas_size:
            raise ValueError(f"max_digit_size ({self.max_digit_size}) must fit the canvas ({self.canvas_size})")
        return self


class VocConfig(Section):
    root: str | None  # path to VOCdevkit (or its parent); None = not used
    year: str
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction


class MnistConfig(Section):
    root: str | None  # folder with the four idx files (optionally .gz); None = not used
    val_fraction: Fraction


class CocoConfig(Section):
    root: str | None  # folder holding annotations/ and the image folders; None = not used
    train_set: str  # annotations/instances_<train_set>.json + <train_set>/: split into train/val
    test_set: str  # annotations/instances_<test_set>.json + <test_set>/: the test split
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction
    max_train_images: PositiveInt | None  # seeded subset of train_set before the split; None = all
    max_test_images: PositiveInt | None
    drop_empty_boxes: bool  # drop zero-width/height boxes (train2017 has two) instead of rejecting them


class VocDetectionConfig(Section):
    root: str | None  # path to VOCdevkit (or its parent); None = not used
    year: str
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction


class GrammarEnDeConfig(Section):
    """The embedded English->German corpus, generated from a small grammar."""

    num_train: PositiveInt
    num_val: PositiveInt
    num_test: PositiveInt  # in-distribution test pairs, lengths in [min_words, max_words]
    min_words: PositiveInt  # English source length in tokens (punctuation counts)
    max_words: PositiveInt  # the longest training sentence
    num_longer: NonNegativeInt  # extra test pairs longer than any training sentence
    longer_max_words: PositiveInt
    lexicon_fraction: Annotated[float, Field(gt=0, le=1)]  # the first part of each word table (1 = all)

    @model_validator(mode="after")
    def _lengths(self) -> GrammarEnDeConfig:
        if not self.min_words < self.max_words < self.longer_max_words:
            raise ValueError(
                f"need min_words < max_words < longer_max_words (got {self.min_words}, {self.max_words}, "
                f"{self.longer_max_words})"
            )
        return self


class ParallelConfig(Section):
    """A real parallel corpus from local files: <root>/{train,val,test}.<lang>, one sentence per line."""

    root: str | None
    source_lang: str
    target_lang: str
    val_fraction: Fraction  # of train, when there are no val.<lang> files


class DataConfig(Section):
    root: str  # where prepared datasets are written, relative to the repo root
    digits: DigitsConfig
    scenes: ScenesConfig
    voc: VocConfig
    mnist: MnistConfig
    coco: CocoConfig
    voc_detection: VocDetectionConfig
    grammar_en_de: GrammarEnDeConfig
    parallel: ParallelConfig


# --- the Ray Train harness ----------------------------------------------------------------------


class TrainerConfig(Section):
    """Scaling and loop knobs shared by every model of a family."""

    num_workers: NonNegativeInt  # 0: Ray Train's local mode, the loop in the stage's own process (no Ray
    # start-up; see components/train/harness.py); >= 1: that many Ray Train workers (DDP from 2; a cluster
    # through RAY_ADDRESS). placement_strategy, resources_per_worker, max_failures and controller_poll_s
    # apply to workers only
    use_gpu: bool
    cpus_per_worker: PositiveFloat
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    eval_every: PositiveInt  # run the task's evaluation every N epochs (and after the last), like
    # Lightning's check_val_every_n_epoch: val/* metrics exist only on those epochs
    figure_every: PositiveInt  # log the prediction figure every N epochs (and after the last)
    max_failures: NonNegativeInt  # Ray Train restarts from the last checkpoint up to this often
    channels_last: bool  # NHWC memory format for conv nets (faster on CPU and on tensor cores)
    precision: Literal["fp32", "bf16", "fp16"]  # training forward passes under autocast (see
    # components/train/precision.py); fp16 adds loss scaling; evaluation always runs in fp32
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]  # of the workers on
    # the cluster's nodes (Ray placement groups): PACK fills a node first, SPREAD puts them on different nodes
    gpus_per_worker: PositiveFloat  # with use_gpu: 1 = a GPU each; 0.5 = two workers share one
    resources_per_worker: dict[str, PositiveFloat]  # extra Ray resources per worker, e.g. a node label
    # {"accelerator_type:A10G": 0.001} or a custom resource; a name the cluster lacks is an error
    loader_workers: NonNegativeInt  # DataLoader worker processes per training worker (0: in-process)
    controller_poll_s: PositiveFloat  # how often Ray Train's controller polls the workers (and so takes
    # each epoch's report); short epochs want it short, long Python-bound epochs long (each poll costs the GIL)


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
    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # stage widths; stage i has stride 2**(i+1)
    levels: Annotated[list[NonNegativeInt], Field(min_length=1)]  # stages the heads see (increasing)

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


AnchorSizes = Annotated[list[Annotated[list[PositiveInt], Field(min_length=1)]], Field(min_length=1)]
AspectRatios = Annotated[list[PositiveFloat], Field(min_length=1)]


class FasterRCNNConfig(ConvBackboneConfig):
    fpn_channels: PositiveInt
    anchor_sizes: AnchorSizes  # anchor side lengths in pixels, one list per level
    aspect_ratios: AspectRatios  # height / width of the anchors at every size
    representation_size: PositiveInt  # width of the two-layer box head
    rpn_proposals: PositiveInt  # proposals kept per image after NMS in training (half at test)
    roi_samples: PositiveInt  # anchors per image for the RPN loss and RoIs per image for the box head
    detections_per_img: PositiveInt  # evaluation: the most detections kept per image (COCO counts 100)


class MaskRCNNConfig(FasterRCNNConfig):
    mask_channels: PositiveInt  # width of the mask head's convolutions


class RetinaNetConfig(ConvBackboneConfig):
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)]  # the head's GroupNorm has 32 groups
    anchor_sizes: AnchorSizes
    aspect_ratios: AspectRatios


class FCOSConfig(ConvBackboneConfig):
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)]  # the head's GroupNorm has 32 groups
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


class DetectionModels(Section):
    faster_rcnn: FasterRCNNConfig
    retinanet: RetinaNetConfig
    ssd: SSDConfig
    fcos: FCOSConfig
    yolo: YOLOConfig
    detr: DETRConfig
    mask_rcnn: MaskRCNNConfig


class DetectionConfig(Section):
    dataset: Literal["scenes", "coco", "voc_detection"]
    trainer: TrainerConfig
    models: DetectionModels


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
    stages: PositiveInt  # resolution doublings in G (halvings in D); image size divisible by 2**stages
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
    pass


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


class VAEConfig(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # Adam
    kl_weight: PositiveFloat  # beta: 1 is the ELBO
    likelihood: Literal["bernoulli", "gaussian"]  # p(x|z) per pixel, mean sigmoid(decoder logits)
    sigma: PositiveFloat  # the Gaussian likelihood's fixed standard deviation (unused by bernoulli)


class GenerativeModels(Section):
    dcgan: DCGANConfig
    wgan: WGANConfig
    wgan_gp: WGANGPConfig
    lsgan: LSGANConfig
    sngan: SNGANConfig
    cgan: CGANConfig
    vae: VAEConfig
    cvae: VAEConfig


class GenerativeConfig(Section):
    dataset: Literal["digits", "mnist"]
    evaluator: EvaluatorConfig
    fid: FIDConfig
    backbone: GenerativeBackbone
    trainer: TrainerConfig
    models: GenerativeModels


# --- reinforcement learning ---------------------------------------------------------------------

Gamma = Annotated[float, Field(gt=0, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]


class GridWorldConfig(Section):
    step_reward: float  # r(s) of every non-terminal state
    intended_prob: Probability  # the chosen move happens; each perpendicular slip has (1 - p) / 2
    max_episode_steps: PositiveInt  # truncation for the sampling learners (planning ignores it)


class ValueIterationConfig(Section):
    gamma: Gamma
    tolerance: PositiveFloat  # stop when no utility changes by more than this in one sweep
    eval_episodes: PositiveInt  # Monte-Carlo episodes of the greedy policy for rl/greedy_return_mean


class QLearningConfig(Section):
    gamma: Gamma
    episodes: PositiveInt
    alpha: Annotated[float, Field(gt=0, le=1)]  # initial step size
    alpha_decay: Literal["visits", "constant"]  # visits: alpha / (1 + visits(s, a) * alpha) ** alpha_power
    alpha_power: Annotated[float, Field(gt=0.5, le=1)]  # in (1/2, 1]: the Robbins-Monro conditions hold
    epsilon_start: Probability
    epsilon_end: Probability
    epsilon_decay_episodes: PositiveInt  # linear decay of epsilon over this many episodes
    eval_episodes: PositiveInt


def _check_env(name: str) -> str:
    from components.rl.names import ENV_NAMES  # not components.rl.envs: that imports gymnasium

    if name not in ENV_NAMES:
        raise ValueError(f"unknown env {name!r}; registered: {', '.join(ENV_NAMES)}")
    return name


EnvName = Annotated[str, AfterValidator(_check_env)]


class RLlibAlgoBase(Section):
    env: EnvName
    max_env_steps: PositiveInt  # stop after sampling this many env steps
    return_threshold: float  # rl/env_steps_to_threshold: first step count with episode_return_mean >= this
    stop_at_threshold: bool  # stop as soon as the threshold is reached
    num_env_runners: NonNegativeInt  # 0: sample in the driver process (fastest on 2 cores)
    num_envs_per_env_runner: PositiveInt  # vectorised copies of the env per runner
    gamma: Gamma
    lr: PositiveFloat
    hiddens: list[PositiveInt]  # MLP widths (image observations get RLlib's default conv stack first)
    activation: Literal["tanh", "relu"]
    eval_episodes: PositiveInt  # greedy (explore=False) episodes after training: rl/greedy_return_mean
    checkpoint_every: PositiveInt  # iterations between checkpoints (and after the last)


class DQNConfig(RLlibAlgoBase):
    train_batch_size: PositiveInt  # transitions per SGD step
    n_step: Annotated[list[PositiveInt], Field(min_length=1, max_length=2)]  # [n] or [min, max] (sampled)
    double_q: bool
    dueling: bool
    replay_buffer: Literal["transitions", "episodes"]  # ours (flat arrays) | RLlib's episode buffer
    replay_capacity: PositiveInt
    prioritized_replay: bool
    replay_alpha: NonNegativeFloat  # prioritisation exponent (prioritized_replay only)
    replay_beta: NonNegativeFloat  # importance-sampling exponent (prioritized_replay only)
    epsilon_start: Probability
    epsilon_end: Probability
    epsilon_timesteps: PositiveInt  # linear decay over this many env steps
    target_network_update_freq: PositiveInt  # env steps between target-network syncs
    learning_starts: NonNegativeInt  # env steps sampled before the first update
    training_intensity: PositiveFloat | None  # replayed / sampled transitions; None: RLlib's default
    rollout_fragment_length: PositiveInt | None  # env steps per env between updates; None: RLlib's (max n_step)


class ReinforceConfig(RLlibAlgoBase):
    episodes_per_batch: PositiveInt  # whole episodes sampled per update
    baseline: Literal["none", "normalize", "value"]  # none: G_t; normalize: (G_t - mean) / std; value: G_t - V(s)
    vf_loss_coeff: NonNegativeFloat  # weight of the value-baseline regression (baseline: value)
    grad_clip: PositiveFloat | None


class RLAlgos(Section):
    value_iteration: ValueIterationConfig
    q_learning: QLearningConfig
    dqn: DQNConfig
    reinforce: ReinforceConfig


class RLConfig(Section):
    gridworld: GridWorldConfig
    algos: RLAlgos

    @model_validator(mode="after")
    def _epsilons_decrease(self) -> RLConfig:
        for name in ("q_learning", "dqn"):
            algo = getattr(self.algos, name)
            if algo.epsilon_end > algo.epsilon_start:
                raise ValueError(f"algos.{name}.epsilon_end must be <= epsilon_start")
        return self


# --- sequence models: translation and captioning ------------------------------------------------


class SeqModelBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]  # cosine: linear warm-up, then cosine decay to 0
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)]
    grad_clip: PositiveFloat | None  # max global gradient norm; None = off
    label_smoothing: Annotated[float, Field(ge=0, lt=1)]
    batch_size: PositiveInt | None  # per worker; None = the trainer's
    dropout: Annotated[float, Field(ge=0, lt=1)]


class RNNSeq2SeqConfig(SeqModelBase):
    """Encoder-decoder with recurrent cells (the model's name picks the cell and whether it attends)."""

    embed_dim: PositiveInt
    hidden_dim: PositiveInt
    num_layers: PositiveInt
    bidirectional: bool  # encoder
    attn_dim: PositiveInt | None  # additive attention's hidden size (attention models only)


class TransformerConfig(SeqModelBase):
    d_model: PositiveInt
    num_heads: PositiveInt
    num_encoder_layers: PositiveInt
    num_decoder_layers: PositiveInt
    ffn_dim: PositiveInt
    norm_first: bool  # pre-norm residual blocks (stabler without a long warm-up) vs the paper's post-norm

    @model_validator(mode="after")
    def _heads(self) -> TransformerConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        return self


class DecodingConfig(Section):
    """Evaluation-time decoding: greedy on val at every evaluation, beam search on the test split."""

    beam_width: PositiveInt  # 1 = greedy
    length_penalty: NonNegativeFloat  # GNMT alpha: log-prob / ((5 + length) / 6) ** alpha


class TranslationDecodingConfig(DecodingConfig):
    max_length_ratio: PositiveFloat  # at most ratio * source length + 10 target tokens


class CaptionDecodingConfig(DecodingConfig):
    max_length: PositiveInt  # at most this many caption tokens


class TranslationModels(Section):
    rnn: RNNSeq2SeqConfig
    lstm: RNNSeq2SeqConfig
    gru: RNNSeq2SeqConfig
    attention_gru: RNNSeq2SeqConfig
    transformer: TransformerConfig


class TranslationConfig(Section):
    dataset: Literal["grammar_en_de", "parallel"]
    trainer: TrainerConfig
    decoding: TranslationDecodingConfig
    min_freq: PositiveInt  # words seen fewer times in train become <unk>
    length_buckets: Annotated[list[PositiveInt], Field(min_length=1)]  # ascending upper edges of the
    # source-length buckets of the test report; the last bucket is everything longer
    models: TranslationModels

    @model_validator(mode="after")
    def _buckets(self) -> TranslationConfig:
        if self.length_buckets != sorted(set(self.length_buckets)):
            raise ValueError(f"length_buckets must be strictly ascending (got {self.length_buckets})")
        return self


class CaptionerConfig(SeqModelBase):
    """CNN encoder + LSTM decoder (``show_attend_tell`` adds soft attention over the feature grid)."""

    channels: Annotated[list[PositiveInt], Field(min_length=1)]  # conv stages, each halves the grid
    embed_dim: PositiveInt
    hidden_dim: PositiveInt
    attn_dim: PositiveInt | None  # soft attention's hidden size (show_attend_tell only)


class CaptioningModels(Section):
    show_tell: CaptionerConfig
    show_attend_tell: CaptionerConfig


class CaptioningConfig(Section):
    dataset: Literal["scenes"]
    trainer: TrainerConfig
    decoding: CaptionDecodingConfig
    models: CaptioningModels


# --- sweeps (Ray Tune) --------------------------------------------------------------------------

_LOG_DISTRIBUTIONS = ("loguniform", "qloguniform")
_QUANTIZED = ("quniform", "qloguniform")


class SearchDistribution(Section):
    """One searched key, mapped to a ``ray.tune`` sampling function (components/tune/space.py):
    ``loguniform``/``uniform`` take ``low`` < ``high``; ``quniform``/``qloguniform`` also ``q`` (the
    rounding step); ``randint`` integer ``low`` <= x < ``high`` (as ``ray.tune.randint``); ``choice``
    takes ``values``. Keys a distribution does not use are left out of params.yaml (the one place
    this schema has optional keys)."""

    distribution: Literal["loguniform", "uniform", "quniform", "qloguniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    q: PositiveFloat | None = None
    values: Annotated[list[Any], Field(min_length=1)] | None = None

    @field_validator("low")
    @classmethod
    def _positive_for_log(cls, low: float | None, info: ValidationInfo) -> float | None:
        distribution = info.data.get("distribution")
        if low is not None and distribution in _LOG_DISTRIBUTIONS and low <= 0:
            raise ValueError(f"must be > 0 for {distribution} (it samples the logarithm)")
        return low

    @field_validator("high")
    @classmethod
    def _above_low(cls, high: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("low")
        if high is not None and low is not None and high <= low:
            raise ValueError(f"must be > low ({low:g})")
        return high

    @model_validator(mode="after")
    def _keys_of_distribution(self) -> SearchDistribution:
        name = self.distribution
        if name == "choice":
            if self.values is None or any(v is not None for v in (self.low, self.high, self.q)):
                raise ValueError("choice takes values: [...] (and no low, high or q)")
            return self
        if self.low is None or self.high is None or self.values is not None:
            raise ValueError(f"{name} takes low and high (and no values)")
        if (self.q is None) == (name in _QUANTIZED):
            raise ValueError(f"{name} {'needs' if name in _QUANTIZED else 'takes no'} q")
        if name == "randint" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"randint bounds must be integers (got {self.low:g}, {self.high:g})")
        return self


class ASHAConfig(Section):
    grace_period: PositiveInt  # epochs every trial trains before it can be stopped
    reduction_factor: Annotated[float, Field(gt=1)]  # at each rung only the top 1/reduction_factor go on


class PBTConfig(Section):
    perturbation_interval: PositiveInt  # epochs between exploit (copy a better trial) / explore steps
    quantile_fraction: Annotated[float, Field(gt=0, le=0.5)]  # bottom fraction copies the top fraction
    resample_probability: Annotated[float, Field(ge=0, le=1)]  # explore: resample instead of perturbing


class SweepConfig(Section):
    """A Ray Tune sweep over one model of a family (stage ``tune_<family>``)."""

    enabled: bool  # false: the stage writes empty overrides and runs no trial
    model: str  # the model of the family whose params are searched
    metric: str  # a fixed metric key (val/miou, val/map, ...); its direction gives Tune's mode
    num_samples: PositiveInt  # trials, the first of them the model's current (default) values
    trial_epochs: PositiveInt | None  # epochs per trial (its lr schedule spans them); null: the model's epochs
    scheduler: Literal["asha", "pbt", "fifo"]
    asha: ASHAConfig
    pbt: PBTConfig
    max_concurrent_trials: PositiveInt | None  # null: as many as the cluster's CPUs/GPUs fit at once
    trial_trainer: dict[str, Any]  # overrides of <family>.trainer for the trials (e.g. cpus_per_worker)
    search_space: Annotated[dict[str, SearchDistribution], Field(min_length=1)]  # model keys or trainer.<key>

    @field_validator("metric")
    @classmethod
    def _has_direction(cls, metric: str) -> str:
        from components.metrics.direction import known_metrics, metric_mode

        if metric_mode(metric) is None:
            raise ValueError(
                f"no known direction for {metric!r}; use <split>/<name> with a name in: {', '.join(known_metrics())}"
            )
        return metric


# rl.algos.<algo> keys a sweep may not search: the environment and the stop/evaluation rules
# (each trial runs tune.rl.trial_env_steps on the algorithm's env, and is scored by its return)
RL_NOT_SEARCHED = ("env", "max_env_steps", "return_threshold", "stop_at_threshold", "eval_episodes",
                   "checkpoint_every")


class RLSweepConfig(Section):
    """A Ray Tune sweep over one RLlib algorithm's params (stage ``tune_rl``). Each trial is the
    RLlib algorithm itself as a Tune trainable; trials are compared at equal env steps, so ASHA's
    ``grace_period`` and PBT's ``perturbation_interval`` count env steps here, not epochs."""

    enabled: bool
    algo: Literal["dqn", "reinforce"]  # the rl.algos section whose params are searched
    metric: Literal["rl/episode_return_mean"]  # the 100-episode mean (the rl stage's), maximised
    num_samples: PositiveInt  # trials, the first of them the algorithm's current (default) values
    trial_env_steps: PositiveInt  # env steps per trial (ASHA's max_t)
    scheduler: Literal["asha", "pbt", "fifo"]
    asha: ASHAConfig
    pbt: PBTConfig
    max_concurrent_trials: PositiveInt | None  # null: as many as the cluster's CPUs/GPUs fit at once
    search_space: Annotated[dict[str, SearchDistribution], Field(min_length=1)]  # keys of rl.algos.<algo>

    @property
    def model(self) -> str:
        """What the sweep tunes, named as in a family's sweep (the tuned file's key)."""
        return self.algo


class TuneSection(Section):
    segmentation: SweepConfig
    detection: SweepConfig
    generative: SweepConfig
    translation: SweepConfig
    captioning: SweepConfig
    rl: RLSweepConfig


# --- the whole file -----------------------------------------------------------------------------


class Params(Section):
    seed: NonNegativeInt
    runtime: RuntimeConfig
    data: DataConfig
    segmentation: SegmentationConfig
    detection: DetectionConfig
    generative: GenerativeConfig
    translation: TranslationConfig
    captioning: CaptioningConfig
    rl: RLConfig
    tune: TuneSection


def model_trainer(params: Params, family: str, model: str) -> TrainerConfig:
    """The family's trainer knobs for one model: a model section's own ``batch_size`` (when set)
    overrides the trainer's."""
    trainer = getattr(params, family).trainer
    batch_size = getattr(getattr(getattr(params, family).models, model), "batch_size", None)
    return trainer.model_copy(update={"batch_size": batch_size}) if batch_size else trainer


def _integer_field(section: type[BaseModel], name: str) -> bool:
    annotation = section.model_fields[name].annotation
    return annotation is int or (get_origin(annotation) in (Union, UnionType) and int in get_args(annotation))


def _search_target(params: Params, family: str, key: str) -> tuple[type[BaseModel], dict[str, Any], str, str]:
    """What a search key of ``tune.<family>`` overrides: (section class, its current values, field, label)."""
    sweep = getattr(params.tune, family)
    if family == "rl":
        cfg = getattr(params.rl.algos, sweep.algo)
        return type(cfg), cfg.model_dump(), key, f"rl.algos.{sweep.algo}"
    section = getattr(params, family)
    if key.startswith("trainer."):
        trainer = {**section.trainer.model_dump(), **sweep.trial_trainer}
        return TrainerConfig, trainer, key.removeprefix("trainer."), f"{family}.trainer"
    model_cfg = getattr(section.models, sweep.model)
    return type(model_cfg), model_cfg.model_dump(), key, f"{family}.models.{sweep.model}"


def _first_error(err: ValidationError) -> str:
    msg = err.errors()[0]["msg"].removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def _check_sweep(params: Params, family: str) -> None:
    """Cross-section checks of ``tune.<family>``: the model exists, every search key is a field of
    its params (or of the trainer) and every value the distribution can produce validates there.
    Raises ``ValueError("<full key>: <message>")``."""
    sweep = getattr(params.tune, family)
    prefix = f"tune.{family}"
    if family == "rl":
        _check_search_space(params, family, excluded=RL_NOT_SEARCHED,
                            why="each trial runs tune.rl.trial_env_steps on the algorithm's env")
        return
    models = getattr(params, family).models
    if sweep.model not in type(models).model_fields:
        raise ValueError(f"{prefix}.model: unknown {family} model {sweep.model!r}; known: "
                         f"{', '.join(type(models).model_fields)}")
    try:
        TrainerConfig.model_validate({**getattr(params, family).trainer.model_dump(), **sweep.trial_trainer})
    except ValidationError as err:
        first = err.errors()[0]
        field = _key_path(first["loc"])
        msg = (f"unknown key; allowed: {', '.join(TrainerConfig.model_fields)}" if first["type"] == "extra_forbidden"
               else f"{_first_error(err)} (got {first.get('input')!r})")
        raise ValueError(f"{prefix}.trial_trainer.{field}: {msg}") from None
    _check_search_space(params, family, excluded=("epochs",), why=f"each trial trains {prefix}.trial_epochs epochs")


def _check_search_space(params: Params, family: str, excluded: tuple[str, ...], why: str) -> None:
    """Every search key of ``tune.<family>`` is a field of what it overrides (but not one of
    ``excluded``), and every value its distribution can produce validates there."""
    sweep = getattr(params.tune, family)
    prefix = f"tune.{family}"
    for key, dist in sweep.search_space.items():
        where = f"{prefix}.search_space.{key}"
        section, current, field, label = _search_target(params, family, key)
        if field in excluded:
            raise ValueError(f"{where}: {field} is not searched; {why}")
        if field not in section.model_fields:
            allowed = [name for name in section.model_fields if name not in excluded]
            hint = "" if key.startswith("trainer.") or family == "rl" else " or trainer.<key>"
            raise ValueError(f"{where}: unknown key (not a field of {label}); allowed: {', '.join(allowed)}{hint}")
        if _integer_field(section, field) and dist.distribution in ("loguniform", "uniform"):
            raise ValueError(f"{where}.distribution: {label}.{field} is an integer; use randint, choice, "
                             f"quniform or qloguniform (got {dist.distribution!r})")
        if dist.distribution == "choice":
            candidates = [("values", v) for v in dist.values]
        else:
            top = dist.high - 1 if dist.distribution == "randint" else dist.high
            candidates = [("low", dist.low), ("high", top)]
        for name, value in candidates:
            if _integer_field(section, field) and isinstance(value, float) and value.is_integer():
                value = int(value)
            try:
                section.model_validate({**current, field: value})
            except ValidationError as err:
                raise ValueError(
                    f"{where}.{name}: {value!r} is not a valid {label}.{field}: {_first_error(err)}"
                ) from None


def check_sweeps(params: Params, source: str = PARAMS_FILE) -> None:
    """The checks of ``tune.*`` that need the rest of the file (see :func:`_check_sweep`); UserError."""
    for family in TuneSection.model_fields:
        try:
            _check_sweep(params, family)
        except ValueError as err:
            raise UserError(f"{source}: {err}") from None


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section that ``loc`` (path to the offending key) lives in."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def format_validation_error(err: ValidationError, source: str = PARAMS_FILE) -> str:
    """One line for the first error: the key path and what is allowed."""
    first = err.errors()[0]
    loc, kind, msg = first["loc"], first["type"], first["msg"]
    key = _key_path(loc) or "(top level)"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Params, loc)
        return f"{source}: {key}: unknown key; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{source}: {key}: missing required key"
    got = first.get("input")
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    if isinstance(got, dict | list):
        return f"{source}: {key}: {msg}{more}"
    return f"{source}: {key}: {msg} (got {got!r}){more}"


def parse_params(raw: dict[str, Any], source: str = PARAMS_FILE) -> Params:
    """Validate a loaded params mapping; a violation is a :class:`UserError` naming the key."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(format_validation_error(err, source)) from None
    check_sweeps(params, source)
    return params


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file not found: {path.resolve()} (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_params(raw, str(path))


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the form params are logged to MLflow in."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def params_hash(data: Any) -> str:
    """A short, stable hash of a params subtree (canonical JSON), used in run names and tags."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
