"""Machine translation as the harness drives it: teacher-forced cross-entropy in training, BLEU and
chrF (sacrebleu) on greedy translations of the val split at every evaluation, and a test report
with beam search, BLEU and exact match by source-length bucket (:func:`evaluate_test`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from components.config import Params
from components.data.schema import DatasetMeta, read_meta, read_split
from components.data.text import SPECIALS, WORDS, SubwordTokenizer, Vocabulary, tokenize
from components.families.sequence.batches import PairCollate, ParallelDataset, text
from components.families.sequence.config import SeqModelBase, TranslationConfig
from components.families.sequence.decoding import GreedyDecoder, beam_search, greedy_decode
from components.families.sequence.figures import attention_figure, bleu_by_length_figure, samples_figure
from components.families.sequence.seq2seq import RNNSeq2Seq
from components.families.sequence.task import TRAINING_KEYS, SequenceTask
from components.families.sequence.transformer import TransformerSeq2Seq
from components.metrics.sequence import (
    TextCollector,
    bucket_scores,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    length_buckets,
    perplexity,
)
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.task import unwrap

# The recurrent models: (cell, attention) by model name.
RNN_MODELS = {"rnn": ("rnn", False), "lstm": ("lstm", False), "gru": ("gru", False), "attention_gru": ("gru", True)}
POSITIONS = 1024  # sinusoidal position table size: longer than any sentence the decoder may produce
EXTRA_TOKENS = 10  # decoding stops at max_length_ratio * source length + this many tokens


def run_params(model: str, params: Params) -> dict[str, Any]:
    """What a training run reads besides its model section and trainer (beam search and the length
    buckets only shape the test report, so changing them re-evaluates without retraining)."""
    section = params.translation
    return {"min_freq": section.min_freq, "tokenizer": section.tokenizer, "vocab_size": section.vocab_size,
            "max_length_ratio": section.decoding.max_length_ratio}


def build_network(model: str, arch: Mapping[str, Any], source_vocab: int, target_vocab: int, pad_id: int) -> nn.Module:
    """The network of ``model`` with the architecture knobs ``arch`` (a params section minus training keys)."""
    if model == "transformer":
        return TransformerSeq2Seq(source_vocab, target_vocab, max_len=POSITIONS, pad_id=pad_id, **arch)
    cell, attention = RNN_MODELS[model]
    return RNNSeq2Seq(source_vocab, target_vocab, cell=cell, attention=attention, pad_id=pad_id, **arch)


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.translation.dataset


def build_vocabularies(directory: Path, min_freq: int, tokenizer: str = "word",
                       vocab_size: int = 8000) -> tuple[Vocabulary, Vocabulary, int]:
    """Source and target vocabularies of the train split (tokens rarer than ``min_freq`` -> <unk>),
    and its longest source in words (test sentences beyond it are out of distribution).

    ``tokenizer``: ``word`` (words and punctuation) or ``bpe`` (a sentencepiece BPE model of at
    most ``vocab_size`` pieces per language, learned from that side of the train split)."""
    train = read_split(directory, "train")
    vocabularies = []
    for column in ("source", "target"):
        sentences = train.column(column).to_pylist()
        splitter = SubwordTokenizer.train(sentences, vocab_size) if tokenizer == "bpe" else WORDS
        vocabularies.append(Vocabulary.build((splitter.tokenize(s) for s in sentences), min_freq=min_freq,
                                             tokenizer=splitter))
    longest = max(len(tokenize(s)) for s in train.column("source").to_pylist())
    return vocabularies[0], vocabularies[1], longest


def max_lengths(src_mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per-sentence decoding limit (B,): ``ratio`` x source length + EXTRA_TOKENS."""
    return (src_mask.sum(dim=1).float() * ratio).long() + EXTRA_TOKENS


