"""Image captioning: a CNN encoder and an LSTM decoder, with or without soft attention.

- Show and Tell (Vinyals et al., 2015), ``attention=False``: the image enters once, as the LSTM's
  initial state (from the mean-pooled feature); every word must then come from that one vector.
- Show, Attend and Tell (Xu et al., 2015), ``attention=True``: additive attention over the grid of
  CNN features at every step, gated by β = sigmoid(W_β h).

Images are (B, in_channels, H, W) floats in [0, 1]; each of the ``len(channels)`` encoder stages
halves H and W, so 64x64 images and three stages give an 8x8 grid. The model follows the decoding
interface of :mod:`components.families.sequence.decoding` (its source is the images, its source
mask None).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.families.sequence.seq2seq import Readout
from components.nn.attention import AdditiveAttention, sinusoidal_positions
from components.nn.blocks import double_conv


def grid_positions(height: int, width: int, dim: int) -> Tensor:
    """(height * width, dim) fixed 2-D positional encoding, row-major like ``flatten``.

    The first dim / 2 channels are the sinusoidal encoding of the row, the others of the column.
    """
    if dim % 2:
        raise ValueError(f"the 2-D positional encoding needs an even feature width, got {dim}")
    rows = sinusoidal_positions(height, dim // 2)[:, None, :].expand(height, width, dim // 2)
    cols = sinusoidal_positions(width, dim // 2)[None, :, :].expand(height, width, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(height * width, dim)


class Captioner(nn.Module):
    """CNN encoder -> grid of features -> LSTM decoder (see the module docstring).

    Encoder: per entry of ``channels`` a stage of two conv-BN-ReLU (:func:`double_conv`) and 2x2
    max-pooling (stride 2), giving (B, D, H', W') with D = channels[-1]. Each grid cell's feature
    plus a fixed 2-D positional encoding (:func:`grid_positions`) goes through Linear(D, D) + ReLU:
    the grid is (B, N = H' x W', D). The nonlinearity mixes content with position, so that even
    the mean-pooled feature of Show and Tell can tell where things are ("a 3 at the top left").

    Decoder: an LSTM cell of width ``hidden_dim``; h_0 and c_0 = tanh(Linear(mean of the grid)).
    At each step, from the previous token y and (h, c):

    - no attention: (h', c') = LSTM(emb(y), (h, c)) and logits = :class:`Readout` of [h'; emb(y)];
    - attention: z, weights = AdditiveAttention(h, grid) of inner width ``attn_dim`` (default
      ``hidden_dim``), (h', c') = LSTM([emb(y); β z], (h, c)) with the gating scalar
      β = sigmoid(Linear(h)), and logits = :class:`Readout` of [h'; z; emb(y)].
    """

    def __init__(
        self,
        in_channels: int,
        vocab_size: int,
        channels: Sequence[int] = (16, 32, 64),
        embed_dim: int = 64,
        hidden_dim: int = 128,
        attention: bool = True,
        attn_dim: int | None = None,
        dropout: float = 0.1,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        stages, width = [], in_channels
        for out_channels in channels:
            stages += [double_conv(width, out_channels), nn.MaxPool2d(2)]
            width = out_channels
        self.encoder = nn.Sequential(*stages)
        self.cell_proj = nn.Sequential(nn.Linear(width, width), nn.ReLU())
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.init_hidden = nn.Linear(width, hidden_dim)
        self.init_cell = nn.Linear(width, hidden_dim)
        self.attention = AdditiveAttention(hidden_dim, width, attn_dim or hidden_dim) if attention else None
        self.gate = nn.Linear(hidden_dim, 1) if attention else None
        context_dim = width if attention else 0  # Show and Tell sees the image only through h_0, c_0
        self.lstm = nn.LSTMCell(embed_dim + context_dim, hidden_dim)
        self.readout = Readout(hidden_dim + context_dim + embed_dim, hidden_dim, vocab_size, dropout)

    def features(self, images: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> grid features (B, H' x W', D), positions included."""
        maps = self.encoder(images)
        _, dim, height, width = maps.shape
        grid = maps.flatten(2).transpose(1, 2) + grid_positions(height, width, dim).to(maps)
        return self.cell_proj(grid)

    # -- the decoding interface

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> dict[str, Tensor]:
        """src: images (B, C, H, W); src_mask is ignored (every grid cell is real).

        State: ``hidden`` and ``cell`` (B, 1, hidden_dim) (batch, layers, width), with attention the
        ``memory`` grid (B, N, D) and its key projection ``memory_keys`` (B, N, attn_dim).
        """
        grid = self.features(src)
        pooled = grid.mean(dim=1)
        state = {
            "hidden": torch.tanh(self.init_hidden(pooled)).unsqueeze(1),
            "cell": torch.tanh(self.init_cell(pooled)).unsqueeze(1),
        }
        if self.attention is not None:
            state.update(memory=grid, memory_keys=self.attention.project_keys(grid))
        return state

    def _recur(self, prev_tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """The recurrent part of a step: prev_tokens (B,) -> readout input [h'; (z;) emb(y)] (B, in_dim),
        the new state, attention weights (B, N) or None. The readout itself is not recurrent, so
        teacher forcing applies it once to all steps."""
        embedded = self.dropout(self.embed(prev_tokens))
        hidden, cell = state["hidden"].squeeze(1), state["cell"].squeeze(1)
        if self.attention is None:
            hidden, cell = self.lstm(embedded, (hidden, cell))
            features, weights = torch.cat([hidden, embedded], dim=-1), None
        else:
            context, weights = self.attention(hidden, state["memory"], projected_keys=state["memory_keys"])
            lstm_input = torch.cat([embedded, torch.sigmoid(self.gate(hidden)) * context], dim=-1)
            hidden, cell = self.lstm(lstm_input, (hidden, cell))
            features = torch.cat([hidden, context, embedded], dim=-1)
        return features, {**state, "hidden": hidden.unsqueeze(1), "cell": cell.unsqueeze(1)}, weights

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """prev_tokens (B,) int64 -> log-probs (B, V), the new state, attention over the grid (B, N) or None."""
        features, state, weights = self._recur(prev_tokens, state)
        return F.log_softmax(self.readout(features), dim=-1), state, weights

    def forward(
        self, src: Tensor, src_mask: Tensor | None, tgt_in: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Teacher forcing: images (B, C, H, W), src_mask ignored (None), tgt_in (B, T) -> logits (B, T, V).

        With ``return_attention`` also the attention over the grid (B, T, N) (None without attention).
        """
        state = self.encode(src, src_mask)
        steps, weights = [], []
        for t in range(tgt_in.shape[1]):
            features, state, step_weights = self._recur(tgt_in[:, t], state)
            steps.append(features)
            weights.append(step_weights)
        logits = self.readout(torch.stack(steps, dim=1))
        attention = None if self.attention is None else torch.stack(weights, dim=1)
        return (logits, attention) if return_attention else logits
