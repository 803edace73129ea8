"""``language`` and ``text_classification`` in params.yaml: corpus, trainer, sampling and one section per model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Section, TrainerConfig

Fraction = Annotated[float, Field(ge=0, lt=1)]


class LMBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]  # cosine: linear warm-up, then cosine decay to 0
    warmup_fraction: Fraction
    grad_clip: PositiveFloat | None  # max global gradient norm (char-rnn: 5, as Karpathy's); None = off
    batch_size: PositiveInt | None  # per worker (char-RNNs: parallel text streams); None = the trainer's
    dropout: Fraction


class CharRNNConfig(LMBase):
    """Character-level RNN LM trained by truncated BPTT (Williams & Peng's TBPTT(k1, k2)): every
    ``k1`` characters the loss of those characters is backpropagated through the last ``k2``; the
    hidden state is carried across chunks and detached at their boundary."""

    embed_dim: PositiveInt
    hidden_dim: PositiveInt
    num_layers: PositiveInt
    k1: PositiveInt  # characters per update (each predicted once per epoch)
    k2: PositiveInt  # characters backpropagated through (>= k1; k2 > k1 re-reads k2 - k1 as context)

    @model_validator(mode="after")
    def _window(self) -> CharRNNConfig:
        if self.k2 < self.k1:
            raise ValueError(f"k2 ({self.k2}) must be >= k1 ({self.k1})")
        return self


class TransformerLMConfig(LMBase):
    d_model: PositiveInt
    num_heads: PositiveInt
    num_layers: PositiveInt
    ffn_dim: PositiveInt
    block_size: PositiveInt  # context length in tokens

    @model_validator(mode="after")
    def _heads(self) -> TransformerLMConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        return self


class GPTConfig(TransformerLMConfig):
    """Decoder-only Transformer (causal self-attention, pre-norm), next-character prediction."""


class MaskingConfig(Section):
    """BERT's masked-language-model corruption: ``rate`` of the tokens are chosen; of those
    ``mask`` become [MASK], ``random`` a random token and the rest stay (80/10/10 in the paper)."""

    rate: Annotated[float, Field(gt=0, lt=1)]
    mask: Annotated[float, Field(ge=0, le=1)]
    random: Annotated[float, Field(ge=0, le=1)]

    @model_validator(mode="after")
    def _split(self) -> MaskingConfig:
        if self.mask + self.random > 1:
            raise ValueError(f"mask + random must be <= 1 (got {self.mask} + {self.random})")
        return self


class BertConfig(TransformerLMConfig):
    """Transformer encoder (bidirectional self-attention) pretrained by masked language modelling on
    the words of the corpus' sentences (``block_size``: the longest sentence, in words, plus [CLS])."""

    masking: MaskingConfig


class LanguageModels(Section):
    char_rnn: CharRNNConfig  # Elman (tanh) cell
    char_lstm: CharRNNConfig
    char_gru: CharRNNConfig
    gpt: GPTConfig
    bert_mlm: BertConfig  # pretraining only: text_classification.models.bert fine-tunes it


class SamplingConfig(Section):
    """Text sampled from the character LMs at every figure (``trainer.figure_every``)."""

    temperatures: Annotated[list[NonNegativeFloat], Field(min_length=1)]  # one sample each; 0: the argmax
    length: PositiveInt  # characters per sample
    prompt: str  # every sample continues it


class LanguageConfig(Section):
    dataset: Literal["grammar_en_de", "parallel"]  # a prepared parallel corpus: data/<dataset>
    column: Literal["source", "target"]  # which side's sentences, one per line, make the text
    tokenizer: Literal["char", "bpe"]  # the causal models' tokens: characters | sentencepiece BPE pieces
    vocab_size: Annotated[int, Field(ge=16)]  # bpe: at most this many pieces (bert_mlm reads words either way)
    val_segment: PositiveInt  # val text is scored in segments of this many tokens (state from zero)
    trainer: TrainerConfig
    sampling: SamplingConfig
    models: LanguageModels



# --- text classification ------------------------------------------------------------------------


class RNNClassifierConfig(LMBase):
    """Embedding, a recurrent encoder (the model's name picks the cell and the directions), a linear
    classifier on its last hidden state (both directions' last states when bidirectional)."""

    embed_dim: PositiveInt
    hidden_dim: PositiveInt
    num_layers: PositiveInt


class BertClassifierConfig(LMBase):
    """The ``bert_mlm`` encoder (its architecture comes from ``language.models.bert_mlm``) with a
    linear classifier on [CLS]; ``pretrained``: start from models/language/bert_mlm, else from scratch."""

    pretrained: bool


class TextClassificationModels(Section):
    rnn: RNNClassifierConfig  # Elman (tanh) cell, left to right
    lstm: RNNClassifierConfig
    bilstm: RNNClassifierConfig  # LSTM in both directions
    bert_scratch: BertClassifierConfig
    bert: BertClassifierConfig


class TextClassificationConfig(Section):
    dataset: Literal["word_order", "labelled_text"]  # data/<dataset>: text and label per row
    max_words: PositiveInt  # longer texts are cut to their first max_words word tokens
    trainer: TrainerConfig
    models: TextClassificationModels

    @model_validator(mode="after")
    def _pretrained(self) -> TextClassificationConfig:
        if not self.models.bert.pretrained or self.models.bert_scratch.pretrained:
            raise ValueError("models.bert.pretrained must be true and models.bert_scratch.pretrained false "
                             "(bert fine-tunes language's bert_mlm; bert_scratch is its from-scratch control)")
        return self
