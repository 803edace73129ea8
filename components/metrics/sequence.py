"""Sequence metrics: corpus BLEU and chrF by sacrebleu, BLEU-1..4 for captions, BLEU by length bucket.

Every score is computed by sacrebleu on detokenized text with its default ``13a`` tokenization,
so numbers compare with published ones, and every score comes with sacrebleu's signature string
(``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``) that says how it was computed.
References are given per hypothesis (``references[i]`` lists sentence i's references; their
number may vary, as COCO's 5 to 7 captions per image do: sacrebleu skips a stream's ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch.distributed as dist
from sacrebleu.metrics import BLEU, CHRF


@dataclass
class Score:
    """One corpus-level score (0-100) and the sacrebleu signature that defines it."""

    value: float
    signature: str


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence reference lists -> sacrebleu's reference streams (one list per reference index),
    ``None`` where a sentence has fewer references than the most (sacrebleu's variable references)."""
    width = max((len(refs) for refs in references), default=1)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], max_ngram_order: int = 4) -> Score:
    """Corpus BLEU (Papineni et al.) over ``max_ngram_order``-grams: BLEU-4 by default; BLEU-n
    for captioning's BLEU-1..4 (uniform weights over 1..n, brevity penalty)."""
    metric = BLEU(max_ngram_order=max_ngram_order)
    result = metric.corpus_score(list(hypotheses), _streams(references))
    return Score(float(result.score), str(metric.get_signature()))


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Score:
    """Corpus chrF (Popović 2015): character n-gram F-score, beta 2."""
    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), _streams(references))
    return Score(float(result.score), str(metric.get_signature()))


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Fraction of hypotheses identical to one of their references."""
    if not hypotheses:
        return float("nan")
    return sum(h in refs for h, refs in zip(hypotheses, references, strict=True)) / len(hypotheses)


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per target token, natural log)."""
    return math.exp(nll_sum / tokens) if tokens else float("nan")


@dataclass
class Bucket:
    """Sentences whose source length (tokens) lies in ``[low, high]``."""

    low: int
    high: int | None  # None: no upper bound

    @property
    def name(self) -> str:
        # MLflow metric names allow no "+": the open bucket is named after its lower edge.
        return f"len_{self.low:02d}-{self.high:02d}" if self.high is not None else f"len_over_{self.low - 1:02d}"

    def __contains__(self, length: int) -> bool:
        return length >= self.low and (self.high is None or length <= self.high)


def length_buckets(edges: Sequence[int]) -> list[Bucket]:
    """Buckets from ascending upper edges: ``[10, 20]`` -> 1-10, 11-20, over 20."""
    lows = [1, *(e + 1 for e in edges)]
    return [Bucket(low, high) for low, high in zip(lows, [*edges, None], strict=True)]


@dataclass
class BucketScores:
    bucket: Bucket
    count: int
    bleu: float
    exact_match: float


def bucket_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], source_lengths: Sequence[int],
    buckets: Sequence[Bucket],
) -> list[BucketScores]:
    """Corpus BLEU and exact match per source-length bucket (empty buckets are left out)."""
    out = []
    for bucket in buckets:
        idx = [i for i, n in enumerate(source_lengths) if n in bucket]
        if not idx:
            continue
        hyps, refs = [hypotheses[i] for i in idx], [references[i] for i in idx]
        out.append(BucketScores(bucket, len(idx), corpus_bleu(hyps, refs).value, exact_match(hyps, refs)))
    return out


@dataclass
class TextCollector:
    """Hypotheses and references of one rank; :meth:`gathered` joins every rank's (each sentence once)."""

    hypotheses: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    extras: list[int] = field(default_factory=list)  # e.g. source lengths, aligned with hypotheses

    def add(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], extras: Sequence[int] = ()) -> None:
        self.hypotheses += list(hypotheses)
        self.references += [list(r) for r in references]
        self.extras += list(extras)

    def gathered(self) -> TextCollector:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        shards: list = [None] * dist.get_world_size()
        dist.all_gather_object(shards, (self.hypotheses, self.references, self.extras))
        out = TextCollector()
        for hyps, refs, extras in shards:
            out.add(hyps, refs, extras)
        return out
