"""English -> German data: the grammar corpus, its German morphology and syntax, the word-level
tokenizer and vocabulary, and the loader for local parallel corpora (fixtures written to tmp_path)."""

from __future__ import annotations

import json
import random

import pytest

from components.data.schema import SPLITS, read_meta, read_split
from components.data.text import Vocabulary, detokenize, tokenize
from components.data.translation import (
    ADVERBS,
    COORDINATORS,
    NOUN_BY_EN,
    NP,
    SUBORDINATORS,
    VERBS,
    Clause,
    Sentence,
    build_grammar_corpus,
    generate_pair,
    german_noun_phrase,
    german_prepositional_phrase,
    lexicon_stats,
    load_parallel_corpus,
    render_pair,
)
from components.errors import UserError

TINY = {
    "num_train": 80,
    "num_val": 12,
    "num_test": 12,
    "min_words": 4,
    "max_words": 14,
    "num_longer": 6,
    "longer_max_words": 20,
}


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _pairs(directory, split):
    table = read_split(directory, split)
    return list(zip(table.column("source").to_pylist(), table.column("target").to_pylist(), strict=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("grammar") / "corpus"
    meta = build_grammar_corpus(out, seed=0, **TINY)
    return out, meta


# ------------------------------------------------------------------------------- grammar corpus


def test_same_seed_gives_byte_identical_files(corpus, tmp_path):
    out, _ = corpus
    build_grammar_corpus(tmp_path / "again", seed=0, **TINY)
    build_grammar_corpus(tmp_path / "other", seed=1, **TINY)
    assert _files(tmp_path / "again") == _files(out)
    assert _files(tmp_path / "other")["train.parquet"] != _files(out)["train.parquet"]


def test_meta_sizes_and_ids(corpus):
    out, meta = corpus
    assert (meta.name, meta.task, meta.languages) == ("grammar_en_de", "parallel", ["en", "de"])
    assert meta.source == "grammar generator, seed 0, lexicon fraction 1.0"
    assert meta.sizes == {"train": 80, "val": 12, "test": 12 + 6}
    assert read_meta(out) == meta
    for split in SPLITS:
        assert read_split(out, split).column("id").to_pylist() == list(range(meta.sizes[split]))


def test_no_english_sentence_is_repeated_within_or_across_splits(corpus):
    out, _ = corpus
    english = [en for split in SPLITS for en, _ in _pairs(out, split)]
    assert len(english) == len(set(english))


def test_lengths_cover_the_range_and_the_test_split_holds_the_longer_pairs(corpus):
    out, _ = corpus
    lo, hi, longer = TINY["min_words"], TINY["max_words"], TINY["longer_max_words"]
    for split in ("train", "val"):
        lengths = [len(tokenize(en)) for en, _ in _pairs(out, split)]
        assert lo <= min(lengths) and max(lengths) <= hi, split
    train_lengths = sorted({len(tokenize(en)) for en, _ in _pairs(out, "train")})
    assert train_lengths == list(range(lo, hi + 1))  # 80 pairs over 11 lengths: every length present
    test_lengths = [len(tokenize(en)) for en, _ in _pairs(out, "test")]
    assert sum(n > hi for n in test_lengths) == TINY["num_longer"]
    assert min(test_lengths) >= lo and max(test_lengths) <= longer


def test_generated_text_is_detokenized_capitalised_and_round_trips(corpus):
    out, _ = corpus
    for split in SPLITS:
        for en, de in _pairs(out, split):
            for text in (en, de):
                assert detokenize(tokenize(text)) == text
                assert text[0].isupper() and text.endswith(".") and " ," not in text and ",," not in text


def test_generate_pair_hits_the_requested_length_exactly():
    rng = random.Random(3)
    for length in (3, 4, 9, 25, 45, 60):
        pair = next(p for p in (generate_pair(rng, length) for _ in range(2000)) if p is not None)
        assert len(tokenize(pair[0])) == length


def test_bad_sizes_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="min_words"):
        build_grammar_corpus(tmp_path / "x", seed=0, **{**TINY, "min_words": 20})
    with pytest.raises(UserError, match="longer_max_words"):
        build_grammar_corpus(tmp_path / "x", seed=0, **{**TINY, "longer_max_words": 14})
    assert not (tmp_path / "x").exists()


def test_lexicon_sizes():
    stats = lexicon_stats()
    assert stats["nouns"] >= 44 and stats["adjectives"] >= 32 and stats["verbs"] >= 40
    assert stats["prepositions"] >= 12
    assert stats["english_words"] >= 300 and stats["german_words"] > stats["english_words"]


# ------------------------------------------------------------------------- German morphology


@pytest.mark.parametrize(
    "noun, adjective, case, definite, plural, expected",
    [
        ("dog", "small", "nom", True, False, "der kleine Hund"),
        ("dog", "small", "acc", True, False, "den kleinen Hund"),
        ("dog", "small", "dat", True, False, "dem kleinen Hund"),
        ("dog", "small", "nom", False, False, "ein kleiner Hund"),
        ("dog", "small", "acc", False, False, "einen kleinen Hund"),
        ("dog", "small", "dat", False, False, "einem kleinen Hund"),
        ("house", "small", "nom", False, False, "ein kleines Haus"),
        ("house", "small", "acc", True, False, "das kleine Haus"),
        ("cat", "red", "dat", True, False, "der roten Katze"),
        ("cat", "red", "acc", False, False, "eine rote Katze"),
        ("dog", "small", "nom", True, True, "die kleinen Hunde"),
        ("dog", "small", "dat", True, True, "den kleinen Hunden"),
        ("dog", "small", "nom", False, True, "kleine Hunde"),  # strong ending without an article
        ("dog", "small", "dat", False, True, "kleinen Hunden"),
        ("car", None, "dat", True, True, "den Autos"),  # no dative -n after -s
        ("girl", "tired", "dat", False, False, "einem müden Mädchen"),
        ("car", "expensive", "nom", True, False, "das teure Auto"),
        ("forest", "dark", "acc", False, False, "einen dunklen Wald"),
        ("boy", None, "acc", True, False, "den Jungen"),  # weak masculine
        ("student", "young", "dat", False, False, "einem jungen Studenten"),
    ],
)
def test_german_noun_phrase(noun, adjective, case, definite, plural, expected):
    assert german_noun_phrase(noun, adjective, case, definite, plural) == expected


@pytest.mark.parametrize(
    "preposition, noun, adjective, definite, plural, expected",
    [
        ("with", "dog", "small", True, False, "mit dem kleinen Hund"),
        ("in", "house", None, True, False, "im Haus"),
        ("into", "house", None, True, False, "ins Haus"),
        ("to", "school", None, True, False, "zur Schule"),
        ("for", "dog", None, False, False, "für einen Hund"),
        ("without", "cat", "black", True, True, "ohne die schwarzen Katzen"),
        ("from", "child", None, True, True, "von den Kindern"),
        ("behind", "tree", "big", False, False, "hinter einem großen Baum"),
    ],
)
def test_german_prepositional_phrase(preposition, noun, adjective, definite, plural, expected):
    assert german_prepositional_phrase(preposition, noun, adjective, definite, plural) == expected


def _np(noun, det="the", plural=False):
    return NP(NOUN_BY_EN[noun], det, plural, 0)


def _clause(verb, subj, obj=None, role="main"):
    return Clause(next(v for v in VERBS if v.en == verb), subj, obj, role, 0)


def _conj(en):
    return next(c for c in COORDINATORS + SUBORDINATORS if c.en == en)


def test_subordinate_clause_is_verb_final_after_a_comma():
    s = Sentence(_clause("sees", _np("man"), _np("dog")))
    s.rest.append((_conj("because"), _clause("sleeps", _np("woman"), role="sub")))
    assert render_pair(s) == (
        "The man sees the dog because the woman sleeps.",
        "Der Mann sieht den Hund, weil die Frau schläft.",
    )


def test_relative_clauses_agree_with_their_head_and_pied_pipe_prepositions():
    head = _np("dog")
    rel = _clause("sees", None, _np("cat"), role="rel")
    rel.head, rel.gap, head.rel = head, "subj", rel
    assert render_pair(Sentence(_clause("sleeps", head))) == (
        "The dog that sees the cat sleeps.",
        "Der Hund, der die Katze sieht, schläft.",
    )
    head = _np("child", plural=True)
    rel = _clause("waits for", _np("man"), role="rel")
    rel.head, rel.gap, head.rel = head, "obj", rel
    assert render_pair(Sentence(_clause("helps", _np("woman"), head))) == (
        "The woman helps the children that the man waits for.",
        "Die Frau hilft den Kindern, auf die der Mann wartet.",
    )


def test_fronted_adverb_and_preposed_clause_invert_the_main_clause():
    s = Sentence(_clause("sees", _np("dog", "a"), _np("cat")))
    s.first.adv, s.fronted = next(a for a in ADVERBS if a.en == "today"), True
    assert render_pair(s) == ("Today a dog sees the cat.", "Heute sieht ein Hund die Katze.")
    s = Sentence(_clause("plays", _np("cat", "my", plural=True)))
    s.preposed = (_conj("if"), _clause("sleeps", _np("dog", "this"), role="sub"))
    assert render_pair(s) == ("If this dog sleeps, my cats play.", "Wenn dieser Hund schläft, spielen meine Katzen.")


def test_coordination_and_complement_clauses():
    s = Sentence(_clause("knows that", _np("woman")))
    s.first.comp = _clause("has", _np("boy", "no"), _np("ball", "a"), role="comp")
    s.rest.append((_conj("and"), _clause("laughs", _np("man"))))
    s.rest.append((_conj("but"), _clause("sleeps", _np("dog", "a", plural=True))))
    assert render_pair(s) == (
        "The woman knows that no boy has a ball and the man laughs, but dogs sleep.",
        "Die Frau weiß, dass kein Junge einen Ball hat, und der Mann lacht, aber Hunde schlafen.",
    )


# --------------------------------------------------------------------- tokenizer and vocabulary


def test_tokenize_and_detokenize():
    text = "Der große Mann (mit Hut) sieht den Hund, weil die Frau schläft."
    tokens = tokenize(text)
    assert tokens[:3] == ["Der", "große", "Mann"] and tokens[3:7] == ["(", "mit", "Hut", ")"]
    assert tokens[-3:] == ["Frau", "schläft", "."]
    assert "," in tokens and detokenize(tokens) == text
    assert tokenize("  a  b\tc ") == ["a", "b", "c"]


def test_vocabulary_order_specials_and_unknowns():
    vocab = Vocabulary.build([["b", "a", "b", "c"], ["a", "b", "d"]])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "b", "a", "c", "d"]  # by count, then token
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id, len(vocab)) == (0, 1, 2, 3, 8)
    ids = vocab.encode(["a", "zzz", "b"], add_bos=True)
    assert ids == [1, 5, 3, 4, 2]
    assert vocab.encode(["a"], add_eos=False) == [5]
    assert vocab.decode(ids) == ["a", "<unk>", "b"]
    assert vocab.decode([1, 4, 0, 5, 2, 6, 6]) == ["b", "a"]  # skips pad/bos, stops at eos
    assert Vocabulary.build([["b", "a", "b", "c"], ["a", "b", "d"]], min_freq=2).itos[4:] == ["b", "a"]
    assert len(Vocabulary.build([["b", "a", "b", "c"]], max_size=5)) == 5


