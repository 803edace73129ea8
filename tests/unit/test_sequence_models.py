"""The sequence models: attention layers, teacher forcing vs step-by-step decoding, greedy and beam search,
padding invariance, causality, and that the attention models learn a reversal task."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.families.sequence.captioner import Captioner, grid_positions
from components.families.sequence.decoding import beam_search, gnmt_penalty, greedy_decode
from components.families.sequence.seq2seq import RNNSeq2Seq
from components.families.sequence.transformer import TransformerSeq2Seq
from components.nn.attention import AdditiveAttention, MultiHeadAttention, causal_mask, sinusoidal_positions

PAD, BOS, EOS = 0, 1, 2
SRC_VOCAB, TGT_VOCAB = 19, 23
IMAGE_SIZE = 64

TRANSLATORS = {
    "rnn": lambda: RNNSeq2Seq(SRC_VOCAB, TGT_VOCAB, "rnn", 12, 16, 1, False, 0.1, False, PAD),
    "lstm": lambda: RNNSeq2Seq(SRC_VOCAB, TGT_VOCAB, "lstm", 12, 16, 2, True, 0.1, False, PAD),
    "gru": lambda: RNNSeq2Seq(SRC_VOCAB, TGT_VOCAB, "gru", 12, 16, 2, True, 0.1, False, PAD),
    "attention_gru": lambda: RNNSeq2Seq(SRC_VOCAB, TGT_VOCAB, "gru", 12, 16, 2, True, 0.1, True, PAD),
    "attention_lstm": lambda: RNNSeq2Seq(SRC_VOCAB, TGT_VOCAB, "lstm", 12, 16, 1, True, 0.1, True, PAD),
    "transformer": lambda: TransformerSeq2Seq(SRC_VOCAB, TGT_VOCAB, 16, 2, 2, 2, 32, 0.1, 40, PAD),
    "post_norm_transformer": lambda: TransformerSeq2Seq(
        SRC_VOCAB, TGT_VOCAB, 16, 2, 1, 1, 32, 0.1, 40, PAD, norm_first=False
    ),
}
CAPTIONERS = {
    "show_tell": lambda: Captioner(1, TGT_VOCAB, [4, 8, 8], 12, 16, False, 8, 0.1, PAD),
    "show_attend_tell": lambda: Captioner(1, TGT_VOCAB, [4, 8, 8], 12, 16, True, 8, 0.1, PAD),
}
MODELS = {**TRANSLATORS, **CAPTIONERS}
ATTENTION = {"attention_gru", "attention_lstm", "transformer", "post_norm_transformer", "show_attend_tell"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS[name]().eval()


def _sources(lengths: list[int], pad_to: int | None = None, seed: int = 1) -> tuple[Tensor, Tensor]:
    """Random sentences (B, pad_to) int64 of the given lengths, right-padded, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    width = pad_to or max(lengths)
    src = torch.full((len(lengths), width), PAD)
    for i, length in enumerate(lengths):
        src[i, :length] = torch.randint(3, SRC_VOCAB, (length,), generator=generator)
    return src, src != PAD


def _inputs(name: str, batch: int = 3) -> tuple[Tensor, Tensor | None]:
    """A source batch for the model: sentences of different lengths, or images."""
    if name in CAPTIONERS:
        return torch.rand(batch, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1)), None
    return _sources([7, 4, 1, 5, 6, 2][:batch])


def _targets(batch: int, length: int) -> Tensor:
    """Teacher-forcing input (B, T): bos then random tokens."""
    tgt = torch.randint(3, TGT_VOCAB, (batch, length), generator=torch.Generator().manual_seed(2))
    tgt[:, 0] = BOS
    return tgt


def _score(model: nn.Module, src: Tensor, src_mask: Tensor | None, tokens: list[int], max_len: int) -> float:
    """log P(tokens + eos) / lp by teacher forcing (no eos when the sentence was cut at max_len)."""
    full = tokens if len(tokens) == max_len else [*tokens, EOS]
    tgt_in = torch.tensor([[BOS, *full[:-1]]])
    with torch.no_grad():
        log_probs = model(src, src_mask, tgt_in).log_softmax(-1)[0]
    return log_probs[torch.arange(len(full)), torch.tensor(full)].sum().item() / gnmt_penalty(len(full), 0.6)


# -- attention layers


