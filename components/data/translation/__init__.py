"""English -> German parallel data, one module per concern:

- ``lexicon``: the word tables (nouns, adjectives, verbs, prepositions, adverbs, conjunctions) and ``lexicon()``;
- ``morphology``: German inflection (articles, adjective endings, relative pronouns, contractions, noun forms);
- ``syntax``: sentence trees and their rendering as English and German text;
- ``generator``: the seeded grammar corpus (``data.grammar_en_de``): growing sentences, ``build_grammar_corpus``;
- ``loader``: a real parallel corpus from local Multi30k-style files (``data.parallel``);
- ``writer``: writing a corpus's splits and meta (used by ``generator`` and ``loader``).
"""

from components.data.translation.generator import build_grammar_corpus, generate_pair, lexicon_stats
from components.data.translation.lexicon import ADVERBS, COORDINATORS, NOUN_BY_EN, SUBORDINATORS, VERBS, lexicon
from components.data.translation.loader import load_parallel_corpus
from components.data.translation.syntax import (
    NP,
    Clause,
    Sentence,
    german_noun_phrase,
    german_prepositional_phrase,
    render_pair,
)

__all__ = [
    "ADVERBS",
    "COORDINATORS",
    "NOUN_BY_EN",
    "NP",
    "SUBORDINATORS",
    "VERBS",
    "Clause",
    "Sentence",
    "build_grammar_corpus",
    "generate_pair",
    "german_noun_phrase",
    "german_prepositional_phrase",
    "lexicon",
    "lexicon_stats",
    "load_parallel_corpus",
    "render_pair",
]
