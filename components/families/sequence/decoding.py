"""Greedy and beam-search decoding, shared by every sequence model.

A model decodes through two methods (:class:`SequenceModel`):

- ``encode(src, src_mask) -> state``: a dict of tensors that all have the batch as dim 0, so a
  beam search can reorder hypotheses with ``index_select(0, rows)`` (:func:`reorder_state`);
- ``decode_step(prev_tokens (B,), state) -> (log_probs (B, V), new_state, attention (B, S) or None)``.

``max_len`` is the most tokens generated per sentence, the final eos included: an int, or a (B,)
tensor (e.g. 2 x source length + 10). A sentence that reaches it without eos is cut there.
Returned token lists exclude bos and eos.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import Tensor, nn


class SequenceModel(Protocol):
    def encode(self, src: Tensor, src_mask: Tensor | None) -> dict[str, Tensor]: ...

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor | None]: ...


def reorder_state(state: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    """Select (and repeat) batch rows of every tensor of a decoding state: rows (N,) int64."""
    return {name: value.index_select(0, rows) for name, value in state.items()}


def gnmt_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """GNMT length penalty lp(|Y|) = ((5 + |Y|) / 6)^alpha; a hypothesis scores log P(Y) / lp(|Y|)."""
    return ((5 + length) / 6) ** alpha


def _max_lengths(max_len: int | Tensor, batch: int, device: torch.device) -> Tensor:
    """An int or (B,) tensor -> (B,) int64 on ``device``; every entry must be at least 1."""
    limits = torch.as_tensor(max_len, dtype=torch.int64, device=device).expand(batch).clone()
    if (limits < 1).any():
        raise ValueError("max_len must be at least 1")
    return limits


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; the model's previous mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def greedy_decode(
    model: SequenceModel, src: Tensor, src_mask: Tensor | None, bos_id: int, eos_id: int, max_len: int | Tensor
) -> tuple[list[list[int]], list[Tensor] | None]:
    """Pick the most probable token at every step, for the whole batch at once.

    Returns the tokens of every sentence and, for models with attention, its attention weights
    (T_i, S) on the CPU, one row per returned token (the eos step excluded; padded source positions
    have weight 0). Attention-free models give None.
    """
    with _evaluating(model):
        batch = src.shape[0]
        limits = _max_lengths(max_len, batch, src.device)
        state = model.encode(src, src_mask)
        prev = torch.full((batch,), bos_id, dtype=torch.int64, device=src.device)
        running = torch.ones(batch, dtype=torch.bool, device=src.device)
        steps, attentions = [], []
        for step in range(int(limits.max())):
            log_probs, state, attention = model.decode_step(prev, state)
            prev = log_probs.argmax(dim=-1)
            steps.append(prev)
            attentions.append(attention)
            running &= (prev != eos_id) & (step + 1 < limits)
            if not running.any():
                break
    generated = torch.stack(steps, dim=1).tolist()
    tokens = []
    for row, limit in zip(generated, limits.tolist(), strict=True):
        row = row[:limit]
        tokens.append(row[: row.index(eos_id)] if eos_id in row else row)
    if attentions[0] is None:
        return tokens, None
    weights = torch.stack(attentions, dim=1).cpu()  # (B, T, S)
    return tokens, [weights[i, : len(sentence)] for i, sentence in enumerate(tokens)]


def beam_search(
    model: SequenceModel,
    src: Tensor,
    src_mask: Tensor | None,
    bos_id: int,
    eos_id: int,
    max_len: int | Tensor,
    beam_width: int = 4,
    length_penalty: float = 0.6,
) -> list[list[int]]:
    """Beam search over the batch x ``beam_width`` hypotheses at once; returns each sentence's best tokens.

    Hypotheses are ranked by their summed log-probability. At each step the 2k best expansions of
    the k alive hypotheses are taken: those among the k best that end in eos are finished, the k
    best others stay alive. At the sentence's ``max_len`` the alive hypotheses are finished too,
    cut without eos. A finished hypothesis scores log P / lp(its length, eos included), with
    alpha = ``length_penalty`` in :func:`gnmt_penalty`, and the best one is returned. A sentence stops
    once it has k finished hypotheses and the best of them beats the best alive one as it stands
    (exact for alpha = 0, where log-probs only fall; the usual heuristic otherwise), or at its
    ``max_len``; finished sentences leave the batch. With k = 1 this is greedy decoding.
    """
    k = beam_width
    with _evaluating(model):
        device = src.device
        batch = src.shape[0]
        limits = _max_lengths(max_len, batch, device)
        state = reorder_state(model.encode(src, src_mask), torch.arange(batch, device=device).repeat_interleave(k))
        sentence = torch.arange(batch, device=device)  # original index of each sentence still searched
        scores = torch.full((batch, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live hypothesis at the start, so the k beams don't all expand the same bos
        history = torch.empty((batch * k, 0), dtype=torch.int64, device=device)
        prev = torch.full((batch * k,), bos_id, dtype=torch.int64, device=device)
        num_finished = torch.zeros(batch, dtype=torch.int64, device=device)
        best_finished = torch.full((batch,), float("-inf"), device=device)
        best: list[list[int]] = [[] for _ in range(batch)]
        length = 0
        while sentence.numel():
            length += 1
            num = sentence.numel()
            log_probs, state, _ = model.decode_step(prev, state)
            vocab = log_probs.shape[-1]
            expansions = (scores.unsqueeze(-1) + log_probs.view(num, k, vocab)).view(num, k * vocab)
            top_scores, top_index = expansions.topk(min(2 * k, k * vocab), dim=1)  # (num, 2k), best first
            top_tokens = top_index % vocab
            top_rows = torch.arange(num, device=device).unsqueeze(1) * k + top_index // vocab  # parent rows
            is_eos = top_tokens == eos_id
            alive_scores, alive_pos = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=1)
            alive_rows, alive_tokens = top_rows.gather(1, alive_pos), top_tokens.gather(1, alive_pos)
            penalty = gnmt_penalty(length, length_penalty)
            last = limits == length

            # finished hypotheses (sentence position, score, tokens): few per step, so plain Python
            ended = is_eos & torch.isfinite(top_scores)
            ended[:, k:] = False  # only eos among the k best expansions finishes a hypothesis
            finished = [
                (i, score / penalty, history[row].tolist())
                for i, row, score in zip(
                    ended.nonzero()[:, 0].tolist(), top_rows[ended].tolist(), top_scores[ended].tolist(), strict=True
                )
            ]
            history = torch.cat([history[alive_rows.view(-1)], alive_tokens.view(-1, 1)], dim=1)
            if last.any():  # the alive hypotheses of sentences at their max_len are finished, cut
                cut = last.unsqueeze(1) & torch.isfinite(alive_scores)
                finished += [
                    (i, score / penalty, history[i * k + j].tolist())
                    for (i, j), score in zip(cut.nonzero().tolist(), alive_scores[cut].tolist(), strict=True)
                ]
            for i, score, tokens in finished:
                num_finished[i] += 1
                if score > best_finished[i]:
                    best_finished[i] = score
                    best[int(sentence[i])] = tokens

            done = last | ((num_finished >= k) & (best_finished >= alive_scores[:, 0] / penalty))
            scores, prev = alive_scores, alive_tokens.view(-1)
            state = reorder_state(state, alive_rows.view(-1))
            if done.any():
                keep = (~done).nonzero().squeeze(1)
                rows = (keep.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
                state, history, prev = reorder_state(state, rows), history[rows], prev[rows]
                scores, limits, sentence = scores[keep], limits[keep], sentence[keep]
                num_finished, best_finished = num_finished[keep], best_finished[keep]
    return best


class GreedyDecoder(nn.Module):
    """What MLflow serves for a sequence model (components/model_logging.py): its input (source ids
    (N, S) padded with ``src_pad_id``, or images) -> greedy token ids (N, T) int64, each row's tokens,
    then eos, then ``pad_id`` to the batch's longest. At most ``max_length`` tokens, or with
    ``length_ratio`` ``length_ratio`` x source length + ``extra`` (the family's own limits)."""

    def __init__(self, net: nn.Module, bos_id: int, eos_id: int, pad_id: int, *, max_length: int = 0,
                 length_ratio: float = 0.0, extra: int = 0, src_pad_id: int | None = None):
        super().__init__()
        self.net = net
        self.bos_id, self.eos_id, self.pad_id, self.src_pad_id = bos_id, eos_id, pad_id, src_pad_id
        self.max_length, self.length_ratio, self.extra = max_length, length_ratio, extra

    def forward(self, src: Tensor) -> Tensor:
        mask = None if self.src_pad_id is None else src != self.src_pad_id
        limit = (mask.sum(dim=1).float() * self.length_ratio).long() + self.extra if self.length_ratio else (
            self.max_length)
        tokens, _ = greedy_decode(self.net, src, mask, self.bos_id, self.eos_id, limit)
        out = torch.full((len(tokens), max(map(len, tokens)) + 1), self.pad_id, dtype=torch.int64)
        for row, sentence in enumerate(tokens):
            out[row, : len(sentence) + 1] = torch.tensor([*sentence, self.eos_id], dtype=torch.int64)
        return out
