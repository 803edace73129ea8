"""Sentence trees (noun phrases, prepositional phrases, clauses, sentences) and their rendering as
English and as German natural text (word order, case government, commas, capitalisation).
"""

from __future__ import annotations

from components.data.text import detokenize
from components.data.translation.lexicon import (
    ADJECTIVE_BY_EN,
    NOUN_BY_EN,
    PREPOSITIONS,
    RELATIVE_EN,
    Adjective,
    Adverb,
    Conjunction,
    Noun,
    Preposition,
    Verb,
)
from components.data.translation.morphology import (
    CONTRACTIONS,
    RELATIVE,
    german_adjective_ending,
    german_determiner,
    german_noun_form,
)

# ------------------------------------------------------------------------------------- syntax trees


class NP:
    """A noun phrase: determiner, up to two adjectives, noun, then one PP or one relative clause."""

    __slots__ = ("noun", "det", "plural", "adjs", "pp", "rel", "depth")

    def __init__(self, noun: Noun, det: str, plural: bool, depth: int):
        self.noun, self.det, self.plural, self.depth = noun, det, plural, depth
        self.adjs: list[Adjective] = []
        self.pp: PP | None = None
        self.rel: Clause | None = None


class PP:
    __slots__ = ("prep", "np")

    def __init__(self, prep: Preposition, np: NP):
        self.prep, self.np = prep, np


class Clause:
    """One clause. ``role``: "main", "sub", "comp" (that/whether) or "rel". A relative clause has
    ``head`` (the NP it modifies) and ``gap``: "subj" (head is the subject) or "obj" (head is the object)."""

    __slots__ = ("verb", "subj", "obj", "comp", "adv", "pps", "role", "depth", "head", "gap")

    def __init__(self, verb: Verb, subj: NP | None, obj: NP | None, role: str, depth: int):
        self.verb, self.subj, self.obj, self.role, self.depth = verb, subj, obj, role, depth
        self.comp: Clause | None = None
        self.adv: Adverb | None = None
        self.pps: list[PP] = []
        self.head: NP | None = None
        self.gap = ""

    def plural_subject(self) -> bool:
        return (self.head if self.gap == "subj" else self.subj).plural


class Sentence:
    """A first main clause (optionally after a fronted adverb or a preposed subordinate clause),
    then (conjunction, clause) pairs: main clauses after a coordinator, subordinate clauses after a subordinator."""

    __slots__ = ("first", "fronted", "preposed", "rest")

    def __init__(self, first: Clause):
        self.first = first
        self.fronted = False  # first.adv opens the sentence
        self.preposed: tuple[Conjunction, Clause] | None = None
        self.rest: list[tuple[Conjunction, Clause]] = []


# ---------------------------------------------------------------------------------------- English


def _en_np(np: NP) -> list[str]:
    words = [a.en for a in np.adjs] + [np.noun.en_pl if np.plural else np.noun.en]
    det = np.det
    if det == "a":
        head = [] if np.plural else ["an" if words[0][0] in "aeiou" else "a"]
    elif det == "this":
        head = ["these" if np.plural else "this"]
    else:
        head = [det]
    out = head + words
    if np.pp is not None:
        out += _en_pp(np.pp)
    if np.rel is not None:
        out += _en_clause(np.rel)
    return out


def _en_pp(pp: PP) -> list[str]:
    return pp.prep.en.split() + _en_np(pp.np)


def _en_clause(c: Clause, drop_adverb: bool = False) -> list[str]:
    """English order: [that] subject [freq adverb] verb object PPs [end adverb] [that/whether clause]."""
    verb = (c.verb.en_pl if c.plural_subject() else c.verb.en).split()
    adv = None if drop_adverb else c.adv
    freq = [adv.en] if adv is not None and adv.kind == "freq" else []
    end = [adv.en] if adv is not None and adv.kind == "end" else []
    out = [RELATIVE_EN] if c.role == "rel" else []
    if c.gap != "subj":
        out += _en_np(c.subj)
    out += freq + verb
    if c.obj is not None and c.gap != "obj":
        out += _en_np(c.obj)
    for pp in c.pps:
        out += _en_pp(pp)
    out += end
    if c.comp is not None:
        out += _en_clause(c.comp)
    return out


def _en_sentence(s: Sentence) -> list[str]:
    out: list[str] = []
    if s.preposed is not None:
        conj, clause = s.preposed
        out += [conj.en] + _en_clause(clause) + [","] + _en_clause(s.first)
    elif s.fronted:
        out += [s.first.adv.en] + _en_clause(s.first, drop_adverb=True)
    else:
        out += _en_clause(s.first)
    for conj, clause in s.rest:
        out += ([","] if conj.en == "but" else []) + [conj.en] + _en_clause(clause)
    return _finish(out)


# ----------------------------------------------------------------------------------------- German


def _de_np(np: NP, case: str) -> list[str]:
    g = np.noun.gender
    det = german_determiner(np.det, g, case, np.plural)
    ending = german_adjective_ending(np.det, g, case, np.plural)
    out = ([det] if det else []) + [a.de + ending for a in np.adjs]
    out.append(german_noun_form(np.noun, case, np.plural))
    if np.pp is not None:
        out += _de_pp(np.pp.prep.de, np.pp.prep.case, np.pp.np)
    if np.rel is not None:
        out += _de_relative(np.rel)
    return out


