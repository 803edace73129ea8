"""Text handling for the sequence family: tokenizers, their inverses and a vocabulary.

Two tokenizers: :class:`WordTokenizer` (the functions below) and :class:`SubwordTokenizer`,
sentencepiece's BPE (Sennrich et al. 2016's subword units) trained on a corpus. A
:class:`Vocabulary` carries the tokenizer its tokens came from, so text <-> ids needs only it.

Tokens are words (Unicode ``\\w+``, so German umlauts and ``ß`` stay inside words) and single
punctuation marks. Their spacing follows a default rule: a space between tokens, but none before
``. , ; : ! ? )`` and none after ``(``. Text written in that style (``Der Mann sieht den Hund,
weil die Frau schläft.``) tokenizes to bare tokens, exactly as before: ``Der``, ``Mann``, ...,
``Hund``, ``,``, ..., ``.``. Where the text departs from the rule, the punctuation mark at that
boundary carries a marker, as OpenNMT's tokenizer annotates joiners (and spacers): ``￭`` (U+FFED,
the joiner) = glued although the rule puts a space, ``▁`` (U+2581, OpenNMT's spacer) = a space
although the rule glues; before the mark (``￭-``) for its left side, after it (``-￭``) for its
right side. So ``T-Shirt`` -> ``T ￭-￭ Shirt``, ``3,50`` -> ``3 ,￭ 50``, ``geht's`` -> ``geht ￭'￭
s``, ``"Hallo"`` -> ``"￭ Hallo ￭"``, ``a , b`` -> ``a ▁, b``. Words never carry a marker (two
words always have whitespace between them), so the vocabulary keeps one entry per word and the
number of tokens is the same as without markers (``tokenize`` still measures length in words and
marks). ``detokenize(tokenize(s)) == " ".join(s.split())`` for any text ``s``, and ``detokenize``
of bare tokens (``["Der", "Hund", ",", ...]``, as the grammar corpus builds sentences) applies
the default rule alone. :func:`plain_tokens` gives the tokens without markers.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
WORD_PATTERN = re.compile(r"\w+")
ATTACH_LEFT = frozenset(".,;:!?)")  # glued to the previous token
ATTACH_RIGHT = frozenset("(")  # glued to the next token
JOINER = "\uffed"  # ￭: glued to its neighbour on that side, although the default rule puts a space
SPACER = "\u2581"  # ▁: a space on that side, although the default rule glues
MARKERS = frozenset((JOINER, SPACER))

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIALS))  # 0, 1, 2, 3


def plain_tokens(text: str) -> list[str]:
    """Words and single punctuation marks of ``text`` without spacing markers; whitespace is dropped."""
    return TOKEN_PATTERN.findall(text)


def _default_glue(previous: str, token: str) -> bool:
    """Whether the default rule writes no space between two bare tokens."""
    return token in ATTACH_LEFT or previous in ATTACH_RIGHT


def tokenize(text: str) -> list[str]:
    """Split ``text`` into words and single punctuation marks; whitespace is dropped, and a mark whose
    spacing departs from the default rule carries ``￭`` / ``▁`` on that side (module docstring), so
    :func:`detokenize` restores the text. As many tokens as :func:`plain_tokens`."""
    matches = list(TOKEN_PATTERN.finditer(text))
    bare = [m.group() for m in matches]
    left, right = [""] * len(bare), [""] * len(bare)
    glued = [False] + [matches[i - 1].end() == matches[i].start() for i in range(1, len(bare))]
    for i in range(1, len(bare)):
        if glued[i] != _default_glue(bare[i - 1], bare[i]):
            marker = JOINER if glued[i] else SPACER
            if WORD_PATTERN.fullmatch(bare[i]):  # two words never touch: the previous token is a mark
                right[i - 1] = marker
            else:
                left[i] = marker
    tokens = []
    for i, token in enumerate(bare):
        if token in MARKERS and (left[i] or right[i]):  # a literal ￭ or ▁: mark both sides, unambiguously
            left[i] = left[i] or (JOINER if glued[i] else SPACER)
            right[i] = right[i] or (JOINER if i + 1 == len(bare) or glued[i + 1] else SPACER)
        tokens.append(left[i] + token + right[i])
    return tokens


def split_markers(token: str) -> tuple[str, str, str]:
    """``(left marker, bare token, right marker)`` of a token of :func:`tokenize` (markers may be ``""``)."""
    left = token[0] if len(token) > 1 and token[0] in MARKERS else ""
    rest = token[len(left) :]
    right = rest[-1] if len(rest) > 1 and rest[-1] in MARKERS else ""
    return left, rest[: len(rest) - len(right)], right


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into natural text: the inverse of :func:`tokenize` (``￭`` glues, ``▁`` spaces); between
    bare tokens a space, but none before ``.,;:!?)`` or after ``(``."""
    parts: list[str] = []
    previous, previous_right = None, ""
    for token in tokens:
        left, bare, right = split_markers(token)
        if previous is not None:
            if JOINER in (previous_right, left):
                glue = True
            elif SPACER in (previous_right, left):
                glue = False
            else:
                glue = _default_glue(previous, bare)
            if not glue:
                parts.append(" ")
        parts.append(bare)
        previous, previous_right = bare, right
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

    ``detokenize(tokenize(s))`` is ``s`` with runs of spaces collapsed to one and none at the ends:
    models trained here keep every character as written (``normalization_rule_name="identity"``;
    sentencepiece's default ``nmt_nfkc`` rewrites ``…`` as ``...`` and ``½`` as ``1⁄2``, so a perfect
    translation would not match its reference). ``<unk>`` pieces decode to ``⁇``. The model travels
    as its serialized bytes (``to_dict``: base64, JSON-able).
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
            normalization_rule_name="identity",  # nmt_nfkc would decode "…" as "...", "½" as "1⁄2", NBSP as " "
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
