"""Text classification data: the ``word_order`` grammaticality set built from a tiny grammar corpus,
and the loader for labelled text in local CSV/TSV files (fixtures written to tmp_path)."""

from __future__ import annotations

import json

import pytest
import yaml

from components.config import load_params, parse_params
from components.data.labelled_text import load_labelled_text
from components.data.schema import SPLITS, TEXT_CLASSIFICATION, read_meta, read_split
from components.data.text import tokenize
from components.data.translation import build_grammar_corpus
from components.data.word_order import build_word_order, swap
from components.errors import UserError
from tests.conftest import REPO

GRAMMAR = {"num_train": 300, "num_val": 60, "num_test": 60, "min_words": 4, "max_words": 20, "num_longer": 0,
           "longer_max_words": 25, "lexicon_fraction": 0.4}
SIZES = {"num_train": 100, "num_val": 20, "num_test": 20}


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _rows(directory, split):
    table = read_split(directory, split)
    assert table.schema == TEXT_CLASSIFICATION
    return list(zip(*(table.column(c).to_pylist() for c in ("id", "text", "label")), strict=True))


@pytest.fixture(scope="module")
def grammar(tmp_path_factory):
    out = tmp_path_factory.mktemp("grammar") / "grammar_en_de"
    build_grammar_corpus(out, seed=0, **GRAMMAR)
    return out


@pytest.fixture(scope="module")
def word_order(grammar, tmp_path_factory):
    out = tmp_path_factory.mktemp("word_order") / "word_order"
    meta = build_word_order(out, grammar, seed=3, min_words=5, **SIZES)
    return out, meta


# ---------------------------------------------------------------------------------- word_order


