"""Recurrent encoder-decoders for translation, with and without attention.

- Without attention (Cho et al., 2014): the encoder's final state is summarised into a fixed context
  vector c that initialises the decoder and is fed to every decoder step and to the output layer.
- With attention (Bahdanau et al., 2015): at every step the decoder attends over all encoder outputs
  with :class:`~components.nn.attention.AdditiveAttention`.

Token tensors are (B, L) int64 with a bool mask (B, L) that is True on real tokens; sources must
have at least one real token. The model follows the decoding interface of
:mod:`components.families.sequence.decoding`: ``encode`` -> state, ``decode_step`` -> log-probs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from components.nn.attention import AdditiveAttention

RNN_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Readout(nn.Module):
    """Deep output layer: logits = W_o dropout(tanh(W_r [x_1; ...; x_n])).

    (..., in_dim) pieces concatenated on the last dim -> (..., vocab_size) logits.
    """

    def __init__(self, in_dim: int, readout_dim: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, readout_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(readout_dim, vocab_size)

    def forward(self, *parts: Tensor) -> Tensor:
        return self.out(self.dropout(torch.tanh(self.hidden(torch.cat(parts, dim=-1)))))


class RNNSeq2Seq(nn.Module):
    """Embedding + (bi)RNN encoder, RNN decoder, optionally with additive attention.

    Encoder: source embedding, ``num_layers`` of ``cell`` (``"rnn"``, ``"lstm"`` or ``"gru"``),
    bidirectional or not, over a packed sequence (padding never changes the result); outputs
    (B, S, enc_dim) with enc_dim = hidden_dim x directions.

    Bridge: each encoder layer's final state (directions concatenated, enc_dim) -> Linear -> tanh
    initialises the same decoder layer (an LSTM's cell state has its own Linear).

    Decoder step, from the previous token y and state s (top layer s_top):

    - no attention: context c = the bridged final state of the top layer, fixed for the sentence;
    - attention: c, weights = AdditiveAttention(s_top, encoder outputs, source mask);

    then s' = RNN([emb(y); c], s) and logits = :class:`Readout` of [s'_top; c; emb(y)], whose hidden
    width is ``hidden_dim``. ``attn_dim`` (default ``hidden_dim``) is the attention's inner width.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        cell: str = "gru",
        embed_dim: int = 128,
        hidden_dim: int = 256,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        attention: bool = True,
        pad_id: int = 0,
        attn_dim: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"unknown RNN cell {cell!r}: choose one of {', '.join(RNN_CELLS)}")
        self.cell, self.num_layers = cell, num_layers
        rnn_class = RNN_CELLS[cell]
        between_layers = dropout if num_layers > 1 else 0.0
        enc_dim = hidden_dim * (2 if bidirectional else 1)
        context_dim = enc_dim if attention else hidden_dim

        self.src_embed = nn.Embedding(src_vocab_size, embed_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.encoder = rnn_class(
            embed_dim, hidden_dim, num_layers, batch_first=True, bidirectional=bidirectional, dropout=between_layers
        )
        self.bridge = nn.Linear(enc_dim, hidden_dim)
        self.cell_bridge = nn.Linear(enc_dim, hidden_dim) if cell == "lstm" else None
        self.attention = AdditiveAttention(hidden_dim, enc_dim, attn_dim or hidden_dim) if attention else None
        self.decoder = rnn_class(
            embed_dim + context_dim, hidden_dim, num_layers, batch_first=True, dropout=between_layers
        )
        self.readout = Readout(hidden_dim + context_dim + embed_dim, hidden_dim, tgt_vocab_size, dropout)

    # -- state conversions: nn.RNN wants (layers, B, H); the decoding state is batch-first (B, layers, H)

    def _bridged(self, linear: nn.Linear, final: Tensor) -> Tensor:
        """Encoder final states (layers x directions, B, H) -> decoder initial states (B, layers, H)."""
        batch, hidden = final.shape[1:]
        per_layer = final.view(self.num_layers, -1, batch, hidden).permute(2, 0, 1, 3)  # (B, layers, dirs, H)
        per_layer = per_layer.reshape(batch, self.num_layers, -1)
        return torch.tanh(linear(per_layer))

    def _rnn_state(self, state: dict[str, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        hidden = state["hidden"].transpose(0, 1).contiguous()
        return (hidden, state["cell"].transpose(0, 1).contiguous()) if self.cell == "lstm" else hidden

    def _batch_first(self, rnn_state: Tensor | tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        if self.cell == "lstm":
            return {"hidden": rnn_state[0].transpose(0, 1), "cell": rnn_state[1].transpose(0, 1)}
        return {"hidden": rnn_state.transpose(0, 1)}

    # -- the decoding interface

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        """src (B, S) int64, src_mask (B, S) bool -> decoder state, every tensor batch-first.

        ``hidden`` (and ``cell`` for an LSTM) (B, layers, hidden_dim); ``context`` (B, hidden_dim)
        without attention; with it ``memory`` (B, S, enc_dim), its key projection ``memory_keys``
        (B, S, attn_dim) and ``src_mask``.
        """
        embedded = self.dropout(self.src_embed(src))
        lengths = src_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, final = self.encoder(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=src.shape[1])
        if self.cell == "lstm":
            state = {"hidden": self._bridged(self.bridge, final[0]), "cell": self._bridged(self.cell_bridge, final[1])}
        else:
            state = {"hidden": self._bridged(self.bridge, final)}
        if self.attention is None:
            state["context"] = state["hidden"][:, -1]
        else:
            state.update(memory=outputs, memory_keys=self.attention.project_keys(outputs), src_mask=src_mask)
        return state

    def _recur(self, prev_tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """The recurrent part of a step: prev_tokens (B,) -> readout input [s'_top; c; emb(y)] (B, in_dim),
        the new state, attention weights (B, S) or None. The readout itself is not recurrent, so
        teacher forcing applies it once to all steps."""
        embedded = self.dropout(self.tgt_embed(prev_tokens))
        if self.attention is None:
            context, weights = state["context"], None
        else:
            context, weights = self.attention(
                state["hidden"][:, -1], state["memory"], state["src_mask"], projected_keys=state["memory_keys"]
            )
        output, rnn_state = self.decoder(torch.cat([embedded, context], dim=-1).unsqueeze(1), self._rnn_state(state))
        features = torch.cat([output.squeeze(1), context, embedded], dim=-1)
        return features, {**state, **self._batch_first(rnn_state)}, weights

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """prev_tokens (B,) int64 -> log-probs (B, V), the new state, attention weights (B, S) or None."""
        features, state, weights = self._recur(prev_tokens, state)
        return F.log_softmax(self.readout(features), dim=-1), state, weights

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Teacher forcing: src (B, S), src_mask (B, S), tgt_in (B, T) (bos + target[:-1]) -> logits (B, T, V).

        With ``return_attention`` also the attention weights (B, T, S) (None without attention).
        Position t equals ``decode_step`` fed tgt_in[:, :t + 1] one token at a time.
        """
        state = self.encode(src, src_mask)
        if self.attention is None:  # the context is fixed: run the decoder over the whole target at once
            embedded = self.dropout(self.tgt_embed(tgt_in))
            context = state["context"].unsqueeze(1).expand(-1, tgt_in.shape[1], -1)
            outputs, _ = self.decoder(torch.cat([embedded, context], dim=-1), self._rnn_state(state))
            logits, attention = self.readout(outputs, context, embedded), None
        else:
            steps, weights = [], []
            for t in range(tgt_in.shape[1]):
                features, state, step_weights = self._recur(tgt_in[:, t], state)
                steps.append(features)
                weights.append(step_weights)
            logits, attention = self.readout(torch.stack(steps, dim=1)), torch.stack(weights, dim=1)
        return (logits, attention) if return_attention else logits
