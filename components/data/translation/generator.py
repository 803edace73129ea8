"""English -> German grammar corpus: a seeded generator of sentence pairs and the corpus it writes.

The embedded corpus comes from a small English/German grammar (a few hundred words, tables in :mod:`lexicon`).
Both sides are natural text in ``text.detokenize`` style with the first word capitalised, e.g.
``Today the small dog that the women see sleeps in the garden, but the cat plays.`` ->
``Heute schläft der kleine Hund, den die Frauen sehen, im Garten, aber die Katze spielt.``

The German is grammatical: articles (``der``, ``ein``, ``dieser``, ``mein``, ``kein``) and
adjective endings (weak, mixed, strong) inflected by gender, number and case; accusative, dative
and prepositional objects (``hilft dem Mann``, ``wartet auf den Hund``); the case each preposition
governs and its contractions (``im``, ``zum``, ``ins``); weak masculine nouns (``den Jungen``);
dative plural ``-n``; verb-second main clauses (also after a fronted adverb or subordinate clause);
verb-final subordinate, ``dass``/``ob`` and relative clauses (relative pronoun by the head's gender
and number and its own case, pied-piped prepositions: ``auf den der Mann wartet``); commas before
subordinate clauses, around relative clauses and before ``aber``. English stays in the present
simple with restrictive ``that`` relative clauses. Sentence length (in ``tokenize`` tokens,
punctuation included) grows through adjectives, adverbs, prepositional phrases, relative clauses,
complement clauses, coordination and subordination; the generator grows a sentence to an exact
requested length. English whose words could attach to a relative clause where the German would
differ (``the dog that sleeps often sees``) is rejected, so every English sentence has one German
translation; an English sentence occurs at most once in a corpus.
"""

from __future__ import annotations

import random
from pathlib import Path

from components.data.schema import SPLITS, DatasetMeta
from components.data.translation.lexicon import (
    COORDINATORS,
    DETERMINER_WEIGHTS,
    DETERMINERS,
    FULL_LEXICON,
    PREPOSITIONS,
    RELATIVE_EN,
    SUBORDINATORS,
    VERBS,
    Adjective,
    Adverb,
    Lexicon,
    Verb,
    lexicon,
)
from components.data.translation.morphology import (
    CASES,
    CONTRACTIONS,
    RELATIVE,
    german_adjective_ending,
    german_determiner,
    german_noun_form,
)
from components.data.translation.syntax import NP, PP, Clause, Sentence, _en_clause, _en_pp, _en_sentence, render_pair
from components.data.translation.writer import _write_parallel
from components.errors import UserError

ATTRIBUTIVE_PREPOSITIONS = tuple(p for p in PREPOSITIONS if p.attributive)
PARTICLE_VERBS = frozenset(v.en for v in VERBS if v.kind in ("acc", "prep") and " " in v.en)  # "waits for"
CLAUSE_KINDS = ("intr", "acc", "dat", "prep", "clause")
CLAUSE_KIND_WEIGHTS = (0.3, 0.42, 0.08, 0.12, 0.08)
REL_KINDS = ("intr", "acc", "dat", "prep")
REL_KIND_WEIGHTS = (0.3, 0.45, 0.1, 0.15)
MAX_DEPTH = 2  # NP attachments and complement clauses nest at most this deep
MAX_CLAUSE_PPS = 2
GROWTH_OPS = ("adjective", "adverb", "clause_pp", "np_pp", "relative", "segment", "prepose")
GROWTH_WEIGHTS = {  # by the number of English tokens still to add
    "long": (1.0, 0.7, 2.0, 1.5, 2.0, 2.5, 0.3),  # >= 10
    "medium": (1.5, 1.0, 1.5, 1.0, 1.5, 1.0, 0.3),  # 4..9
    "short": (3.0, 2.0, 0.5, 0.3, 0.3, 0.0, 0.0),  # 1..3
}


