"""The language models' data: a corpus' text as characters or words, the truncated-BPTT streams,
fixed-length blocks, scoring segments, sentences for BERT, and BERT's masking.

Text: the sentences of one side of a prepared parallel corpus (``language.column``), one per line,
each line ended by ``\\n``. Its tokens (characters, or BPE pieces: :class:`TextCodec`) form a
:class:`~components.data.text.Vocabulary` built from the train split (a token it has not seen
becomes ``<unk>``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from components.data.schema import read_split
from components.data.text import SPECIALS, SubwordTokenizer, Vocabulary, tokenize

MASK = "<mask>"  # BERT's [MASK] token, the first ordinary token of a word vocabulary
IGNORE = -100  # a target that is not scored (cross_entropy's ignore_index)
NEWLINE = "\n"  # ends every line of the text


def split_sentences(directory: Path, split: str, column: str) -> list[str]:
    """The sentences of one side (``column``) of a prepared parallel corpus' split."""
    return read_split(directory, split, [column]).column(column).to_pylist()


def join_lines(sentences: Sequence[str]) -> str:
    return "".join(f"{s}\n" for s in sentences)


def char_vocabulary(text: str) -> Vocabulary:
    """Every character of ``text``, most frequent first (ties by code point), after the specials."""
    return Vocabulary.build([list(text)])


def encode_chars(vocab: Vocabulary, text: str) -> Tensor:
    return torch.tensor(vocab.encode(list(text), add_eos=False), dtype=torch.long)


def decode_chars(vocab: Vocabulary, ids: Sequence[int]) -> str:
    """Characters of ``ids``; specials (never sampled) show as ``?``."""
    return "".join(vocab.itos[i] if i >= len(SPECIALS) else "?" for i in ids)


class TextCodec:
    """The causal models' tokens: characters, or sentencepiece BPE pieces of each line followed by
    a ``\n`` token (``language.tokenizer``). ``chars`` counts the characters each token stands for,
    so bits per character are comparable across tokenizers: a piece's ``▁`` is the space (or, at a
    line's start, the line break) before it, and the ``\n`` token counts 0, so a line's tokens sum
    to the characters of ``line + "\n"``."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.subword = isinstance(vocab.tokenizer, SubwordTokenizer)
        lengths = [1 if i < len(SPECIALS) else len(t) for i, t in enumerate(vocab.itos)]
        if self.subword:
            lengths[vocab.stoi[NEWLINE]] = 0
        self.chars = torch.tensor(lengths, dtype=torch.float64)

    @classmethod
    def train(cls, sentences: Sequence[str], tokenizer: str, vocab_size: int) -> TextCodec:
        if tokenizer == "char":
            return cls(char_vocabulary(join_lines(sentences)))
        splitter = SubwordTokenizer.train(sentences, vocab_size)
        return cls(Vocabulary.build([*(splitter.tokenize(s) for s in sentences), [NEWLINE]], tokenizer=splitter))

    def tokens(self, text: str) -> list[str]:
        if not self.subword:
            return list(text)
        lines = text.split(NEWLINE)
        out: list[str] = []
        for i, line in enumerate(lines):
            out += self.vocab.tokenizer.tokenize(line) if line else []
            if i < len(lines) - 1:
                out.append(NEWLINE)
        return out

    def encode(self, text: str) -> Tensor:
        return torch.tensor(self.vocab.encode(self.tokens(text), add_eos=False), dtype=torch.long)

    def decode(self, ids: Sequence[int]) -> str:
        if not self.subword:
            return decode_chars(self.vocab, ids)
        pieces = [self.vocab.itos[i] if i >= len(SPECIALS) else "?" for i in ids]
        lines, line = [], []
        for piece in pieces:
            if piece == NEWLINE:
                lines.append(self.vocab.tokenizer.detokenize(line))
                line = []
            else:
                line.append(piece)
        return NEWLINE.join([*lines, self.vocab.tokenizer.detokenize(line)])


# --- truncated BPTT ------------------------------------------------------------------------------


class StreamChunks(Dataset):
    """Chunks of parallel text streams for truncated BPTT.

    An item is ``(stream_start, j)``: the ``j``-th chunk of the stream starting at character
    ``stream_start``. It holds the ``k1`` new characters to predict (inputs ``x``, targets ``y``
    shifted by one) after up to ``k2 - k1`` characters of context the previous chunks already
    predicted: the loss of the last ``k1`` positions is backpropagated through all of ``x`` (at most
    ``k2`` steps). ``advance``: after how many positions of ``x`` the next chunk's window starts,
    i.e. where the hidden state to carry forward is taken; ``fresh``: the stream's first chunk
    (start from a zero state).
    """

    def __init__(self, ids: Tensor, k1: int, k2: int) -> None:
        self.ids, self.k1, self.k2 = ids, k1, k2

    def __len__(self) -> int:  # the sampler decides which items exist; this bounds them
        return len(self.ids)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Tensor]:
        base, j = item
        end = base + (j + 1) * self.k1
        start = max(base, end - self.k2)
        following = max(base, end + self.k1 - self.k2)
        return {"x": self.ids[start:end], "y": self.ids[start + 1:end + 1],
                "advance": torch.tensor(following - start), "fresh": torch.tensor(j == 0)}


class StreamSampler(Sampler[tuple[int, int]]):
    """The order truncated BPTT needs: the text cut into ``batch_size * num_replicas`` contiguous
    streams, this rank's ``batch_size`` of them read side by side, chunk ``j`` of every stream in
    batch ``j``. Each epoch shifts every stream's start by a seeded offset below ``k1``, so chunk
    boundaries move between epochs."""

    def __init__(self, length: int, k1: int, batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0) -> None:
        streams = batch_size * num_replicas
        self.stream_length = (length - 1 - k1) // streams  # room for the offset and the last target
        self.steps = self.stream_length // k1
        if self.steps < 1:
            raise ValueError(f"a text of {length} characters is too short for {streams} streams of {k1}-character "
                             "chunks: lower the batch size or k1")
        self.k1, self.batch_size, self.rank, self.seed = k1, batch_size, rank, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batch_size * self.steps

    def __iter__(self) -> Iterator[tuple[int, int]]:
        offset = random.Random(self.seed + self.epoch).randrange(self.k1)
        first = self.rank * self.batch_size
        starts = [offset + s * self.stream_length for s in range(first, first + self.batch_size)]
        for j in range(self.steps):
            for base in starts:
                yield base, j


class Blocks(Dataset):
    """Non-overlapping blocks of ``block_size`` tokens (inputs) and the same shifted by one (targets)."""

    def __init__(self, ids: Tensor, block_size: int) -> None:
        self.ids, self.block_size = ids, block_size

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.block_size

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        start = index * self.block_size
        return {"x": self.ids[start:start + self.block_size], "y": self.ids[start + 1:start + self.block_size + 1]}


class Segments(Blocks):
    """The val text in segments of ``segment`` characters, each scored from a fresh state: every
    model is scored on the same characters with the same context available (the segment so far)."""


# --- words and BERT's masking ---------------------------------------------------------------------


def word_vocabulary(sentences: Sequence[str]) -> Vocabulary:
    """Words and punctuation of ``sentences`` (``text.tokenize``), after the specials and [MASK]."""
    counted = Vocabulary.build(tokenize(s) for s in sentences)
    return Vocabulary([MASK, *counted.itos[len(SPECIALS):]])


def encode_words(vocab: Vocabulary, sentence: str, max_words: int) -> list[int]:
    """[CLS] (``<bos>``) followed by the sentence's first ``max_words`` word ids."""
    return [vocab.bos_id] + vocab.encode(tokenize(sentence)[:max_words], add_eos=False)