def _de_pp(prep: str, case: str, np: NP) -> list[str]:
    """``prep`` + the NP in ``case``; a singular definite article contracts (in dem -> im)."""
    tokens = _de_np(np, case)
    if np.det == "the" and not np.plural and (prep, tokens[0]) in CONTRACTIONS:
        return [CONTRACTIONS[prep, tokens[0]]] + tokens[1:]
    return [prep] + tokens


def _de_object(c: Clause) -> list[str]:
    if c.obj is None or c.gap == "obj":
        return []
    if c.verb.kind == "prep":
        return _de_pp(c.verb.de_prep, c.verb.de_case, c.obj)
    return _de_np(c.obj, c.verb.kind)  # "acc" or "dat"


def _de_clause(c: Clause, order: str, drop_adverb: bool = False) -> list[str]:
    """``order``: "main" (S V ...), "inverted" (V S ..., after a fronted element) or "final" (S ... V)."""
    subj = _de_np(c.subj, "nom")
    verb = [c.verb.de_pl if c.plural_subject() else c.verb.de]
    adv = [c.adv.de] if c.adv is not None and not drop_adverb else []
    middle = adv + _de_object(c)
    for pp in c.pps:
        middle += _de_pp(pp.prep.de, pp.prep.case, pp.np)
    if order == "main":
        out = subj + verb + middle
    elif order == "inverted":
        out = verb + subj + middle
    else:
        out = subj + middle + verb
    if c.comp is not None:  # extraposed after the verb
        out += [",", c.verb.de_prep] + _de_clause(c.comp, "final")
    return out


def _de_relative(c: Clause) -> list[str]:
    """``, der die Katze sieht,`` / ``, den die Frau sieht,`` / ``, auf den der Mann wartet,`` (verb-final)."""
    head = c.head
    g = "p" if head.plural else head.noun.gender
    verb = [c.verb.de_pl if c.plural_subject() else c.verb.de]
    adv = [c.adv.de] if c.adv is not None else []
    pps = [t for pp in c.pps for t in _de_pp(pp.prep.de, pp.prep.case, pp.np)]
    if c.gap == "subj":
        return [",", RELATIVE["nom"][g]] + adv + _de_object(c) + pps + verb + [","]
    if c.verb.kind == "prep":
        pronoun = [c.verb.de_prep, RELATIVE[c.verb.de_case][g]]
    else:
        pronoun = [RELATIVE[c.verb.kind][g]]
    return [","] + pronoun + _de_np(c.subj, "nom") + adv + pps + verb + [","]


def _de_sentence(s: Sentence) -> list[str]:
    out: list[str] = []
    if s.preposed is not None:
        conj, clause = s.preposed
        out += [conj.de] + _de_clause(clause, "final") + [","] + _de_clause(s.first, "inverted")
    elif s.fronted:
        out += [s.first.adv.de] + _de_clause(s.first, "inverted", drop_adverb=True)
    else:
        out += _de_clause(s.first, "main")
    previous = s.first
    for conj, clause in s.rest:
        if clause.role == "sub":
            out += [",", conj.de] + _de_clause(clause, "final")
        else:  # a comma before aber, and to close a preceding dependent clause before und/oder
            comma = conj.de == "aber" or previous.role == "sub" or previous.comp is not None
            out += ([","] if comma else []) + [conj.de] + _de_clause(clause, "main")
        previous = clause
    return _finish(out)


def _finish(tokens: list[str]) -> list[str]:
    """Add the full stop, drop a comma before another comma or the full stop, capitalise the first word."""
    tokens = tokens + ["."]
    out = [t for t, nxt in zip(tokens, tokens[1:] + [""], strict=True) if not (t == "," and nxt in (",", "."))]
    out[0] = out[0][:1].upper() + out[0][1:]
    return out


def render_pair(s: Sentence) -> tuple[str, str]:
    """The (English, German) natural text of a sentence tree."""
    return detokenize(_en_sentence(s)), detokenize(_de_sentence(s))


def german_noun_phrase(noun: str, adjective: str | None, case: str, definite: bool, plural: bool) -> str:
    """German NP for an English noun and adjective, e.g. ("dog", "small", "acc", True, False) -> ``den kleinen Hund``.

    ``definite``: "the" (``der``) or else "a" (``ein``; no article in the plural). ``case``: "nom", "acc" or "dat".
    """
    np = _lookup_np(noun, adjective, definite, plural)
    return detokenize(_de_np(np, case))


def german_prepositional_phrase(
    preposition: str, noun: str, adjective: str | None, definite: bool, plural: bool
) -> str:
    """German PP for English words, e.g. ("into", "house", None, True, False) -> ``ins Haus``."""
    prep = next((p for p in PREPOSITIONS if p.en == preposition), None)
    if prep is None:
        raise KeyError(f"unknown preposition: {preposition!r}")
    return detokenize(_de_pp(prep.de, prep.case, _lookup_np(noun, adjective, definite, plural)))


def _lookup_np(noun: str, adjective: str | None, definite: bool, plural: bool) -> NP:
    np = NP(NOUN_BY_EN[noun], "the" if definite else "a", plural, 0)
    if adjective is not None:
        np.adjs.append(ADJECTIVE_BY_EN[adjective])
    return np