class _Builder:
    """Grows one sentence with random operations; each knows how many English tokens it adds."""

    def __init__(self, rng: random.Random, lex: Lexicon = FULL_LEXICON):
        self.rng = rng
        self.lex = lex
        self.nps: list[NP] = []
        self.clauses: list[Clause] = []
        self.new_nps: list[NP] = []  # made by the operation being tried; kept only if it is applied
        self.new_clauses: list[Clause] = []

    def noun_phrase(self, depth: int, obj: str = "*") -> NP:
        rng = self.rng
        nouns = self.lex.animate if obj == "a" else self.lex.things if obj == "t" else self.lex.nouns
        det = rng.choices(DETERMINERS, DETERMINER_WEIGHTS)[0]
        np = NP(rng.choice(nouns), det, rng.random() < 0.3, depth)
        self.new_nps.append(np)
        return np

    def verb(self, kinds: tuple[str, ...], weights: tuple[float, ...], obj_animate: bool | None = None) -> Verb:
        while True:
            verb = self.rng.choice(self.lex.verbs_by_kind[self.rng.choices(kinds, weights)[0]])
            if obj_animate is None or verb.obj == "*" or verb.obj == ("a" if obj_animate else "t"):
                return verb

    def clause(self, role: str, depth: int) -> Clause:
        """A bare clause: subject, verb and its object or complement clause (made recursively)."""
        kinds, weights = CLAUSE_KINDS, CLAUSE_KIND_WEIGHTS
        if depth >= MAX_DEPTH:
            kinds, weights = REL_KINDS, REL_KIND_WEIGHTS
        verb = self.verb(kinds, weights)
        subj = self.noun_phrase(depth, "a")
        obj = self.noun_phrase(depth, verb.obj) if verb.kind in ("acc", "dat", "prep") else None
        c = Clause(verb, subj, obj, role, depth)
        if verb.kind == "clause":
            c.comp = self.clause("comp", depth + 1)
        self.new_clauses.append(c)
        return c

    def relative(self, head: NP) -> Clause:
        """A bare relative clause on ``head``: the head is its subject (animate heads) or its object."""
        depth = head.depth + 1
        if head.noun.animate and self.rng.random() < 0.55:
            verb = self.verb(REL_KINDS, REL_KIND_WEIGHTS)
            obj = self.noun_phrase(depth, verb.obj) if verb.kind != "intr" else None
            c = Clause(verb, None, obj, "rel", depth)
            c.gap = "subj"
        else:
            verb = self.verb(REL_KINDS[1:], REL_KIND_WEIGHTS[1:], obj_animate=head.noun.animate)
            c = Clause(verb, self.noun_phrase(depth, "a"), None, "rel", depth)
            c.gap = "obj"
        c.head = head
        self.new_clauses.append(c)
        return c

    def grow(self, s: Sentence, room: int) -> int:
        """Try one random operation adding at most ``room`` English tokens; returns the tokens added (0: none)."""
        rng = self.rng
        self.new_nps, self.new_clauses = [], []
        band = "long" if room >= 10 else "medium" if room >= 4 else "short"
        op = rng.choices(GROWTH_OPS, GROWTH_WEIGHTS[band])[0]
        apply = None
        if op == "adjective":
            np = rng.choice(self.nps)
            used = {a.order for a in np.adjs}
            adj = rng.choice(self.lex.adjectives)
            if len(np.adjs) < 2 and adj.order not in used:
                added, apply = 1, lambda: _add_adjective(np, adj)
        elif op == "adverb":
            c = rng.choice(self.clauses)
            adv = rng.choice(self.lex.adverbs)
            if c.adv is None and _adverb_fits(c, adv):
                front = c is s.first and s.preposed is None and adv.frontable and rng.random() < 0.35
                added, apply = 1, lambda: _set_adverb(s, c, adv, front)
        elif op == "clause_pp":
            c = rng.choice(self.clauses)
            prep = rng.choice(PREPOSITIONS)
            if (
                c.comp is None
                and len(c.pps) < MAX_CLAUSE_PPS
                and not _ends_with_relative(_last_np(c))
                and not (c.verb.kind == "intr" and f"{c.verb.en} {prep.en}" in PARTICLE_VERBS)
            ):
                pp = PP(prep, self.noun_phrase(c.depth))
                added, apply = len(_en_pp(pp)), lambda: c.pps.append(pp)
        elif op in ("np_pp", "relative"):
            np = rng.choice(self.nps)
            if np.depth < MAX_DEPTH and np.pp is None and np.rel is None:
                if op == "np_pp":
                    pp = PP(rng.choice(ATTRIBUTIVE_PREPOSITIONS), self.noun_phrase(np.depth + 1))
                    added, apply = len(_en_pp(pp)), lambda: setattr(np, "pp", pp)
                else:
                    rel = self.relative(np)
                    added, apply = len(_en_clause(rel)), lambda: setattr(np, "rel", rel)
        elif op == "segment":
            if rng.random() < 0.5:
                conj, c = rng.choice(COORDINATORS), self.clause("main", 0)
                added = len(_en_clause(c)) + (2 if conj.en == "but" else 1)
            else:
                conj, c = rng.choice(SUBORDINATORS), self.clause("sub", 0)
                added = len(_en_clause(c)) + 1
            apply = lambda: s.rest.append((conj, c))  # noqa: E731
        elif op == "prepose" and s.preposed is None and not s.fronted:
            conj = rng.choice([k for k in SUBORDINATORS if k.preposable])
            c = self.clause("sub", 0)
            added, apply = len(_en_clause(c)) + 2, lambda: setattr(s, "preposed", (conj, c))
        if apply is None or added > room:
            return 0
        apply()
        self.nps += self.new_nps
        self.clauses += self.new_clauses
        return added


