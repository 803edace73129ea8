"""Text handling for the sequence family: tokenizers, their inverses and a vocabulary.

Two tokenizers: :class:`WordTokenizer` (the functions below) and :class:`SubwordTokenizer`,
sentencepiece's BPE (Sennrich et al. 2016's subword units) trained on a corpus. A
:class:`Vocabulary` carries the tokenizer its tokens came from, so text <-> ids needs only it.

Tokens are words (Unicode ``\\w+``, so German umlauts and ``ß`` stay inside words) and single
punctuation marks. ``detokenize`` joins tokens with spaces but attaches ``. , ; : ! ? )`` to the
previous token and ``(`` to the next one, so ``detokenize(tokenize(s)) == s`` for text written in
that style (``Der Mann sieht den Hund, weil die Frau schläft.``).
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
ATTACH_LEFT = frozenset(".,;:!?)")  # glued to the previous token
ATTACH_RIGHT = frozenset("(")  # glued to the next token

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIALS))  # 0, 1, 2, 3


def tokenize(text: str) -> list[str]:
    """Split ``text`` into words and single punctuation marks; whitespace is dropped."""
    return TOKEN_PATTERN.findall(text)


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into natural text: spaces between words, none before ``.,;:!?)`` or after ``(``."""
    parts: list[str] = []
    glue_next = True  # no space before the first token
    for token in tokens:
        if not (glue_next or token in ATTACH_LEFT):
            parts.append(" ")
        parts.append(token)
        glue_next = token in ATTACH_RIGHT
    return "".join(parts)


class WordTokenizer:
    """Words and single punctuation marks: :func:`tokenize` and :func:`detokenize`."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens)

    def to_dict(self) -> dict:
        return {"kind": "word"}


WORDS = WordTokenizer()


class SubwordTokenizer:
    """sentencepiece's BPE model: text -> subword pieces (``▁`` marks a word start) and back.

    ``detokenize(tokenize(s)) == s`` up to whitespace normalisation; ``<unk>`` pieces decode to
    ``⁇``. The model travels as its serialized bytes (``to_dict``: base64, JSON-able).
    """

    def __init__(self, model: bytes) -> None:
        import sentencepiece  # noqa: PLC0415 (only subword runs load it)

        self.model = model
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=model)

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int) -> SubwordTokenizer:
        """BPE with at most ``vocab_size`` pieces learned from ``sentences`` (fewer when the corpus
        has fewer; one thread, so the same corpus gives the same model)."""
        import sentencepiece  # noqa: PLC0415

        out = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=out, model_type="bpe", vocab_size=vocab_size,
            hard_vocab_limit=False, character_coverage=1.0, num_threads=1, minloglevel=2,
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,  # the Vocabulary adds its own specials
        )
        return cls(out.getvalue())

    def tokenize(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.processor.decode_pieces(list(tokens))

    def to_dict(self) -> dict:
        return {"kind": "bpe", "model": base64.b64encode(self.model).decode("ascii")}


def tokenizer_from_dict(data: dict) -> WordTokenizer | SubwordTokenizer:
    if data["kind"] == "bpe":
        return SubwordTokenizer(base64.b64decode(data["model"]))
    return WORDS


class Vocabulary:
    """A token <-> id map with the special tokens ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3.

    Ordinary tokens follow the specials in a fixed order (see ``build``), so the same corpus always
    gives the same ids. ``to_dict`` / ``from_dict`` round-trip it through JSON (e.g. in a checkpoint).
    """

    def __init__(self, tokens: Iterable[str], tokenizer: WordTokenizer | SubwordTokenizer = WORDS):
        """``tokens``: every ordinary token, in id order (ids 4, 5, ...); specials are added in front.
        ``tokenizer``: what split the text into these tokens (``encode_text``/``decode_text`` use it)."""
        self.tokenizer = tokenizer
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(SPECIALS)}
        for token in tokens:
            if token in self.stoi:
                raise ValueError(f"duplicate or reserved vocabulary token: {token!r}")
            self.stoi[token] = len(self.itos)
            self.itos.append(token)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None,
              tokenizer: WordTokenizer | SubwordTokenizer = WORDS) -> Vocabulary:
        """Count tokens and keep those seen at least ``min_freq`` times, most frequent first (ties by token).

        ``max_size`` caps the total size, the four specials included; ``None`` keeps every token.
        """
        counts = Counter(token for tokens in token_lists for token in tokens if token not in SPECIALS)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(kept, tokenizer)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = True) -> list[int]:
        """Token ids of ``tokens`` (unknown tokens -> ``unk_id``), optionally framed by ``<bos>``/``<eos>``."""
        ids = [self.stoi.get(token, UNK_ID) for token in tokens]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def encode_text(self, text: str) -> list[int]:
        """``text`` tokenized by this vocabulary's tokenizer, then encoded (``<eos>`` last)."""
        return self.encode(self.tokenizer.tokenize(text))

    def decode_text(self, ids: Iterable[int]) -> str:
        """``ids`` decoded (up to ``<eos>``) and detokenized by this vocabulary's tokenizer."""
        return self.tokenizer.detokenize(self.decode(ids))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``, skipping ``<pad>`` and ``<bos>``; bad ids -> ``<unk>``."""
        tokens: list[str] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            tokens.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return tokens

    def to_dict(self) -> dict:
        """JSON-able form: ``{"tokens": [...], "tokenizer": {...}}``, every token in id order, the
        specials first."""
        return {"tokens": list(self.itos), "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        tokens = list(data["tokens"])
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with the special tokens {list(SPECIALS)}, got {tokens[:4]}")
        return cls(tokens[len(SPECIALS) :], tokenizer_from_dict(data.get("tokenizer", {"kind": "word"})))
