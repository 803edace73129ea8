"""German inflection: articles, der-/ein-word and adjective endings (weak, mixed, strong) by gender,
number and case, relative pronouns, preposition contractions and noun forms (weak masculines, dative plural).
"""

from __future__ import annotations

from components.data.translation.lexicon import Noun

CASES = ("nom", "acc", "dat")
# per case, per gender ("m", "f", "n") or plural ("p")
DEFINITE = {
    "nom": {"m": "der", "f": "die", "n": "das", "p": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "p": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "p": "den"},
}
DER_WORD = {  # endings of dies-
    "nom": {"m": "er", "f": "e", "n": "es", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
EIN_WORD = {  # endings of ein-, mein-, kein-
    "nom": {"m": "", "f": "e", "n": "", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
WEAK = {  # adjective after a der-word, or after a plural ein-word
    "nom": {"m": "e", "f": "e", "n": "e", "p": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "p": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "p": "en"},
}
MIXED = {  # adjective after a singular ein-word
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "en", "f": "en", "n": "en"},
}
STRONG = {  # adjective without a determiner (indefinite plural)
    "nom": {"m": "er", "f": "e", "n": "es", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
RELATIVE = {
    "nom": {"m": "der", "f": "die", "n": "das", "p": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "p": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "p": "denen"},
}
CONTRACTIONS = {
    ("in", "dem"): "im",
    ("in", "das"): "ins",
    ("an", "dem"): "am",
    ("an", "das"): "ans",
    ("zu", "dem"): "zum",
    ("zu", "der"): "zur",
    ("von", "dem"): "vom",
    ("bei", "dem"): "beim",
}
EIN_STEM = {"a": "ein", "my": "mein", "no": "kein"}


def german_noun_form(noun: Noun, case: str, plural: bool) -> str:
    """The noun in ``case``: dative plural adds ``-n`` (not after -n/-s); weak masculines take ``-(e)n``."""
    if plural:
        return noun.de_pl + "n" if case == "dat" and not noun.de_pl.endswith(("n", "s")) else noun.de_pl
    return noun.de_weak if noun.de_weak and case != "nom" else noun.de


def german_determiner(det: str, gender: str, case: str, plural: bool) -> str:
    """German form of the English determiner ``det`` ("the", "a", "this", "my", "no"); "" for plural "a"."""
    g = "p" if plural else gender
    if det == "the":
        return DEFINITE[case][g]
    if det == "this":
        return "dies" + DER_WORD[case][g]
    if det == "a" and plural:
        return ""
    return EIN_STEM[det] + EIN_WORD[case][g]


def german_adjective_ending(det: str, gender: str, case: str, plural: bool) -> str:
    """Weak after der-words and plural ein-words, mixed after singular ein-words, strong with no determiner."""
    if det in ("the", "this"):
        return WEAK[case]["p" if plural else gender]
    if plural:
        return STRONG[case]["p"] if det == "a" else WEAK[case]["p"]
    return MIXED[case][gender]