def _ends_with_relative(np: NP | None) -> bool:
    """Whether English ``np`` ends with a relative clause (its own, or that of the NP in its PP)."""
    while np is not None:
        if np.rel is not None:
            return True
        np = np.pp.np if np.pp is not None else None
    return False


def _last_np(c: Clause) -> NP | None:
    """The NP a clause's English ends with so far (its last PP's, else its object), if any."""
    if c.pps:
        return c.pps[-1].np
    return c.obj if c.gap != "obj" else None


def _adverb_fits(c: Clause, adv: Adverb) -> bool:
    """A frequency adverb goes before the verb (not after a subject ending in a relative clause); an
    end adverb at the end (not in a clause with a complement clause, nor after a relative clause)."""
    if adv.kind == "freq":
        return c.gap == "subj" or not _ends_with_relative(c.subj)
    return c.comp is None and not _ends_with_relative(_last_np(c))


def _ambiguous(c: Clause, s: Sentence) -> bool:
    """Whether English words of ``c`` follow a relative clause they could belong to, where German would
    differ: a frequency adverb after a subject ending in one (``the dog that sleeps often sees``), or a PP
    or end adverb after an object or PP ending in one (``sees the dog that sleeps in the park``)."""
    if c.adv is not None and c.adv.kind == "freq" and c.gap != "subj" and _ends_with_relative(c.subj):
        return True
    nps = ([c.obj] if c.obj is not None and c.gap != "obj" else []) + [pp.np for pp in c.pps]
    end_adverb = c.adv is not None and c.adv.kind == "end" and not (c is s.first and s.fronted)
    return any(_ends_with_relative(np) for np in nps[: len(nps) if end_adverb else -1])


def _add_adjective(np: NP, adj: Adjective) -> None:
    np.adjs.append(adj)
    np.adjs.sort(key=lambda a: a.order)


def _set_adverb(s: Sentence, c: Clause, adv: Adverb, front: bool) -> None:
    c.adv = adv
    if front:
        s.fronted = True


def generate_pair(
    rng: random.Random, length: int, max_ops: int = 12, lex: Lexicon = FULL_LEXICON
) -> tuple[str, str] | None:
    """One (English, German) pair whose English has exactly ``length`` tokens, or None if this try missed.

    Starts from one bare clause and applies random growth operations that fit the tokens still
    missing; ``max_ops`` consecutive misfits give up.
    """
    b = _Builder(rng, lex)
    s = Sentence(b.clause("main", 0))
    b.nps, b.clauses = b.new_nps, b.new_clauses
    size = len(_en_sentence(s))
    misses = 0
    while size < length:
        added = b.grow(s, length - size)
        if added:
            size, misses = size + added, 0
        else:
            misses += 1
            if misses >= max_ops:
                return None
    if len(_en_sentence(s)) != length or any(_ambiguous(c, s) for c in b.clauses):
        return None
    return render_pair(s)


def sample_pairs(
    rng: random.Random, count: int, min_words: int, max_words: int, seen: set[str], max_tries: int = 500,
    lex: Lexicon = FULL_LEXICON,
) -> list[tuple[str, str]]:
    """``count`` pairs with English lengths spread evenly over [min_words, max_words] (tokens), none in ``seen``.

    Each accepted English sentence is added to ``seen``; ``max_tries`` failures for one target length
    give a UserError (the grammar has too few distinct sentences of that length).
    """
    span = max_words - min_words + 1
    lengths = [min_words + i % span for i in range(count)]
    rng.shuffle(lengths)
    return pairs_of_lengths(rng, lengths, seen, max_tries, lex)


def pairs_of_lengths(
    rng: random.Random, lengths: list[int], seen: set[str], max_tries: int = 500, lex: Lexicon = FULL_LEXICON
) -> list[tuple[str, str]]:
    """One pair per entry of ``lengths``, its English exactly that many tokens long, none in ``seen``
    (each accepted English sentence is added to it); ``max_tries`` failures for one length give a UserError."""
    pairs = []
    for length in lengths:
        for _ in range(max_tries):
            pair = generate_pair(rng, length, lex=lex)
            if pair is not None and pair[0] not in seen:
                seen.add(pair[0])
                pairs.append(pair)
                break
        else:
            raise UserError(
                f"grammar corpus: could not generate another distinct sentence of {length} tokens "
                f"after {max_tries} tries; lower the split sizes or raise min_words in params.yaml"
            )
    return pairs