def test_vocabulary_round_trips_through_json():
    vocab = Vocabulary.build([tokenize("Die Frau weiß, dass der Hund schläft.")])
    restored = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored == vocab and restored.stoi == vocab.stoi
    with pytest.raises(ValueError, match="special tokens"):
        Vocabulary.from_dict({"tokens": ["a", "b"]})


# ------------------------------------------------------------------------- local parallel corpus


def _write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _corpus_files(root, *, val=False):
    root.mkdir(parents=True, exist_ok=True)
    en = [f"A dog number {i} runs." for i in range(10)]
    de = [f"Ein Hund Nummer {i} läuft." for i in range(10)]
    en[3], de[7] = "   ", ""  # empty sides: both pairs dropped
    en[0], de[0] = "  The boy sleeps.  ", "Der Junge schläft.\t"
    _write(root / "train.en", en)
    _write(root / "train.de", de)
    _write(root / "test.en", ["A cat.", "Two cats."])
    _write(root / "test.de", ["Eine Katze.", "Zwei Katzen."])
    if val:
        _write(root / "val.en", ["A bird."])
        _write(root / "val.de", ["Ein Vogel."])


def _load(root, out, **kw):
    args = {"source_lang": "en", "target_lang": "de", "seed": 0, "val_fraction": 0.25, **kw}
    return load_parallel_corpus(root, out, **args)


