"""The embedded grammaticality dataset (``data.word_order``): English sentences of the grammar corpus,
half of them with two adjacent words swapped (``The dog sees the cat.`` / ``The dog sees cat the.``).

Each split draws from the same split of ``grammar_en_de`` (its ``source`` column), so no sentence
crosses splits. Labels: 0 = ``swapped``, 1 = ``original``. Written as ``TEXT_CLASSIFICATION``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from components.data.schema import SPLITS, DatasetMeta, read_split, write_text_classification
from components.data.text import detokenize, tokenize
from components.errors import UserError

CLASS_NAMES = ["swapped", "original"]
SWAPPED, ORIGINAL = range(len(CLASS_NAMES))
WORD = re.compile(r"\w+")


def _is_word(token: str) -> bool:
    return WORD.fullmatch(token) is not None


def swap_positions(tokens: list[str]) -> list[int]:
    """Indices i where ``tokens[i]`` and ``tokens[i + 1]`` are both words that differ case-insensitively."""
    return [i for i in range(len(tokens) - 1)
            if _is_word(tokens[i]) and _is_word(tokens[i + 1]) and tokens[i].lower() != tokens[i + 1].lower()]


def swap(tokens: list[str], i: int) -> list[str]:
    """``tokens`` with ``tokens[i]`` and ``tokens[i + 1]`` exchanged; a swap involving the sentence's
    first word keeps sentence case: the new first word is capitalised, the moved one lower-cased."""
    out = list(tokens)
    out[i], out[i + 1] = out[i + 1], out[i]
    first = next(k for k, token in enumerate(tokens) if _is_word(token))
    if i == first:
        out[i] = out[i][:1].upper() + out[i][1:]
        out[i + 1] = out[i + 1][:1].lower() + out[i + 1][1:]
    return out


def _candidates(rows: list[tuple[int, str]], min_words: int) -> list[tuple[int, str, list[str], list[int]]]:
    """(id, sentence, tokens, swap positions) of the distinct sentences with at least ``min_words``
    words, a swap position, and text that ``detokenize`` reproduces (so a swap changes nothing else)."""
    seen: set[str] = set()
    out = []
    for id_, text in rows:
        tokens = tokenize(text)
        positions = swap_positions(tokens)
        if (text in seen or sum(map(_is_word, tokens)) < min_words or not positions
                or detokenize(tokens) != text):
            continue
        seen.add(text)
        out.append((id_, text, tokens, positions))
    return out


def build_word_order(
    out: Path, source: Path, *, seed: int, num_train: int, num_val: int, num_test: int, min_words: int
) -> DatasetMeta:
    """Write the word-order dataset to ``out`` as ``{train,val,test}.parquet`` and ``meta.json``.

    ``source`` is the prepared grammar corpus (``data/grammar_en_de``). Per split, ``num_<split>``
    distinct sentences with at least ``min_words`` word tokens (``\\w+``; punctuation not counted)
    are drawn; the first half of the draw (``n // 2``) gets two adjacent, different words swapped
    at a uniformly chosen position (a swap that would give another corpus sentence is not
    chosen), the rest stay exactly as in the corpus, and the rows are shuffled. Row ids are the
    sentences' ids in ``source``. Same seed and corpus => byte-identical files.
    """
    corpus = {split: read_split(source, split, columns=["id", "source"]) for split in SPLITS}
    rows = {split: list(zip(table.column("id").to_pylist(), table.column("source").to_pylist(), strict=True))
            for split, table in corpus.items()}
    known = {text for split in SPLITS for _, text in rows[split]}  # a "swapped" sentence must be none of these
    sizes = {"train": num_train, "val": num_val, "test": num_test}
    rng = random.Random(seed)
    splits = {}
    for split in SPLITS:
        candidates = []
        for id_, text, tokens, positions in _candidates(rows[split], min_words):
            positions = [i for i in positions if detokenize(swap(tokens, i)) not in known]
            if positions:
                candidates.append((id_, text, tokens, positions))
        if len(candidates) < sizes[split]:
            raise UserError(
                f"word_order: the {split} split of {source} has {len(candidates)} sentences with at least "
                f"{min_words} words, fewer than data.word_order.num_{split} ({sizes[split]}); lower it, or "
                f"data.word_order.min_words, or raise data.grammar_en_de.num_{split} in params.yaml"
            )
        drawn = rng.sample(candidates, sizes[split])
        half = len(drawn) // 2
        split_rows = [(id_, detokenize(swap(tokens, rng.choice(positions))), SWAPPED)
                      for id_, _, tokens, positions in drawn[:half]]
        split_rows += [(id_, text, ORIGINAL) for id_, text, _, _ in drawn[half:]]
        rng.shuffle(split_rows)
        splits[split] = split_rows
    meta = DatasetMeta(
        name="word_order",
        task="text_classification",
        class_names=list(CLASS_NAMES),
        height=0,
        width=0,
        channels=0,
        source=f"grammar_en_de English side, seed {seed}",
        sizes={split: len(splits[split]) for split in SPLITS},
    )
    write_text_classification(out, splits, meta)
    return meta