class WordSequences(Dataset):
    """Encoded sentences (``[CLS] w1 ... wn``), optionally with a label each."""

    def __init__(self, sequences: list[list[int]], labels: Sequence[int] | None = None) -> None:
        self.sequences, self.labels = sequences, labels

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = {"tokens": torch.tensor(self.sequences[index]), "index": torch.tensor(index)}
        if self.labels is not None:
            item["label"] = torch.tensor(self.labels[index])
        return item


def pad_words(items: list[dict[str, Tensor]], pad_id: int) -> dict[str, Tensor]:
    """Collate: tokens padded to the longest (B, L), ``mask`` True on real tokens, ``length``."""
    tokens = torch.nn.utils.rnn.pad_sequence([i["tokens"] for i in items], batch_first=True, padding_value=pad_id)
    batch = {"tokens": tokens, "mask": tokens != pad_id, "length": torch.tensor([len(i["tokens"]) for i in items]),
             "index": torch.stack([i["index"] for i in items])}
    if "label" in items[0]:
        batch["label"] = torch.stack([i["label"] for i in items])
    return batch


def mask_tokens(tokens: Tensor, maskable: Tensor, rate: float, p_mask: float, p_random: float, mask_id: int,
                first_ordinary: int, vocab_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """BERT's corruption: each ``maskable`` token is chosen with probability ``rate``; a chosen token
    becomes ``mask_id`` with probability ``p_mask``, a uniformly random ordinary token (ids
    ``first_ordinary..vocab_size-1``) with ``p_random``, and stays itself otherwise.
    Returns (inputs, targets): targets hold the original id at chosen positions, ``IGNORE`` elsewhere."""
    chosen = (torch.rand(tokens.shape, generator=generator) < rate) & maskable
    how = torch.rand(tokens.shape, generator=generator)
    random_ids = torch.randint(first_ordinary, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(chosen & (how < p_mask), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(chosen & (how >= p_mask) & (how < p_mask + p_random), random_ids, inputs)
    return inputs, torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