def test_word_order_is_balanced_per_split(word_order):
    out, meta = word_order
    assert meta.task == "text_classification" and meta.class_names == ["swapped", "original"]
    assert (meta.height, meta.width, meta.channels) == (0, 0, 0)
    assert meta.source == "grammar_en_de English side, seed 3"
    assert read_meta(out) == meta
    for split in SPLITS:
        labels = [label for _, _, label in _rows(out, split)]
        n = SIZES[f"num_{split}"]
        assert meta.sizes[split] == len(labels) == n
        assert labels.count(0) == labels.count(1) == n // 2
        assert labels[: n // 2] != [0] * (n // 2)  # shuffled, not swapped-first


def test_word_order_is_deterministic_for_a_seed(grammar, word_order, tmp_path):
    out, _ = word_order
    again = tmp_path / "again"
    build_word_order(again, grammar, seed=3, min_words=5, **SIZES)
    assert _files(again) == _files(out)
    build_word_order(tmp_path / "other", grammar, seed=4, min_words=5, **SIZES)
    assert _rows(tmp_path / "other", "train") != _rows(out, "train")


def test_word_order_rows_come_from_their_split_and_swap_one_adjacent_pair(grammar, word_order):
    out, _ = word_order
    initial = 0
    every = {s for split in SPLITS for s in read_split(grammar, split).column("source").to_pylist()}
    for split in SPLITS:
        corpus = dict(zip(*(read_split(grammar, split).column(c).to_pylist() for c in ("id", "source")), strict=True))
        rows = _rows(out, split)
        assert len({id_ for id_, _, _ in rows}) == len(rows)  # distinct sentences
        for id_, text, label in rows:
            original = corpus[id_]
            assert sum(t.isalnum() for t in tokenize(original)) >= 5
            if label == 1:
                assert text == original
                continue
            assert text not in every
            a, b = [t.lower() for t in tokenize(original)], [t.lower() for t in tokenize(text)]
            diff = [i for i in range(len(a)) if a[i] != b[i]]
            assert len(a) == len(b) and len(diff) == 2 and diff[1] == diff[0] + 1, (original, text)
            i = diff[0]
            assert (b[i], b[i + 1]) == (a[i + 1], a[i]) and a[i].isalnum() and a[i + 1].isalnum()
            if i == 0:  # sentence case: the new first word capitalised, the moved one lower-case
                first, second = tokenize(text)[:2]
                assert first[0].isupper() and second[0].islower(), (original, text)
                initial += 1
            else:
                assert tokenize(text)[0] == tokenize(original)[0]
    assert initial > 0  # the fixture exercises the sentence-initial rule


def test_swap_keeps_sentence_case():
    assert swap(["The", "dog", "sleeps", "."], 0) == ["Dog", "the", "sleeps", "."]
    assert swap(["The", "dog", "sleeps", "."], 1) == ["The", "sleeps", "dog", "."]


def test_word_order_too_small_split_names_the_key(grammar, tmp_path):
    with pytest.raises(UserError, match=r"data\.word_order\.num_val") as err:
        build_word_order(tmp_path / "wo", grammar, seed=0, num_train=10, num_val=1000, num_test=10, min_words=4)
    assert "val split" in str(err.value)
    assert not (tmp_path / "wo").exists()


# ------------------------------------------------------------------------------- labelled_text


def _write(path, header, rows, delimiter):
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


TRAIN = [("great film", "pos"), ("dull, slow", "neg"), ("ça va", "neutral"), ("", "pos"), ("so good", "pos")] * 4


@pytest.mark.parametrize("ext,delimiter", [("csv", ","), ("tsv", "\t")])
def test_labelled_text_round_trips_csv_and_tsv(tmp_path, ext, delimiter, capsys):
    root = tmp_path / "src"
    root.mkdir()
    quote = (lambda s: f'"{s}"') if delimiter == "," else (lambda s: s)
    for split, rows in {"train": TRAIN, "val": TRAIN[:5], "test": [("meh", "neg"), ("wow", "pos")]}.items():
        _write(root / f"{split}.{ext}", ["id", "label", "text"], [(str(i), y, quote(x)) for i, (x, y) in
                                                                  enumerate(rows)], delimiter)
    meta = load_labelled_text(root, tmp_path / "out", seed=0, text_column="text", label_column="label",
                              val_fraction=0.1)
    assert meta.class_names == ["neg", "neutral", "pos"] and meta.task == "text_classification"
    assert meta.sizes == {"train": 16, "val": 4, "test": 2}
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["class_names"] == meta.class_names
    train = _rows(tmp_path / "out", "train")
    assert train[:3] == [(0, "great film", 2), (1, "dull, slow", 0), (2, "ça va", 1)]
    assert _rows(tmp_path / "out", "test") == [(0, "meh", 0), (1, "wow", 2)]
    assert "skipped 4 rows" in capsys.readouterr().out


def test_labelled_text_splits_val_off_train(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    rows = [(f"text {i}", "ab"[i % 2]) for i in range(50)]
    _write(root / "train.tsv", ["text", "label"], rows, "\t")
    _write(root / "test.csv", ["text", "label"], rows[:4], ",")
    meta = load_labelled_text(root, tmp_path / "out", seed=0, text_column="text", label_column="label",
                              val_fraction=0.2)
    assert meta.sizes == {"train": 40, "val": 10, "test": 4}
    train, val = _rows(tmp_path / "out", "train"), _rows(tmp_path / "out", "val")
    assert sorted(train + val) == [(i, f"text {i}", i % 2) for i in range(50)]
    load_labelled_text(root, tmp_path / "again", seed=0, text_column="text", label_column="label", val_fraction=0.2)
    assert _files(tmp_path / "again") == _files(tmp_path / "out")


def _source(tmp_path, test_rows=(("x", "a"),)):
    root = tmp_path / "src"
    root.mkdir()
    _write(root / "train.csv", ["text", "label"], [("one", "a"), ("two", "b")], ",")
    _write(root / "test.csv", ["text", "label"], list(test_rows), ",")
    return root


def _load(root, out, **kwargs):
    args = {"seed": 0, "text_column": "text", "label_column": "label", "val_fraction": 0.5} | kwargs
    return load_labelled_text(root, out, **args)


def test_labelled_text_unknown_test_label(tmp_path):
    root = _source(tmp_path, [("x", "a"), ("y", "c")])
    with pytest.raises(UserError, match=r"test\.csv, row 2 .*'c'"):
        _load(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_labelled_text_missing_file_names_the_path(tmp_path):
    root = _source(tmp_path)
    (root / "test.csv").unlink()
    with pytest.raises(UserError, match="not found") as err:
        _load(root, tmp_path / "out")
    assert str(root / "test.csv") in str(err.value) and str(root / "test.tsv") in str(err.value)
    with pytest.raises(UserError, match="not found"):
        _load(tmp_path / "nowhere", tmp_path / "out")


def test_labelled_text_csv_and_tsv_for_one_split(tmp_path):
    root = _source(tmp_path)
    _write(root / "train.tsv", ["text", "label"], [("one", "a")], "\t")
    with pytest.raises(UserError, match="train.csv and .*train.tsv"):
        _load(root, tmp_path / "out")


def test_labelled_text_missing_column(tmp_path):
    root = _source(tmp_path)
    with pytest.raises(UserError) as err:
        _load(root, tmp_path / "out", label_column="sentiment")
    assert "train.csv" in str(err.value) and "'sentiment'" in str(err.value) and "text, label" in str(err.value)


# ------------------------------------------------------------------------------------- params


def test_params_have_the_text_classification_keys():
    data = load_params(REPO / "params.yaml").data
    assert set(data.word_order.model_dump()) == {"num_train", "num_val", "num_test", "min_words"}
    assert set(data.labelled_text.model_dump()) == {"root", "text_column", "label_column", "val_fraction"}
    assert data.labelled_text.root is None and "labelled_text" not in data.source_roots()


def test_labelled_text_root_is_a_protected_source(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["labelled_text"]["root"] = str(tmp_path / "reviews")
    assert parse_params(raw).data.source_roots()["labelled_text"] == tmp_path / "reviews"
    raw["data"]["labelled_text"]["root"] = "data/reviews"
    with pytest.raises(UserError, match=r"data\.labelled_text\.root: .* lies inside data\.root"):
        parse_params(raw)
