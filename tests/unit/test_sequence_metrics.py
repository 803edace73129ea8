"""Known answers of the sequence metrics (sacrebleu BLEU/chrF, buckets, exact match, perplexity)."""

from __future__ import annotations

import math

import pytest

from components.metrics.sequence import (
    bucket_scores,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    length_buckets,
    perplexity,
)

CORPUS = [
    "Der kleine Hund sieht die Katze.",
    "Die Frau, die den Mann kennt, schläft, weil es spät ist.",
    "Ein rotes Auto steht vor dem Haus und der Junge lacht.",
]


def test_bleu_of_a_corpus_against_itself_is_100_with_its_signature():
    score = corpus_bleu(CORPUS, [[s] for s in CORPUS])
    assert score.value == pytest.approx(100.0)
    assert "nrefs:1" in score.signature and "tok:13a" in score.signature and "version:" in score.signature
    assert corpus_chrf(CORPUS, [[s] for s in CORPUS]).value == pytest.approx(100.0)


def test_bleu_is_zero_without_shared_words_and_partial_in_between():
    refs = [[s] for s in CORPUS]
    assert corpus_bleu(["xx yy zz qq rr"] * 3, refs).value == pytest.approx(0.0)
    partial = corpus_bleu([CORPUS[0], "Die Frau schläft.", CORPUS[2]], refs).value
    assert 0 < partial < 100


def test_bleu_uses_every_reference_and_bleu1_counts_unigrams():
    refs = [["a 3 at the top left", "one digit : a small 3"]]
    assert corpus_bleu(["one digit : a small 3"], refs).value == pytest.approx(100.0)
    assert "nrefs:2" in corpus_bleu(["one digit : a small 3"], refs).signature
    # Every unigram matches but no bigram: BLEU-1 is 100 (no brevity penalty); BLEU-4 only gets
    # sacrebleu's default "exp" smoothing of the empty n-gram counts.
    hyp = ["3 small a : digit one"]
    assert corpus_bleu(hyp, refs, max_ngram_order=1).value == pytest.approx(100.0)
    assert corpus_bleu(hyp, refs).value < 15


def test_unequal_reference_counts_are_sacrebleus_variable_references():
    """COCO's images have 5 to 7 captions: every reference of each sentence counts, however many."""
    from sacrebleu.metrics import BLEU

    hyps = ["a red 3 at the top", "two blue digits on grey"]
    score = corpus_bleu(hyps, [["x y z"], ["q", "two blue digits on grey", "r"]])
    direct = BLEU().corpus_score(hyps, [["x y z", "q"], [None, "two blue digits on grey"], [None, "r"]])
    assert score.value == pytest.approx(direct.score) and "nrefs:var" in score.signature
    full = corpus_bleu(hyps, [["a red 3 at the top"], ["q", "r", "two blue digits on grey"]])
    assert full.value == pytest.approx(100)


def test_exact_match_and_perplexity():
    assert exact_match(["a b", "c"], [["a b"], ["d", "c"]]) == 1.0
    assert exact_match(["a b", "c"], [["a b"], ["d"]]) == 0.5
    assert perplexity(10 * math.log(7), 10) == pytest.approx(7.0)  # uniform over 7 words


def test_length_buckets_and_scores():
    buckets = length_buckets([10, 20])
    assert [b.name for b in buckets] == ["len_01-10", "len_11-20", "len_over_20"]
    assert 10 in buckets[0] and 11 in buckets[1] and 500 in buckets[2] and 21 not in buckets[1]
    hyps = [CORPUS[0], "wrong words here entirely", CORPUS[2]]
    refs = [[s] for s in CORPUS]
    scores = bucket_scores(hyps, refs, [5, 15, 25], buckets)
    assert [(s.bucket.name, s.count) for s in scores] == [("len_01-10", 1), ("len_11-20", 1), ("len_over_20", 1)]
    assert scores[0].bleu == pytest.approx(100.0) and scores[0].exact_match == 1.0
    assert scores[1].exact_match == 0.0 and scores[1].bleu < 100
    assert [s.bucket.name for s in bucket_scores(hyps[:1], refs[:1], [5], buckets)] == ["len_01-10"]
