"""Image captioning as the harness drives it: a CNN encoder and an LSTM decoder trained with teacher
forcing on every (image, caption) pair; BLEU-1..4 against all of an image's reference captions
(sacrebleu) on greedy captions of the val split, and on beam-search captions of the test split.

The data is ``data/<captioning.dataset>``: the embedded ``scenes`` (two or three captions per
image) or ``coco`` (real COCO with its ``captions_*.json``, or the stand-in's five generated
captions per image), images resized to ``captioning.image_size`` when loaded. Every image of every
split needs a caption; a dataset without is refused before training, in one line naming the
split's file and where its captions come from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from components.config import Params
from components.data.schema import SPLITS, DatasetMeta, read_meta, read_split
from components.data.text import Vocabulary
from components.errors import UserError
from components.families.sequence.batches import CaptionCollate, CaptionDataset, caption_tokens, text
from components.families.sequence.captioner import Captioner
from components.families.sequence.config import CaptionerConfig, CaptioningConfig
from components.families.sequence.decoding import GreedyDecoder, beam_search, greedy_decode
from components.families.sequence.figures import caption_attention_figure, caption_figure
from components.families.sequence.task import TRAINING_KEYS, SequenceTask
from components.metrics.sequence import TextCollector, corpus_bleu, perplexity
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.task import unwrap

ATTENTION = {"show_tell": False, "show_attend_tell": True}
FIGURE_IMAGES = 4


def run_params(model: str, params: Params) -> dict[str, Any]:
    """What a training run reads besides its model section and trainer (beam search only shapes the
    test report, so changing it re-evaluates without retraining)."""
    section = params.captioning
    return {"max_length": section.decoding.max_length, "min_freq": section.min_freq, "image_size": section.image_size}


def build_network(model: str, arch: Mapping[str, Any], in_channels: int, vocab_size: int, pad_id: int) -> nn.Module:
    arch = {k: v for k, v in arch.items() if not (k == "attn_dim" and v is None)}
    return Captioner(in_channels, vocab_size, attention=ATTENTION[model], pad_id=pad_id, **arch)


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.captioning.dataset


def build_vocabulary(directory: Path, min_freq: int = 1) -> Vocabulary:
    """The train captions' words (:func:`caption_tokens`) seen at least ``min_freq`` times, most
    frequent first; rarer ones become ``<unk>`` (COCO's usual vocabulary: the ~10k words seen 5+ times)."""
    captions = read_split(directory, "train", columns=["captions"]).column("captions").to_pylist()
    return Vocabulary.build((caption_tokens(c) for caps in captions for c in caps), min_freq=min_freq)


def check_captions(params: Params) -> None:
    """Refuse, in one line, a dataset with an image without a caption in any split, naming the
    split's file and where its captions come from: for real COCO the captions file its loader reads
    (a missing one leaves every caption empty), else the prepare stage."""
    directory, dataset, coco = data_dir(params), params.captioning.dataset, params.data.coco
    for split in SPLITS:
        captions = read_split(directory, split, columns=["captions"]).column("captions").to_pylist()
        empty = sum(not any(caption_tokens(c) for c in caps) for caps in captions)
        if captions and not empty:
            continue
        what = ("has no captions (its 'captions' column is empty)" if empty == len(captions)
                else f"has {empty} of its {len(captions)} images without a caption")
        if dataset == "coco" and coco.root:
            name = coco.test_set if split == "test" else coco.train_set
            source = resolve(coco.root) / "annotations" / f"captions_{name}.json"
            fix = f"the COCO loader reads them from {source}: put it there (captioning every image), then"
        else:
            fix = "captions are written with the dataset:"
        raise UserError(f"captioning.dataset {dataset}: {directory / split}.parquet {what}; {fix} "
                        "run `dvc repro prepare`")


def bleu_scores(hypotheses: list[str], references: list[list[str]], prefix: str = "") -> dict[str, float]:
    """``bleu`` (BLEU-4) and ``bleu1``..``bleu3``: BLEU over 1..n-grams against every reference."""
    scores = {f"{prefix}bleu": corpus_bleu(hypotheses, references).value}
    for n in (1, 2, 3):
        scores[f"{prefix}bleu{n}"] = corpus_bleu(hypotheses, references, max_ngram_order=n).value
    return scores


class CaptioningTask(SequenceTask):
    """One captioner (``show_tell`` or ``show_attend_tell``) on captioned images."""

    def __init__(self, model: str, config: CaptionerConfig, section: CaptioningConfig, directory: Path,
                 meta: DatasetMeta):
        self.model_name = model
        self.config = config
        self.section = section
        self.directory = directory
        self.meta = meta
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self.target_vocab = build_vocabulary(directory, section.min_freq)
        self.collate_fn = CaptionCollate(self.target_vocab.pad_id, self.target_vocab.bos_id)
        self._datasets: dict[str, CaptionDataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {
                "train": CaptionDataset(self.directory, "train", self.target_vocab, pairs=True,
                                        image_size=self.section.image_size),
                "val": CaptionDataset(self.directory, "val", self.target_vocab, pairs=False,
                                      image_size=self.section.image_size),
            }
        return self._datasets

    def train_sampler(self, num_replicas: int, rank: int, seed: int, batch_size: int) -> DistributedSampler:
        """Shuffled batches, not the base class's length-grouped ones: a scene caption's length is set
        by its number of digits and its style, so a length-grouped batch holds scenes with the same
        digit count and caption style (and the encoder's BatchNorm normalises over them). Trained on
        such batches, the captioners hardly learned to read the digits (val BLEU-4 about 30 after
        5 epochs, digit tokens at chance); on shuffled batches about 60. Padding costs ~10% more time."""
        return DistributedSampler(self.datasets()["train"], num_replicas=num_replicas, rank=rank, shuffle=True,
                                  seed=seed)

    def build_network(self) -> nn.Module:
        vocab = self.target_vocab
        return build_network(self.model_name, self.arch, self.meta.channels, len(vocab), vocab.pad_id)

    def source(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, None]:
        return batch["images"], None

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Greedy captions of this rank's images, gathered: ``bleu`` (BLEU-4), ``bleu1``..``bleu3``
        against all references, and the first reference's ``perplexity`` under teacher forcing."""
        net = unwrap(self.modules["net"])
        val = self.datasets()["val"]
        collector, vocab = TextCollector(), self.target_vocab
        nll = torch.zeros(2, dtype=torch.float64)
        net.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    b = self.to_device(batch)
                    nll += torch.tensor(self.target_nll(net, b), dtype=torch.float64)
                    tokens, _ = greedy_decode(net, b["images"], None, vocab.bos_id, vocab.eos_id,
                                              self.section.decoding.max_length)
                    collector.add([text(vocab, t, captions=True) for t in tokens],
                                  [val.references[i] for i in batch["index"].tolist()])
        finally:
            net.train()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(nll)
        everything = collector.gathered()
        return {**bleu_scores(everything.hypotheses, everything.references),
                "perplexity": perplexity(float(nll[0]), int(nll[1]))}

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = unwrap(self.modules["net"]).eval()
        try:
            return caption_figures(net, batch, self.datasets()["val"], self.target_vocab,
                                   self.section.decoding.max_length, self.device)
        finally:
            net.train()

    def export(self) -> dict[str, Any]:
        return {
            "family": "captioning",
            "model": self.model_name,
            "arch": self.arch,
            "in_channels": self.meta.channels,
            "image_size": self.section.image_size or self.meta.height,  # what it was trained on
            "vocab": self.target_vocab.to_dict(),
            "state_dict": unwrap(self.modules["net"]).state_dict(),
        }


def caption_figures(net: nn.Module, batch: Mapping[str, torch.Tensor], dataset: CaptionDataset, vocab: Vocabulary,
                    max_length: int, device: torch.device) -> dict[str, Any]:
    """Greedy captions of the first images of ``batch`` beside their references; with attention,
    where each word of the first caption looked."""
    images = batch["images"][:FIGURE_IMAGES]
    with torch.no_grad():
        tokens, attentions = greedy_decode(net, images.to(device), None, vocab.bos_id, vocab.eos_id, max_length)
    captions = [text(vocab, t, captions=True) for t in tokens]
    references = [dataset.references[i] for i in batch["index"][:FIGURE_IMAGES].tolist()]
    figures = {"captions": caption_figure(images, captions, references)}
    if attentions is not None:
        words = vocab.decode(tokens[0])  # one attention row per word (eos excluded)
        figures["attention"] = caption_attention_figure(images[0], words, attentions[0].cpu())
    return figures


def build_task(model: str, params: Params) -> CaptioningTask:
    check_captions(params)
    directory = data_dir(params)
    section = params.captioning
    return CaptioningTask(model, getattr(section.models, model), section, directory, read_meta(directory))


def load_exported(export: Mapping[str, Any]) -> tuple[nn.Module, Vocabulary]:
    """Rebuild a trained captioner and its vocabulary from :meth:`CaptioningTask.export`."""
    vocab = Vocabulary.from_dict(export["vocab"])
    net = build_network(export["model"], export["arch"], export["in_channels"], len(vocab), vocab.pad_id)
    net.load_state_dict(export["state_dict"])
    return net.eval(), vocab


SERVED_MAX_LENGTH = 40  # the served captioner's limit in tokens (params.yaml's default)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """The greedy captioner of a trained network (components/model_logging.py): images (N, C, S, S)
    in [0, 1] -> caption ids (N, T); the vocabulary is in model.pt. Decoding loops on its own
    outputs, so it is pickled rather than exported."""
    net, vocab = load_exported(export)
    size = export["image_size"]
    example = torch.rand(2, export["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    decoder = GreedyDecoder(net, vocab.bos_id, vocab.eos_id, vocab.pad_id, max_length=SERVED_MAX_LENGTH)
    return ServedModel(decoder.eval(), example, output_dynamic=(0, 1), traceable=False)


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """Beam-search captions of the test split: ``test/bleu`` (BLEU-4) and ``test/bleu1``..``3``,
    sacrebleu's signature, and a figure of test captions."""
    section = params.captioning
    net, vocab = load_exported(export)
    test = CaptionDataset(data_dir(params), "test", vocab, pairs=False, image_size=section.image_size)
    loader = DataLoader(test, batch_size=section.trainer.eval_batch_size,
                        collate_fn=CaptionCollate(vocab.pad_id, vocab.bos_id))
    hyps: list[str] = []
    with torch.no_grad():
        for batch in loader:
            tokens = beam_search(net, batch["images"], None, vocab.bos_id, vocab.eos_id, section.decoding.max_length,
                                 section.decoding.beam_width, section.decoding.length_penalty)
            hyps += [text(vocab, t, captions=True) for t in tokens]
    refs = test.references
    signature = corpus_bleu(hyps, refs).signature  # nrefs:var when images have different counts
    first = next(iter(loader))
    return {
        "metrics": bleu_scores(hyps, refs, prefix="test/"),
        "tags": {"test/bleu_signature": signature,
                 "test/decoding": f"beam {section.decoding.beam_width}, length penalty "
                                  f"{section.decoding.length_penalty}"},
        "figures": {"test_captions": caption_figure(first["images"][:FIGURE_IMAGES], hyps[:FIGURE_IMAGES],
                                                    refs[:FIGURE_IMAGES])},
    }
