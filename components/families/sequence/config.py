"""``translation`` and ``captioning`` in params.yaml: dataset, trainer, decoding and one section per model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Section, TrainerConfig

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
    min_freq: PositiveInt  # tokens seen fewer times in train become <unk>
    tokenizer: Literal["word", "bpe"]  # word: words and punctuation | bpe: sentencepiece BPE subwords
    vocab_size: Annotated[int, Field(ge=16)]  # bpe: at most this many pieces per language (word: unused)
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
    dataset: Literal["scenes", "coco"]  # a prepared DENSE dataset with captions: data/<dataset>
    image_size: Annotated[int, Field(ge=16)] | None  # square resize of the images when loaded (bilinear,
    # antialiased); None = as prepared (data.<dataset>'s size)
    min_freq: PositiveInt  # caption words seen fewer times in train become <unk>
    trainer: TrainerConfig
    decoding: CaptionDecodingConfig
    models: CaptioningModels