def test_loader_reads_strips_drops_empty_pairs_and_splits_off_val(tmp_path):
    root = tmp_path / "multi30k"
    _corpus_files(root)
    meta = _load(root, tmp_path / "out")
    assert (meta.name, meta.task, meta.languages, meta.source) == ("parallel", "parallel", ["en", "de"], str(root))
    assert meta.sizes == {"train": 6, "val": 2, "test": 2}
    assert read_meta(tmp_path / "out") == meta
    ids = {split: read_split(tmp_path / "out", split).column("id").to_pylist() for split in SPLITS}
    assert sorted(ids["train"] + ids["val"]) == [0, 1, 2, 4, 5, 6, 8, 9] and ids["test"] == [0, 1]
    assert ids["train"] == sorted(ids["train"]) and ids["val"] == sorted(ids["val"])  # file order kept
    texts = _pairs(tmp_path / "out", "train") + _pairs(tmp_path / "out", "val")
    pairs = dict(zip(ids["train"] + ids["val"], texts, strict=True))
    assert pairs[0] == ("The boy sleeps.", "Der Junge schläft.")
    assert pairs[5] == ("A dog number 5 runs.", "Ein Hund Nummer 5 läuft.")
    assert _pairs(tmp_path / "out", "test") == [("A cat.", "Eine Katze."), ("Two cats.", "Zwei Katzen.")]
    _load(root, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(tmp_path / "out")


def test_loader_uses_val_files_when_present_and_swaps_languages(tmp_path):
    root = tmp_path / "multi30k"
    _corpus_files(root, val=True)
    meta = _load(root, tmp_path / "out", source_lang="de", target_lang="en")
    assert meta.sizes == {"train": 8, "val": 1, "test": 2} and meta.languages == ["de", "en"]
    assert _pairs(tmp_path / "out", "val") == [("Ein Vogel.", "A bird.")]


def test_loader_missing_file_names_the_path(tmp_path):
    root = tmp_path / "multi30k"
    _corpus_files(root)
    (root / "test.de").unlink()
    with pytest.raises(UserError, match="not found") as err:
        _load(root, tmp_path / "out")
    assert str(root / "test.de") in str(err.value)
    _write(root / "test.de", ["Eine Katze.", "Zwei Katzen."])
    _write(root / "val.en", ["A bird."])  # val.de missing
    with pytest.raises(UserError) as err:
        _load(root, tmp_path / "out")
    assert str(root / "val.de") in str(err.value)
    assert not (tmp_path / "out").exists()


def test_loader_line_count_mismatch_is_one_line_naming_both_files(tmp_path):
    root = tmp_path / "multi30k"
    _corpus_files(root)
    _write(root / "train.en", ["a", "b", "c"])
    _write(root / "train.de", ["x", "y"])
    with pytest.raises(UserError) as err:
        _load(root, tmp_path / "out")
    message = str(err.value)
    assert message == (
        f"parallel corpus files differ in line count: {root / 'train.en'} has 3 lines, {root / 'train.de'} has 2"
    )
    assert "\n" not in message


def test_a_lexicon_fraction_draws_from_the_start_of_each_table(tmp_path):
    from components.data.translation import build_grammar_corpus, lexicon, lexicon_stats

    small = lexicon(0.4)
    assert lexicon_stats(small)["nouns"] == len(small.nouns) < lexicon_stats()["nouns"]
    meta = build_grammar_corpus(tmp_path / "c", seed=0, num_train=200, num_val=10, num_test=10, min_words=4,
                                max_words=20, num_longer=0, longer_max_words=30, lexicon_fraction=0.4)
    assert meta.source.endswith("lexicon fraction 0.4")
    english = {w.lower() for s in read_split(tmp_path / "c", "train").column("source").to_pylist()
               for w in tokenize(s)}
    allowed = {w for n in small.nouns for w in (n.en.lower(), n.en_pl.lower())}
    unused = {w for n in lexicon(1.0).nouns for w in (n.en, n.en_pl)} - allowed
    assert not english & unused  # no noun outside the kept part of the table
    with pytest.raises(UserError, match="lexicon_fraction"):
        lexicon(0.0)
