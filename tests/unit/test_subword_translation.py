"""translation.tokenizer: bpe — sentencepiece's BPE subwords behind the vocabulary."""

from __future__ import annotations

import sentencepiece
import torch
import yaml

from components.config import load_params
from components.data.text import WORDS, SubwordTokenizer, Vocabulary
from components.families.sequence.translation import build_task, build_vocabularies, load_exported
from components.runtime import with_absolute_paths

SENTENCES = [
    "Der kleine Hund sieht die Katze.", "Die Katze schläft, weil der Hund bellt.",
    "Ein Mann liest ein Buch im Garten.", "Zwei Kinder spielen mit einem roten Ball.",
] * 20  # fmt: skip


def test_bpe_is_sentencepieces_model_and_round_trips():
    bpe = SubwordTokenizer.train(SENTENCES, vocab_size=60)
    reference = sentencepiece.SentencePieceProcessor(model_proto=bpe.model)
    text = "Die Katze liest ein Buch."
    assert bpe.tokenize(text) == reference.encode(text, out_type=str)  # sentencepiece's pieces, not ours
    assert bpe.detokenize(bpe.tokenize(text)) == text
    assert reference.get_piece_size() <= 60
    assert SubwordTokenizer.train(SENTENCES, vocab_size=60).model == bpe.model  # same corpus, same model
    unseen = bpe.tokenize("Gartenkatze")  # an unseen compound splits into known pieces
    assert len(unseen) > 1 and "".join(unseen).replace("▁", "") == "Gartenkatze"


def test_vocabulary_carries_its_tokenizer_through_to_dict():
    bpe = SubwordTokenizer.train(SENTENCES, vocab_size=60)
    vocab = Vocabulary.build((bpe.tokenize(s) for s in SENTENCES), tokenizer=bpe)
    ids = vocab.encode_text("Der Hund liest.")
    assert vocab.decode_text(ids) == "Der Hund liest."
    again = Vocabulary.from_dict(yaml.safe_load(yaml.safe_dump(vocab.to_dict())))  # JSON/YAML-able
    assert again == vocab and again.decode_text(ids) == "Der Hund liest."
    old = Vocabulary.from_dict({"tokens": vocab.to_dict()["tokens"]})  # exports before subwords: words
    assert old.tokenizer is WORDS


def test_translation_task_trains_and_exports_on_bpe(workdir, prepare_data):
    prepare_data(workdir)
    raw = yaml.safe_load((workdir / "params.yaml").read_text())
    raw["translation"].update(tokenizer="bpe", vocab_size=200)
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = with_absolute_paths(load_params(workdir / "params.yaml"))
    directory = workdir / "data" / "grammar_en_de"
    source, target, longest = build_vocabularies(directory, 1, "bpe", 200)
    _, _, longest_words = build_vocabularies(directory, 1, "word")
    assert len(target) <= 200 + 4 and longest == longest_words  # pieces + specials; lengths stay in words
    task = build_task("transformer", params)
    loader = torch.utils.data.DataLoader(task.datasets()["train"], batch_size=8, collate_fn=task.collate_fn)
    task.setup(torch.device("cpu"), wrap=lambda module, **_: module, steps_per_epoch=len(loader))
    losses = [float(task.train_step(batch)["loss"]) for batch, _ in zip(loader, range(6), strict=False)]
    assert losses[-1] < losses[0]
    metrics = task.evaluate(torch.utils.data.DataLoader(task.datasets()["val"], batch_size=16,
                                                        collate_fn=task.collate_fn))
    assert 0 <= metrics["bleu"] <= 100
    net, source_again, target_again = load_exported(task.export())
    assert isinstance(target_again.tokenizer, SubwordTokenizer) and target_again == target
    assert source_again.tokenizer.model == source.tokenizer.model
