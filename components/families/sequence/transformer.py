"""The Transformer encoder-decoder (Vaswani et al., 2017) for translation.

Built from :class:`~components.nn.attention.MultiHeadAttention`. Token tensors are (B, L) int64
with a bool mask (B, L) that is True on real tokens. The model follows the decoding interface of
:mod:`components.families.sequence.decoding`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.nn.attention import MultiHeadAttention, sinusoidal_positions


def feed_forward(d_model: int, ffn_dim: int, dropout: float) -> nn.Sequential:
    """Position-wise FFN: (..., d_model) -> Linear -> ReLU -> dropout -> Linear -> (..., d_model)."""
    return nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model))


class EncoderLayer(nn.Module):
    """Self-attention and FFN sublayers, each with a residual connection and LayerNorm.

    Pre-norm (``norm_first``): x + dropout(sublayer(norm(x))); post-norm: norm(x + dropout(sublayer(x))).
    (B, S, d_model) -> (B, S, d_model).
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float, norm_first: bool) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn = feed_forward(d_model, ffn_dim, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def _self_attention(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.dropout(self.self_attn(x, x, x, key_padding_mask=mask)[0])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, d_model), mask (B, S) bool, True on real tokens."""
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), mask)
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self._self_attention(x, mask))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder's memory, and FFN sublayers.

    Residual + LayerNorm as in :class:`EncoderLayer`. (B, T, d_model) -> (B, T, d_model).
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float, norm_first: bool) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn = feed_forward(d_model, ffn_dim, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, memory: Tensor, memory_mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, d_model), memory (B, S, d_model), memory_mask (B, S) bool.

        Returns the output and, with ``need_weights``, the cross-attention weights (B, heads, T, S).
        """

        def self_attention(h: Tensor) -> Tensor:
            return self.dropout(self.self_attn(h, h, h, causal=True)[0])

        def cross_attention(h: Tensor) -> tuple[Tensor, Tensor | None]:
            out, weights = self.cross_attn(h, memory, memory, key_padding_mask=memory_mask, need_weights=need_weights)
            return self.dropout(out), weights

        if self.norm_first:
            x = x + self_attention(self.norm1(x))
            out, weights = cross_attention(self.norm2(x))
            x = x + out
            return x + self.dropout(self.ffn(self.norm3(x))), weights
        x = self.norm1(x + self_attention(x))
        out, weights = cross_attention(x)
        x = self.norm2(x + out)
        return self.norm3(x + self.dropout(self.ffn(x))), weights

    def step(
        self, x: Tensor, self_kv: tuple[Tensor, Tensor], cross_kv: tuple[Tensor, Tensor], memory_mask: Tensor
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        """Incremental decoding of one new position: x (B, 1, d_model); ``self_kv`` the projected keys
        and values of the earlier positions (B, H, t, d_k) each, ``cross_kv`` the memory's (B, H, S, d_k).

        Returns the output (B, 1, d_model), the self-attention cache grown by this position, and the
        cross-attention weights (B, H, 1, S). Equal to :meth:`forward` at the last position (eval mode):
        every cached key is in this position's past, so no causal mask is needed.
        """

        def self_attention(h: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            k, v = self.self_attn.project_kv(h, h)
            cache = (torch.cat([self_kv[0], k], dim=2), torch.cat([self_kv[1], v], dim=2))
            return self.dropout(self.self_attn.attend(h, *cache)[0]), cache

        def cross_attention(h: Tensor) -> tuple[Tensor, Tensor]:
            out, weights = self.cross_attn.attend(h, *cross_kv, key_padding_mask=memory_mask, need_weights=True)
            return self.dropout(out), weights

        if self.norm_first:
            out, cache = self_attention(self.norm1(x))
            x = x + out
            out, weights = cross_attention(self.norm2(x))
            x = x + out
            return x + self.dropout(self.ffn(self.norm3(x))), cache, weights
        out, cache = self_attention(x)
        x = self.norm1(x + out)
        out, weights = cross_attention(x)
        x = self.norm2(x + out)
        return self.norm3(x + self.dropout(self.ffn(x))), cache, weights


class TransformerSeq2Seq(nn.Module):
    """Transformer encoder-decoder: embeddings + sinusoidal positions, encoder and decoder stacks, output projection.

    Embedding scale: the token embeddings are initialised N(0, d_model^-1/2) and multiplied by
    √d_model (as in fairseq), so they enter with unit scale next to the sinusoidal encodings in
    [-1, 1]. (Scaling nn.Embedding's default N(0, 1) by √d_model would drown the positions.)

    With ``norm_first`` (pre-norm, the default) both stacks end with a final LayerNorm; the
    post-norm layers of the paper already end normalised. Target and source sequences may be at
    most ``max_len`` long. Decoding is incremental, with a key/value cache per decoder layer.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 128,
        num_heads: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        ffn_dim: int = 256,
        dropout: float = 0.1,
        max_len: int = 128,
        pad_id: int = 0,
        norm_first: bool = True,
    ) -> None:
        super().__init__()
        self.embed_scale = math.sqrt(d_model)
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, std=d_model**-0.5)
            with torch.no_grad():
                embedding.weight[pad_id].zero_()
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer_args = (d_model, num_heads, ffn_dim, dropout, norm_first)
        self.encoder_layers = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(num_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(num_decoder_layers))
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.out_proj = nn.Linear(d_model, tgt_vocab_size)

    def _embed(self, embedding: nn.Embedding, tokens: Tensor) -> Tensor:
        """(B, L) int64 -> (B, L, d_model): scaled token embedding + positional encoding, dropout."""
        length = tokens.shape[1]
        if length > self.positions.shape[0]:
            raise ValueError(f"sequence of length {length} is longer than max_len {self.positions.shape[0]}")
        return self.dropout(embedding(tokens) * self.embed_scale + self.positions[:length])

    def _decode(
        self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """tgt_in (B, T) -> logits (B, T, V) and the last layer's cross-attention averaged over heads (B, T, S).

        The target needs no padding mask: under the causal mask a real position never sees the
        padding that follows it, and the loss ignores the padded positions.
        """
        x, weights = self._embed(self.tgt_embed, tgt_in), None
        for index, layer in enumerate(self.decoder_layers):
            last = index == len(self.decoder_layers) - 1
            x, weights = layer(x, memory, src_mask, need_weights=need_weights and last)
        logits = self.out_proj(self.decoder_norm(x))
        return logits, None if weights is None else weights.mean(dim=1)

    # -- the decoding interface

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        """src (B, S) int64, src_mask (B, S) bool -> decoding state (every tensor batch first):
        ``memory`` (B, S, d_model), ``src_mask``, and per decoder layer i the cross-attention keys and
        values of the memory ``cross_k.i``/``cross_v.i`` (B, H, S, d_k) and the (so far empty)
        self-attention cache of the generated positions ``self_k.i``/``self_v.i`` (B, H, 0, d_k)."""
        x = self._embed(self.src_embed, src)
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        memory = self.encoder_norm(x)
        state = {"memory": memory, "src_mask": src_mask}
        for i, layer in enumerate(self.decoder_layers):
            state[f"cross_k.{i}"], state[f"cross_v.{i}"] = layer.cross_attn.project_kv(memory, memory)
            empty = state[f"cross_k.{i}"][:, :, :0]
            state[f"self_k.{i}"], state[f"self_v.{i}"] = empty, empty
        return state

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """prev_tokens (B,) int64 -> log-probs (B, V) of the next token, the new state, the last
        layer's cross-attention averaged over heads (B, S).

        Incremental: only the new position runs through the decoder; earlier positions' keys and
        values come from the cache, so a sentence of T tokens costs O(T) layer passes, not O(T^2).
        """
        position = state["self_k.0"].shape[2]
        if position >= self.positions.shape[0]:
            raise ValueError(f"decoding past max_len {self.positions.shape[0]}")
        x = self.dropout(self.tgt_embed(prev_tokens[:, None]) * self.embed_scale + self.positions[position])
        state = dict(state)
        for i, layer in enumerate(self.decoder_layers):
            x, (state[f"self_k.{i}"], state[f"self_v.{i}"]), weights = layer.step(
                x, (state[f"self_k.{i}"], state[f"self_v.{i}"]), (state[f"cross_k.{i}"], state[f"cross_v.{i}"]),
                state["src_mask"])
        logits = self.out_proj(self.decoder_norm(x[:, 0]))
        return F.log_softmax(logits, dim=-1), state, weights[:, :, 0].mean(dim=1)

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Teacher forcing: src (B, S), src_mask (B, S), tgt_in (B, T) -> logits (B, T, V).

        With ``return_attention`` also the last decoder layer's cross-attention averaged over heads (B, T, S).
        """
        state = self.encode(src, src_mask)
        logits, weights = self._decode(tgt_in, state["memory"], src_mask, need_weights=return_attention)
        return (logits, weights) if return_attention else logits