def test_additive_attention_weights_are_a_distribution_over_real_positions() -> None:
    torch.manual_seed(0)
    attention = AdditiveAttention(query_dim=6, key_dim=5, attn_dim=7)
    keys, query = torch.randn(3, 8, 5), torch.randn(3, 6)
    mask = torch.arange(8) < torch.tensor([[8], [3], [1]])
    context, weights = attention(query, keys, mask)
    assert context.shape == (3, 5) and weights.shape == (3, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    torch.testing.assert_close(context, (weights.unsqueeze(-1) * keys).sum(1))
    again, _ = attention(query, keys, mask, projected_keys=attention.project_keys(keys))
    torch.testing.assert_close(again, context)


def test_multi_head_attention_masks_padding_and_the_future() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(d_model=8, num_heads=2, dropout=0.0)
    x = torch.randn(2, 5, 8)
    padding = torch.arange(5) < torch.tensor([[5], [3]])
    out, weights = attention(x, x, x, key_padding_mask=padding, causal=True, need_weights=True)
    assert out.shape == (2, 5, 8) and weights.shape == (2, 2, 5, 5)
    allowed = padding[:, None, None, :] & causal_mask(5)
    assert (weights[~allowed.expand_as(weights)] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 5))
    # a row without any allowed key (query 0 of a sentence whose only key is masked) gives zeros, not NaN
    out, weights = attention(
        x, x, x, key_padding_mask=torch.tensor([[False, True, True, True, True]] * 2), causal=True, need_weights=True
    )
    assert torch.isfinite(out).all() and (weights[:, :, 0] == 0).all()


def test_multi_head_attention_equals_pytorchs() -> None:
    torch.manual_seed(0)
    ours, reference = MultiHeadAttention(8, 2, 0.0), nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        reference.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        reference.out_proj.load_state_dict(ours.out_proj.state_dict())
    query, memory = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    padding = torch.arange(6) < torch.tensor([[6], [2]])
    out, weights = ours(query, memory, memory, key_padding_mask=padding, need_weights=True)
    expected, expected_weights = reference(query, memory, memory, key_padding_mask=~padding)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights.mean(1), expected_weights)


def test_positional_encodings() -> None:
    encoding = sinusoidal_positions(10, 6)
    assert encoding.shape == (10, 6)
    positions = torch.arange(10.0)
    torch.testing.assert_close(encoding[:, 0], torch.sin(positions))
    torch.testing.assert_close(encoding[:, 3], torch.cos(positions / 10000 ** (2 / 6)))
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    grid = grid_positions(2, 3, 4).view(2, 3, 4)
    assert (grid[0, :, :2] == grid[0, 0, :2]).all() and (grid[:, 0, 2:] == grid[0, 0, 2:]).all()  # row | column
    assert not torch.equal(grid[0, 0], grid[1, 0]) and not torch.equal(grid[0, 0], grid[0, 1])


# -- the models


