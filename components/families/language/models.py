"""The language family's networks: a character RNN LM, a GPT-style decoder, a BERT-style encoder
with its masked-LM and classification heads, and the recurrent text classifiers.

The Transformers are built from the sequence family's :class:`EncoderLayer` (pre-norm
self-attention + FFN) and its written-out attention's projections, the attention itself fused
(:func:`fused_self_attention`); GPT's layers attend causally.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from components.families.sequence.transformer import EncoderLayer
from components.nn.attention import MultiHeadAttention, causal_mask, sinusoidal_positions

RNN_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
State = Tensor | tuple[Tensor, Tensor] | None


def detach_state(state: State) -> State:
    """The hidden state with its history cut: no gradient flows into the previous chunk."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class CharRNN(nn.Module):
    """Embedding -> ``num_layers`` recurrent layers -> dropout -> linear over the characters.

    ``forward(x, state, advance)`` runs the chunk ``x`` (B, T) from ``state`` and returns the logits
    (B, T, V) and the state after the first ``advance`` positions (the next chunk's starting state:
    truncated BPTT with k2 > k1 re-reads context; ``advance = T`` is plain chunking)."""

    def __init__(self, vocab_size: int, cell: str, embed_dim: int, hidden_dim: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = RNN_CELLS[cell](embed_dim, hidden_dim, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x: Tensor, state: State = None, advance: int | None = None) -> tuple[Tensor, State]:
        advance = x.shape[1] if advance is None else advance
        embedded = self.embed(x)
        outputs, carried = [], state
        if advance > 0:
            out, carried = self.rnn(embedded[:, :advance], state)
            outputs.append(out)
        if advance < x.shape[1]:
            out, _ = self.rnn(embedded[:, advance:], carried)
            outputs.append(out)
        hidden = torch.cat(outputs, dim=1)
        return self.head(self.dropout(hidden)), carried

    def cell_activations(self, x: Tensor) -> Tensor:
        """The last layer's cell states (LSTM) or hidden states (B, T, H) over ``x``, from a zero state."""
        if not isinstance(self.rnn, nn.LSTM):
            return self.rnn(self.embed(x))[0]
        cells, state = [], None
        embedded = self.embed(x)
        for t in range(x.shape[1]):  # nn.LSTM returns only the last cell state: step through
            _, state = self.rnn(embedded[:, t:t + 1], state)
            cells.append(state[1][-1])
        return torch.stack(cells, dim=1)


def fused_self_attention(attention: MultiHeadAttention, x: Tensor, key_padding_mask: Tensor | None = None,
                         causal: bool = False) -> Tensor:
    """``attention(x, x, x, key_padding_mask, causal)[0]`` with the score/softmax/weighted-sum step
    done by PyTorch's fused ``scaled_dot_product_attention`` (the same projections and result, within
    float rounding: tests/unit/test_language_models.py). The written-out version holds every
    (T x T) intermediate for backward: on 2 CPU threads a 128-character GPT block's attention
    took 138 ms forward and backward against 37 ms fused."""
    q = attention._split_heads(attention.q_proj(x))
    k, v = attention.project_kv(x, x)
    mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    if causal and mask is not None:  # SDPA takes one or the other: fold the causal triangle in
        mask = mask & causal_mask(x.shape[1], device=x.device)
        causal = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                         dropout_p=attention.dropout.p if attention.training else 0.0)
    return attention.out_proj(out.transpose(1, 2).reshape(x.shape))


class BidirectionalLayer(EncoderLayer):
    """:class:`EncoderLayer` (a BERT block) with fused attention."""

    def _self_attention(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.dropout(fused_self_attention(self.self_attn, x, mask))


class CausalLayer(EncoderLayer):
    """:class:`EncoderLayer` whose self-attention sees only earlier positions (a GPT block)."""

    def _self_attention(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.dropout(fused_self_attention(self.self_attn, x, causal=True))


class TransformerStack(nn.Module):
    """Token embeddings (scaled by sqrt(d_model)) plus the sinusoidal position code of the
    translation Transformer, ``num_layers`` pre-norm layers, a final LayerNorm. Fixed positions
    matter for the bidirectional encoder: with learned ones (BERT's) initialised small, masked-word
    accuracy sat at the unigram rate for 4 of 6 epochs, the encoder a bag of words."""

    layer_type: type[EncoderLayer] = BidirectionalLayer

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, ffn_dim: int,
                 block_size: int, dropout: float) -> None:
        super().__init__()
        self.block_size = block_size
        self.embed_scale = math.sqrt(d_model)
        self.token_embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.token_embed.weight, std=d_model**-0.5)
        self.register_buffer("positions", sinusoidal_positions(block_size, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(self.layer_type(d_model, num_heads, ffn_dim, dropout, True)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def hidden(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, L) -> (B, L, d_model); ``mask`` (B, L) True on real tokens (bidirectional stacks)."""
        if tokens.shape[1] > self.block_size:
            raise ValueError(f"sequence of {tokens.shape[1]} tokens is longer than block_size {self.block_size}")
        h = self.dropout(self.token_embed(tokens) * self.embed_scale + self.positions[: tokens.shape[1]])
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm(h)


class GPT(TransformerStack):
    """Decoder-only Transformer LM: ``forward(x)`` (B, T) -> next-token logits (B, T, V); the output
    layer shares the token embedding's weights (as GPT-2)."""

    layer_type = CausalLayer

    def forward(self, x: Tensor) -> Tensor:
        return self.hidden(x) @ self.token_embed.weight.T


class BertEncoder(TransformerStack):
    """BERT-style bidirectional encoder; position 0 holds [CLS]."""


class MLMHead(nn.Module):
    """BERT's prediction head: dense + GELU + LayerNorm, then scores over the vocabulary."""

    def __init__(self, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.decoder = nn.Linear(d_model, vocab_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.decoder(self.transform(hidden))


class MaskedLM(nn.Module):
    """Encoder + MLM head: ``forward(tokens, mask)`` -> logits (B, L, V) at every position."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, ffn_dim: int,
                 block_size: int, dropout: float) -> None:
        super().__init__()
        self.encoder = BertEncoder(vocab_size, d_model, num_heads, num_layers, ffn_dim, block_size, dropout)
        self.head = MLMHead(d_model, vocab_size)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.encoder.hidden(tokens, mask))


class BertClassifier(nn.Module):
    """Encoder + dropout + linear classifier on the [CLS] position."""

    def __init__(self, encoder: BertEncoder, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.token_embed.embedding_dim, num_classes)

    def forward(self, tokens: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.classifier(self.dropout(self.encoder.hidden(tokens, mask)[:, 0]))


class RNNClassifier(nn.Module):
    """Embedding -> recurrent encoder over the real tokens (packed) -> linear on the last layer's
    final hidden state (forward and backward concatenated when bidirectional)."""

    def __init__(self, vocab_size: int, num_classes: int, cell: str, bidirectional: bool, embed_dim: int,
                 hidden_dim: int, num_layers: int, dropout: float, pad_id: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = RNN_CELLS[cell](embed_dim, hidden_dim, num_layers, batch_first=True, bidirectional=bidirectional,
                                   dropout=dropout if num_layers > 1 else 0.0)
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim * self.directions, num_classes)

    def forward(self, tokens: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # (layers * directions, B, H)
        last = h[-self.directions:].transpose(0, 1).reshape(tokens.shape[0], -1)
        return self.classifier(self.dropout(last))
