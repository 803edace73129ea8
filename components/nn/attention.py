"""Attention layers shared by the sequence models.

- :class:`AdditiveAttention`: Bahdanau et al. (2015), score = vᵀ tanh(W_q q + W_k k).
- :class:`MultiHeadAttention`: scaled dot-product attention with several heads (Vaswani et al., 2017).
- :func:`causal_mask` and :func:`sinusoidal_positions`: the Transformer's helpers.

Mask convention everywhere: a bool tensor that is True where attending is *allowed* (a real key
position, or a key that is not in the future). Masked keys get a weight of exactly 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(num_queries: int, num_keys: int | None = None, device: torch.device | None = None) -> Tensor:
    """(T, S) bool, True where query i may attend to key j, i.e. j <= i (+ S - T when S > T).

    ``num_keys`` defaults to ``num_queries``; with more keys than queries the queries are the last T
    positions of the sequence.
    """
    num_keys = num_queries if num_keys is None else num_keys
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril(diagonal=num_keys - num_queries)


def sinusoidal_positions(max_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """(max_len, d_model) fixed positional encodings of Vaswani et al.

    PE[pos, 2i] = sin(pos / base^(2i / d_model)), PE[pos, 2i + 1] = cos(pos / base^(2i / d_model)).
    """
    positions = torch.arange(max_len, dtype=torch.float32)[:, None]
    frequencies = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    angles = positions * frequencies  # (max_len, ceil(d_model / 2))
    encoding = torch.zeros(max_len, d_model)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding


def masked_softmax(scores: Tensor, allowed: Tensor | None) -> Tensor:
    """Softmax over the last dim with weight exactly 0 where ``allowed`` (broadcastable bool) is False.

    Masked scores are set to the dtype's lowest finite value rather than -inf, so a row with no
    allowed position gives no NaN (forward or backward); such a row is returned as all zeros.
    """
    if allowed is None:
        return F.softmax(scores, dim=-1)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return F.softmax(scores, dim=-1).masked_fill(~allowed, 0.0)


class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: score(q, k_s) = vᵀ tanh(W_q q + W_k k_s + b).

    The key projection W_k k does not depend on the query, so a decoder computes it once per source
    with :meth:`project_keys` and passes it to every step as ``projected_keys``.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """(B, S, key_dim) -> (B, S, attn_dim)."""
        return self.key_proj(keys)

    def forward(
        self, query: Tensor, keys: Tensor, mask: Tensor | None = None, projected_keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """query (B, query_dim), keys (B, S, key_dim), mask (B, S) bool (True = real) or None.

        Returns the context (B, key_dim), the weighted mean of the keys, and the weights (B, S).
        """
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        energies = torch.tanh(projected_keys + self.query_proj(query).unsqueeze(1))  # (B, S, attn_dim)
        weights = masked_softmax(self.score(energies).squeeze(-1), mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
        return context, weights


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, written out.

    Each of ``num_heads`` heads projects queries, keys and values to d_k = d_model / num_heads,
    computes softmax(Q Kᵀ / √d_k) V, and the concatenated heads go through an output projection.
    Dropout (``dropout``) is applied to the attention weights.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, H, L, d_k)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B, T, D), key and value (B, S, D), key_padding_mask (B, S) bool (True = real) or None.

        ``causal`` lets query i see keys j <= i only (see :func:`causal_mask`). Returns the output
        (B, T, D) and, with ``need_weights``, the attention weights (B, H, T, S) before dropout.
        """
        return self.attend(query, *self.project_kv(key, value), key_padding_mask, causal, need_weights)

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values projected and split into heads, (B, H, S, d_k) each: computed once per
        sequence and cached during incremental decoding."""
        return self._split_heads(self.k_proj(key)), self._split_heads(self.v_proj(value))

    def attend(
        self,
        query: Tensor,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention of ``query`` (B, T, D) over projected keys and values (B, H, S, d_k); see :meth:`forward`."""
        batch, num_queries, d_model = query.shape
        q = self._split_heads(self.q_proj(query))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, S)
        allowed = None
        if key_padding_mask is not None:
            allowed = key_padding_mask[:, None, None, :]
        if causal:
            future = causal_mask(num_queries, k.shape[2], device=query.device)
            allowed = future if allowed is None else allowed & future
        weights = masked_softmax(scores, allowed)
        out = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, num_queries, d_model)
        return self.out_proj(out), weights if need_weights else None