@pytest.mark.parametrize("name", sorted(MODELS))
def test_teacher_forcing_shapes(name: str) -> None:
    model = _model(name)
    src, src_mask = _inputs(name)
    tgt_in = _targets(3, 5)
    logits, attention = model(src, src_mask, tgt_in, return_attention=True)
    assert logits.shape == (3, 5, TGT_VOCAB)
    if name not in ATTENTION:
        assert attention is None
    else:
        source_positions = (IMAGE_SIZE // 8) ** 2 if name in CAPTIONERS else src.shape[1]
        assert attention.shape == (3, 5, source_positions)
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, 5))
        if src_mask is not None:
            assert (attention.masked_select(~src_mask.unsqueeze(1)) == 0).all()
    state = model.encode(src, src_mask)
    assert all(value.shape[0] == 3 for value in state.values())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decode_steps_reproduce_teacher_forcing(name: str) -> None:
    model = _model(name)
    src, src_mask = _inputs(name)
    tgt_in = _targets(3, 6)
    with torch.no_grad():
        expected = model(src, src_mask, tgt_in).log_softmax(-1)
        state, steps = model.encode(src, src_mask), []
        for t in range(tgt_in.shape[1]):
            log_probs, state, _ = model.decode_step(tgt_in[:, t], state)
            steps.append(log_probs)
    torch.testing.assert_close(torch.stack(steps, 1), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_beam_of_width_one_is_greedy_decoding(name: str) -> None:
    model = _model(name)
    src, src_mask = _inputs(name, batch=6 if name in TRANSLATORS else 3)
    max_len = torch.tensor([9, 5, 12, 7, 3, 8][: src.shape[0]])
    greedy, attentions = greedy_decode(model, src, src_mask, BOS, EOS, max_len)
    assert greedy == beam_search(model, src, src_mask, BOS, EOS, max_len, beam_width=1, length_penalty=0.6)
    assert all(len(tokens) <= limit for tokens, limit in zip(greedy, max_len.tolist(), strict=True))
    assert (attentions is None) == (name not in ATTENTION)
    if attentions is not None:
        assert [a.shape[0] for a in attentions] == [len(tokens) for tokens in greedy]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_wider_beam_scores_at_least_as_well_as_greedy(name: str) -> None:
    """Beam search is not guaranteed to beat greedy decoding (greedy's prefix can drop out of the beam, and
    with a length penalty the stopping rule is a heuristic), so one search error in 8 sentences is tolerated."""
    model = _model(name)
    if name in CAPTIONERS:
        src, src_mask = torch.rand(8, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(3)), None
    else:
        src, src_mask = _sources([7, 4, 1, 5, 6, 2, 3, 5], seed=3)
    max_len = 8
    greedy, _ = greedy_decode(model, src, src_mask, BOS, EOS, max_len)
    beam = beam_search(model, src, src_mask, BOS, EOS, max_len, beam_width=4, length_penalty=0.6)
    gains = []
    for i in range(src.shape[0]):
        one_src, one_mask = src[i : i + 1], None if src_mask is None else src_mask[i : i + 1]
        gains.append(
            _score(model, one_src, one_mask, beam[i], max_len) - _score(model, one_src, one_mask, greedy[i], max_len)
        )
    assert sum(gain < -1e-5 for gain in gains) <= 1
    assert sum(gains) > 0


def test_beam_search_restores_training_mode_and_accepts_per_sentence_limits() -> None:
    model = _model("attention_gru").train()
    src, src_mask = _sources([5, 3])
    tokens = beam_search(model, src, src_mask, BOS, EOS, torch.tensor([2, 4]), beam_width=3, length_penalty=1.0)
    assert model.training
    assert len(tokens[0]) <= 2 and len(tokens[1]) <= 4


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
def test_padding_does_not_change_the_logits(name: str) -> None:
    model = _model(name)
    lengths = [5, 2, 4]
    tgt_in = _targets(3, 4)
    with torch.no_grad():
        tight = model(*_sources(lengths), tgt_in)
        loose = model(*_sources(lengths, pad_to=9), tgt_in)
    torch.testing.assert_close(tight, loose, atol=1e-5, rtol=0)


def test_transformer_decoder_is_causal() -> None:
    model = _model("transformer")
    src, src_mask = _sources([6, 3])
    tgt_in = _targets(2, 7)
    changed = tgt_in.clone()
    changed[:, 4] = (changed[:, 4] + 1 - 3) % (TGT_VOCAB - 3) + 3
    with torch.no_grad():
        before, after = model(src, src_mask, tgt_in), model(src, src_mask, changed)
    torch.testing.assert_close(before[:, :4], after[:, :4], atol=1e-6, rtol=0)
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_captioner_grid_is_eight_by_eight_for_three_stages() -> None:
    model = _model("show_attend_tell")
    grid = model.features(torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE))
    assert grid.shape == (2, 64, 8)


# -- learning


def _reversal_data(num: int = 64, vocab: int = 12) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random sequences of length 3-6 over tokens 3..vocab-1; the target is the sequence reversed, then eos."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 7, (num,), generator=generator).tolist()
    src = torch.full((num, max(lengths)), PAD)
    tgt_out = torch.full((num, max(lengths) + 1), PAD)
    for i, length in enumerate(lengths):
        sequence = torch.randint(3, vocab, (length,), generator=generator)
        src[i, :length] = sequence
        tgt_out[i, :length] = sequence.flip(0)
        tgt_out[i, length] = EOS
    tgt_in = torch.cat([torch.full((num, 1), BOS), tgt_out[:, :-1]], dim=1)
    tgt_in[tgt_in == EOS] = PAD  # bos + the reversed sequence: eos is never an input
    return src, src != PAD, tgt_in, tgt_out


@pytest.mark.parametrize(("name", "steps", "lr"), [("attention_gru", 100, 1e-2), ("transformer", 150, 1e-3)])
def test_attention_models_learn_to_reverse(name: str, steps: int, lr: float) -> None:
    torch.manual_seed(0)
    vocab = 12
    if name == "transformer":
        model = TransformerSeq2Seq(vocab, vocab, 64, 4, 2, 2, 128, 0.0, 16, PAD)
    else:
        model = RNNSeq2Seq(vocab, vocab, "gru", 32, 64, 1, True, 0.0, True, PAD)
    src, src_mask, tgt_in, tgt_out = _reversal_data(vocab=vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(src, src_mask, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(src, src_mask, tgt_in).argmax(-1)
    real = tgt_out != PAD
    assert (predictions == tgt_out)[real].float().mean() >= 0.95
    decoded, _ = greedy_decode(model, src, src_mask, BOS, EOS, max_len=8)
    expected = [row[row != PAD].flip(0).tolist() for row in src]
    assert sum(d == e for d, e in zip(decoded, expected, strict=True)) >= math.floor(0.9 * len(expected))
