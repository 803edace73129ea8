"""The language family's known answers: truncated BPTT's state and gradient boundary, BERT's
masking rates, the causal LM's loss and mask, temperature-0 sampling, the classifiers' scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from components.families.language.cells import best_cells, clause_excerpt_start, text_properties
from components.families.language.classification import scores
from components.families.language.corpus import IGNORE, StreamChunks, StreamSampler, mask_tokens
from components.families.language.models import GPT, CharRNN, detach_state
from components.families.language.sampling import next_token, sample


def lstm(vocab: int = 12) -> CharRNN:
    torch.manual_seed(0)
    return CharRNN(vocab, "lstm", embed_dim=8, hidden_dim=16, num_layers=1, dropout=0.0)


# --- truncated BPTT --------------------------------------------------------------------------------


def test_state_is_carried_across_chunks_but_no_gradient_crosses_the_boundary():
    net = lstm()
    first, second = torch.tensor([[4, 5, 4, 5, 4, 5]]), torch.tensor([[6, 7, 6, 7, 6, 7]])
    _, state = net(first)
    carried = detach_state(state)
    assert all(s.grad_fn is None for s in carried)
    logits, _ = net(second, carried)
    assert not torch.allclose(logits, net(second)[0])  # the state reached the next chunk
    F.cross_entropy(logits[0], second[0]).backward()
    assert net.embed.weight.grad[[4, 5]].abs().sum() == 0  # tokens only the first chunk read
    assert net.embed.weight.grad[[6, 7]].abs().sum() > 0

    net.zero_grad()  # control: without the detach the gradient does reach the first chunk
    logits, _ = net(second, net(first)[1])
    F.cross_entropy(logits[0], second[0]).backward()
    assert net.embed.weight.grad[[4, 5]].abs().sum() > 0


def test_carried_state_is_the_state_after_advance_positions():
    net = lstm()
    x = torch.tensor([[4, 5, 6, 7, 8, 9, 10, 11]])
    logits, carried = net(x, None, advance=3)
    _, expected = net(x[:, :3])
    assert all(torch.allclose(a, b) for a, b in zip(carried, expected, strict=True))
    assert torch.allclose(logits, net(x)[0], atol=1e-6)  # splitting the window changes nothing else


@pytest.mark.parametrize(("k1", "k2"), [(4, 4), (4, 10)])
def test_stream_chunks_cover_each_stream_once_in_order(k1, k2):
    ids = torch.arange(200)
    chunks, sampler = StreamChunks(ids, k1, k2), StreamSampler(len(ids), k1, batch_size=3, seed=0)
    items = list(sampler)
    assert len(items) == len(sampler) == 3 * sampler.steps
    predicted: dict[int, list[int]] = {}
    state_at: dict[int, int] = {}  # the stream's position whose state the next chunk starts from
    for step in range(sampler.steps):
        batch = items[3 * step:3 * step + 3]
        assert {j for _, j in batch} == {step}  # chunk j of every stream in batch j
        for base, j in batch:
            item = chunks[(base, j)]
            x, y, advance = item["x"], item["y"], int(item["advance"])
            assert torch.equal(y, x + 1) and len(x) <= k2
            start = int(x[0])
            assert start == state_at.get(base, base)  # the window starts where the carried state is
            assert bool(item["fresh"]) == (j == 0)
            predicted.setdefault(base, []).extend(y[-k1:].tolist())
            state_at[base] = start + advance
    for base, targets in predicted.items():  # every character predicted once, contiguously
        assert targets == list(range(base + 1, base + 1 + sampler.steps * k1))
    starts = sorted(predicted)
    assert starts[1] - starts[0] == sampler.stream_length


def test_streams_split_between_ranks_and_move_with_the_epoch():
    ranks = [StreamSampler(1000, 8, batch_size=2, num_replicas=2, rank=r, seed=0) for r in range(2)]
    assert not {b for b, _ in ranks[0]} & {b for b, _ in ranks[1]}
    sampler = ranks[0]
    offsets = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        offsets.add(next(iter(sampler))[0])
    assert len(offsets) > 1 and all(0 <= o < 8 for o in offsets)


# --- BERT's masking --------------------------------------------------------------------------------


def test_masking_rates_match_bert():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(5, 1000, (400, 500), generator=generator)
    maskable = torch.ones_like(tokens, dtype=torch.bool)
    maskable[:, 0] = False  # [CLS]
    inputs, targets = mask_tokens(tokens, maskable, 0.15, 0.8, 0.1, mask_id=4, first_ordinary=5, vocab_size=1000,
                                  generator=generator)
    chosen = targets != IGNORE
    assert not chosen[:, 0].any()
    assert torch.equal(targets[chosen], tokens[chosen]) and torch.equal(inputs[~chosen], tokens[~chosen])
    n = int(chosen.sum())
    assert abs(n / maskable.sum().item() - 0.15) < 0.003
    masked = (inputs[chosen] == 4).sum().item() / n
    kept = (inputs[chosen] == tokens[chosen]).sum().item() / n
    replaced = 1 - masked - kept
    assert abs(masked - 0.8) < 0.01 and abs(replaced - 0.1) < 0.01 and abs(kept - 0.1) < 0.01
    assert inputs[chosen].min() >= 4  # never a special token


# --- the causal LM ---------------------------------------------------------------------------------


def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(20, d_model=16, num_heads=2, num_layers=2, ffn_dim=32, block_size=16, dropout=0.0).eval()


def test_causal_lm_loss_is_the_mean_of_per_position_cross_entropies():
    net = gpt()
    x = torch.randint(4, 20, (3, 10))
    y = torch.randint(4, 20, (3, 10))
    with torch.no_grad():
        logits = net(x)
    per_position = [-torch.log_softmax(logits[b, t], -1)[y[b, t]] for b in range(3) for t in range(10)]
    assert math.isclose(float(F.cross_entropy(logits.flatten(0, 1), y.flatten())),
                        float(torch.stack(per_position).mean()), rel_tol=1e-5)


def test_a_later_token_does_not_change_earlier_logits():
    net = gpt()
    x = torch.randint(4, 20, (1, 12))
    changed = x.clone()
    changed[0, 7] = 4 if x[0, 7] != 4 else 5
    a, b = net(x), net(changed)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


# --- sampling --------------------------------------------------------------------------------------


def test_temperature_zero_is_the_argmax_and_tiny_temperatures_agree():
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(0))
    logits[:, 2] = 100.0  # a special token (eos) is never drawn, however likely
    expected = logits[:, 4:].argmax(-1) + 4
    assert torch.equal(next_token(logits, 0.0), expected)
    assert torch.equal(next_token(logits, 1e-4, torch.Generator().manual_seed(1)), expected)


@pytest.mark.parametrize("make", [lstm, gpt])
def test_greedy_sampling_follows_the_argmax_step_by_step(make):
    net = make().eval()
    prompt = torch.tensor([5, 6])
    out = sample(net, prompt, 6, 0.0)
    ids = prompt.tolist()
    for token in out:
        logits = net(torch.tensor([ids]))
        logits = (logits[0] if isinstance(logits, tuple) else logits)[0, -1]
        assert token == int(logits[4:].argmax()) + 4
        ids.append(token)


# --- classification scores and interpretable cells --------------------------------------------------


def test_scores_of_perfect_predictions_and_agreement_with_scikit_learn():
    perfect = torch.diag(torch.tensor([5.0, 3.0, 2.0]))
    assert scores(perfect) == {"accuracy": 1.0, "macro_f1": 1.0}
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    confusion = torch.zeros(3, 3)
    for t, p in zip(true, predicted, strict=True):
        confusion[t, p] += 1
    result = scores(confusion)
    assert math.isclose(result["macro_f1"], f1_score(true, predicted, average="macro"), rel_tol=1e-9)
    assert math.isclose(result["accuracy"], float((true == predicted).mean()))


def test_text_properties_and_the_best_cell():
    text = "Before the dog runs, a cat sleeps.\nThe cat sleeps.\n"
    props = text_properties(text)
    assert props["line_position"][text.index("\nThe") + 1] == 0
    assert props["line_position"][3] == 3
    assert props["word_position"][text.index("dog") + 2] == 3 and props["word_position"][6] == 0
    comma = text.index(",")
    assert props["comma_due"][:comma + 1].all() and not props["comma_due"][comma + 1:].any()
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(len(text), 5))
    activations[:, 3] = -props["line_position"] + 0.01 * rng.normal(size=len(text))
    unit, r = best_cells(activations, props)["line_position"]
    assert unit == 3 and r < -0.99
    lines = "The cat sleeps.\nA dog runs.\nBefore the dog runs, a cat sleeps.\n"
    assert lines[clause_excerpt_start(lines):].startswith("Before") and clause_excerpt_start("No.\n") == 0


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_equals_the_written_out_one(causal):
    from components.families.language.models import fused_self_attention
    from components.nn.attention import MultiHeadAttention

    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4, dropout=0.0)
    x = torch.randn(3, 9, 16)
    padding = torch.ones(3, 9, dtype=torch.bool)
    padding[1, 6:] = False  # a shorter sequence
    written = attention(x, x, x, key_padding_mask=padding, causal=causal)[0]
    assert torch.allclose(fused_self_attention(attention, x, padding, causal), written, atol=1e-6)


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_codec_counts_every_character_once_and_round_trips(tokenizer):
    from components.families.language.corpus import TextCodec, join_lines

    sentences = ["The small dog sees the cat.", "Before the cooks buy this table, a dog sleeps.",
                 "My friends say that the bird laughs."] * 20
    codec = TextCodec.train(sentences, tokenizer, vocab_size=60)
    text = join_lines(sentences[:3])
    ids = codec.encode(text)
    assert float(codec.chars[ids].sum()) == len(text)  # bits per character divide by the true count
    assert codec.decode(ids.tolist()) == text
    assert (len(ids) < len(text)) == (tokenizer == "bpe")


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_a_training_step_and_evaluation_with_either_tokenizer(workdir, tiny_params, tokenizer):
    """The real task on a small grammar corpus: one TBPTT step and the val scores; an untrained
    model's bits per character sit near the uniform rate over its tokens (chars per token apart)."""
    from components.config import parse_params
    from components.data.translation import build_grammar_corpus
    from components.families.language.lm_task import build_task
    from components.train.harness import build_loaders

    build_grammar_corpus(workdir / "data" / "grammar_en_de", seed=0, num_train=120, num_val=20, num_test=20,
                         min_words=4, max_words=20, num_longer=0, longer_max_words=25, lexicon_fraction=0.4)
    tiny_params["language"].update(tokenizer=tokenizer, vocab_size=120)
    params = parse_params(tiny_params)
    task = build_task("char_lstm", params)
    sampler, train, val = build_loaders(task, params.language.trainer, 0, 1, 0)
    task.setup(torch.device("cpu"), lambda net, **_: net, len(train))
    assert torch.isfinite(task.train_step(next(iter(train)))["loss"])
    scores = task.evaluate(val)
    chars_per_token = float(task.codec.chars[task.val_ids].sum()) / len(task.val_ids)
    uniform = math.log2(len(task.vocab)) / chars_per_token
    assert 0.5 * uniform < scores["bits_per_char"] < 1.5 * uniform
    assert ("cell_correlation/line_position" in scores) == (tokenizer == "char")
    assert (chars_per_token > 1.5) == (tokenizer == "bpe")