MIN_LENGTH = 3  # "Dogs sleep."


def build_grammar_corpus(
    out: Path,
    *,
    seed: int,
    num_train: int,
    num_val: int,
    num_test: int,
    min_words: int,
    max_words: int,
    num_longer: int,
    longer_max_words: int,
    lexicon_fraction: float = 1.0,
) -> DatasetMeta:
    """Write the grammar corpus to ``out`` as ``{train,val,test}.parquet`` (``PARALLEL``) and ``meta.json``.

    English lengths (``tokenize`` tokens, punctuation included) are spread evenly over
    [min_words, max_words] in every split; the test split then holds ``num_longer`` more pairs with
    lengths in (max_words, longer_max_words]. No English sentence occurs twice in the corpus.
    ``lexicon_fraction`` < 1 draws from the first part of each word table (:func:`lexicon`).
    Row ids count from 0 per split. Same seed => byte-identical files; ``out`` is replaced whole.
    """
    if not MIN_LENGTH <= min_words <= max_words:
        raise UserError(
            f"grammar corpus: need {MIN_LENGTH} <= min_words ({min_words}) <= max_words ({max_words}); "
            "fix them in params.yaml"
        )
    if num_longer > 0 and longer_max_words <= max_words:
        raise UserError(
            f"grammar corpus: longer_max_words ({longer_max_words}) must exceed max_words ({max_words}) "
            "when num_longer > 0; fix it in params.yaml"
        )
    sizes = {"num_train": num_train, "num_val": num_val, "num_test": num_test, "num_longer": num_longer}
    if min(sizes.values()) < 0 or num_train == 0:
        raise UserError(f"grammar corpus: sizes must be >= 0 and num_train > 0, got {sizes}; fix them in params.yaml")
    lex = lexicon(lexicon_fraction)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = {
        "train": sample_pairs(rng, num_train, min_words, max_words, seen, lex=lex),
        "val": sample_pairs(rng, num_val, min_words, max_words, seen, lex=lex),
        "test": sample_pairs(rng, num_test, min_words, max_words, seen, lex=lex),
    }
    splits["test"] += sample_pairs(rng, num_longer, max_words + 1, longer_max_words, seen, lex=lex)
    meta = DatasetMeta(
        name="grammar_en_de",
        task="parallel",
        class_names=[],
        height=0,
        width=0,
        channels=0,
        source=f"grammar generator, seed {seed}, lexicon fraction {lexicon_fraction}",
        sizes={split: len(splits[split]) for split in SPLITS},
        languages=["en", "de"],
    )
    _write_parallel(out, {split: [(i, *pair) for i, pair in enumerate(splits[split])] for split in SPLITS}, meta)
    return meta


def lexicon_stats(lex: Lexicon = FULL_LEXICON) -> dict[str, int]:
    """Sizes of the grammar's lexicon: entries per table, and the distinct word forms each language can emit."""
    nouns, adjectives, adverbs = lex.nouns, lex.adjectives, lex.adverbs
    verbs = tuple(v for kind in lex.verbs_by_kind.values() for v in kind)
    en = {RELATIVE_EN, "a", "an", "the", "this", "these", "my", "no"}
    en |= {w for n in nouns for w in (n.en, n.en_pl)} | {a.en for a in adjectives}
    en |= {w for v in verbs for form in (v.en, v.en_pl) for w in form.split()}
    en |= {w for p in PREPOSITIONS for w in p.en.split()} | {a.en for a in adverbs}
    en |= {c.en for c in COORDINATORS + SUBORDINATORS}
    de: set[str] = set(CONTRACTIONS.values())
    for case in CASES:
        for plural in (False, True):
            for gender in "mfn":
                de |= {german_determiner(d, gender, case, plural) for d in DETERMINERS} - {""}
                de |= {a.de + german_adjective_ending(d, gender, case, plural) for a in adjectives for d in DETERMINERS}
            de |= {german_noun_form(n, case, plural) for n in nouns}
        de |= set(RELATIVE[case].values())
    de |= {w for v in verbs for w in (v.de, v.de_pl, v.de_prep) if w} | {p.de for p in PREPOSITIONS}
    de |= {a.de for a in adverbs} | {c.de for c in COORDINATORS + SUBORDINATORS}
    return {
        "nouns": len(nouns),
        "adjectives": len(adjectives),
        "verbs": len(verbs),
        "prepositions": len(PREPOSITIONS),
        "adverbs": len(adverbs),
        "conjunctions": len(COORDINATORS) + len(SUBORDINATORS),
        "english_words": len(en),
        "german_words": len(de),
    }