class TranslationTask(SequenceTask):
    """One encoder-decoder (see ``MODELS``) on a parallel corpus, scored by corpus BLEU."""

    def __init__(self, model: str, config: SeqModelBase, section: TranslationConfig, directory: Path,
                 meta: DatasetMeta):
        self.model_name = model
        self.config = config
        self.section = section
        self.directory = directory
        self.meta = meta
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self.source_vocab, self.target_vocab, self.longest_train_source = build_vocabularies(
            directory, section.min_freq, section.tokenizer, section.vocab_size)
        self.collate_fn = PairCollate(self.target_vocab.pad_id, self.target_vocab.bos_id)
        self._datasets: dict[str, ParallelDataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {
                split: ParallelDataset(self.directory, split, self.source_vocab, self.target_vocab)
                for split in ("train", "val")
            }
        return self._datasets

    def build_network(self) -> nn.Module:
        return build_network(self.model_name, self.arch, len(self.source_vocab), len(self.target_vocab),
                             self.target_vocab.pad_id)

    def source(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["src"], batch["src_mask"]

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Greedy translations of this rank's batches, gathered, scored once: ``bleu`` (corpus
        BLEU-4), ``chrf``, ``exact_match`` and token-level ``perplexity`` under teacher forcing."""
        net = unwrap(self.modules["net"])
        val = self.datasets()["val"]
        collector = TextCollector()
        nll = torch.zeros(2, dtype=torch.float64)  # summed NLL, target tokens
        net.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    b = self.to_device(batch)
                    nll += torch.tensor(self.target_nll(net, b), dtype=torch.float64)
                    tokens, _ = greedy_decode(net, b["src"], b["src_mask"], self.target_vocab.bos_id,
                                              self.target_vocab.eos_id,
                                              max_lengths(b["src_mask"], self.section.decoding.max_length_ratio))
                    index = batch["index"].tolist()
                    collector.add([text(self.target_vocab, t) for t in tokens], [[val.references[i]] for i in index])
        finally:
            net.train()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(nll)
        everything = collector.gathered()
        hyps, refs = everything.hypotheses, everything.references
        return {
            "bleu": corpus_bleu(hyps, refs).value,
            "chrf": corpus_chrf(hyps, refs).value,
            "exact_match": exact_match(hyps, refs),
            "perplexity": perplexity(float(nll[0]), int(nll[1])),
        }

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = unwrap(self.modules["net"]).eval()
        try:
            return translation_figures(net, batch, self.datasets()["val"], self.source_vocab, self.target_vocab,
                                       self.section.decoding.max_length_ratio, self.device)
        finally:
            net.train()

    def export(self) -> dict[str, Any]:
        return {
            "family": "translation",
            "model": self.model_name,
            "arch": self.arch,
            "source_vocab": self.source_vocab.to_dict(),
            "target_vocab": self.target_vocab.to_dict(),
            "languages": list(self.meta.languages),
            "longest_train_source": self.longest_train_source,
            "state_dict": unwrap(self.modules["net"]).state_dict(),
        }


def translation_figures(net: nn.Module, batch: Mapping[str, torch.Tensor], dataset: ParallelDataset,
                        source_vocab: Vocabulary, target_vocab: Vocabulary, ratio: float,
                        device: torch.device) -> dict[str, Any]:
    """Attention heatmaps of a short and the longest sentence of ``batch`` and a table of sample
    translations (greedy decoding)."""
    b = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad():
        tokens, attentions = greedy_decode(net, b["src"], b["src_mask"], target_vocab.bos_id, target_vocab.eos_id,
                                           max_lengths(b["src_mask"], ratio))
    index = batch["index"].tolist()
    lengths = b["src_mask"].sum(dim=1).tolist()
    rows = [(dataset.sources[i], dataset.references[i], text(target_vocab, t)) for i, t in zip(index, tokens,
                                                                                               strict=True)]
    figures = {"samples": samples_figure(rows[:6])}
    if attentions is not None:
        shortest = min(range(len(lengths)), key=lambda j: abs(lengths[j] - 12))
        longest = max(range(len(lengths)), key=lambda j: lengths[j])
        for name, j in (("attention_short", shortest), ("attention_long", longest)):
            src_words = source_vocab.decode(b["src"][j].tolist())[: lengths[j] - 1] + ["<eos>"]
            out_words = target_vocab.decode(tokens[j])  # one attention row per output word (eos excluded)
            figures[name] = attention_figure(attentions[j][:, : lengths[j]].cpu(), src_words, out_words)
    return figures


def build_task(model: str, params: Params) -> TranslationTask:
    directory = data_dir(params)
    section = params.translation
    return TranslationTask(model, getattr(section.models, model), section, directory, read_meta(directory))


def load_exported(export: Mapping[str, Any]) -> tuple[nn.Module, Vocabulary, Vocabulary]:
    """Rebuild a trained network and its vocabularies from :meth:`TranslationTask.export`."""
    source_vocab = Vocabulary.from_dict(export["source_vocab"])
    target_vocab = Vocabulary.from_dict(export["target_vocab"])
    net = build_network(export["model"], export["arch"], len(source_vocab), len(target_vocab), target_vocab.pad_id)
    net.load_state_dict(export["state_dict"])
    return net.eval(), source_vocab, target_vocab


SERVED_LENGTH_RATIO = 2.0  # the served translator's limit: 2 x source length + EXTRA_TOKENS (params.yaml's default)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """The greedy translator of a trained network (components/model_logging.py): source ids (N, S),
    padded with the source vocabulary's pad id, -> target ids (N, T); the vocabularies are in model.pt.
    Decoding loops on its own outputs, so it is pickled rather than exported."""
    net, source_vocab, target_vocab = load_exported(export)
    ids = torch.randint(len(SPECIALS), len(source_vocab), (2, 6), generator=torch.Generator().manual_seed(0))
    ids[1, 4:] = source_vocab.pad_id  # a shorter second sentence
    decoder = GreedyDecoder(net, target_vocab.bos_id, target_vocab.eos_id, target_vocab.pad_id,
                            length_ratio=SERVED_LENGTH_RATIO, extra=EXTRA_TOKENS, src_pad_id=source_vocab.pad_id)
    return ServedModel(decoder.eval(), ids, input_dynamic=(0, 1), output_dynamic=(0, 1), traceable=False)


def translate_test(export: Mapping[str, Any], params: Params) -> tuple[ParallelDataset, list[str]]:
    """The test split and its beam-search translations (detokenized), in the split's order."""
    section = params.translation
    net, source_vocab, target_vocab = load_exported(export)
    test = ParallelDataset(data_dir(params), "test", source_vocab, target_vocab)
    # Decode in order of source length: a batch runs until its longest hypothesis ends, so batches
    # of similar lengths take far fewer decoder steps than shuffled ones (same hypotheses).
    order = sorted(range(len(test)), key=lambda i: test.source_lengths[i])
    loader = DataLoader(Subset(test, order), batch_size=section.trainer.eval_batch_size,
                        collate_fn=PairCollate(target_vocab.pad_id, target_vocab.bos_id))
    decoded: list[str] = []
    with torch.no_grad():
        for batch in loader:
            tokens = beam_search(net, batch["src"], batch["src_mask"], target_vocab.bos_id, target_vocab.eos_id,
                                 max_lengths(batch["src_mask"], section.decoding.max_length_ratio),
                                 section.decoding.beam_width, section.decoding.length_penalty)
            decoded += [text(target_vocab, t) for t in tokens]
    hyps = [""] * len(test)
    for index, hyp in zip(order, decoded, strict=True):
        hyps[index] = hyp
    return test, hyps


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """Beam-search translations of the test split.

    ``metrics``: ``test/bleu``, ``test/chrf`` and ``test/exact_match`` over the sentences no longer
    than the longest training source (in distribution); ``test/bleu_longer`` and
    ``test/exact_match_longer`` over the longer ones (length generalisation), when there are any;
    and per source-length bucket ``test/bleu/len_11-20``, ``test/exact_match/...``,
    ``test/sentences/...``. ``tags``: sacrebleu's signatures. ``figures``: BLEU and exact match
    against source length.
    """
    section = params.translation
    test, hyps = translate_test(export, params)
    refs = [[r] for r in test.references]
    longest_train = export["longest_train_source"]
    inside = [i for i, n in enumerate(test.source_lengths) if n <= longest_train]
    longer = [i for i, n in enumerate(test.source_lengths) if n > longest_train]
    bleu = corpus_bleu([hyps[i] for i in inside], [refs[i] for i in inside])
    chrf = corpus_chrf([hyps[i] for i in inside], [refs[i] for i in inside])
    metrics = {"test/bleu": bleu.value, "test/chrf": chrf.value,
               "test/exact_match": exact_match([hyps[i] for i in inside], [refs[i] for i in inside]),
               "test/longest_train_source": float(longest_train)}
    if longer:
        metrics["test/bleu_longer"] = corpus_bleu([hyps[i] for i in longer], [refs[i] for i in longer]).value
        metrics["test/exact_match_longer"] = exact_match([hyps[i] for i in longer], [refs[i] for i in longer])
    per_bucket = bucket_scores(hyps, refs, test.source_lengths, length_buckets(section.length_buckets))
    for s in per_bucket:
        metrics[f"test/bleu/{s.bucket.name}"] = s.bleu
        metrics[f"test/exact_match/{s.bucket.name}"] = s.exact_match
        metrics[f"test/sentences/{s.bucket.name}"] = float(s.count)
    return {
        "metrics": {k: v for k, v in metrics.items() if not math.isnan(v)},
        "tags": {"test/bleu_signature": bleu.signature, "test/chrf_signature": chrf.signature,
                 "test/decoding": f"beam {section.decoding.beam_width}, length penalty "
                                  f"{section.decoding.length_penalty}"},
        "figures": {"test_bleu_by_length": bleu_by_length_figure(
            {export["model"]: [(s.bucket.name, s.bleu, s.exact_match) for s in per_bucket]})},
    }
