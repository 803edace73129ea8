"""Text classification as the harness drives it: recurrent classifiers (Elman RNN, LSTM,
bidirectional LSTM) and a BERT-style encoder fine-tuned from ``language``'s ``bert_mlm`` or
trained from scratch, scored by accuracy and macro-F1 (val every epoch, test at the end).

The recurrent models read the words of the classification train split; both BERT models read
``bert_mlm``'s vocabulary and architecture from ``models/language/bert_mlm/model.pt`` (the
from-scratch control differs from the fine-tuned model only in its initial weights).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from components.config import Params, model_trainer
from components.data.schema import DatasetMeta, read_meta, read_split
from components.data.text import Vocabulary
from components.errors import UserError
from components.families.language.config import BertClassifierConfig, LMBase, TextClassificationConfig
from components.families.language.corpus import WordSequences, encode_words, pad_words, word_vocabulary
from components.families.language.figures import text_figure
from components.families.language.lm_task import TRAINING_KEYS
from components.families.language.models import BertClassifier, BertEncoder, RNNClassifier
from components.runtime import resolve
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

RECURRENT = {"rnn": ("rnn", False), "lstm": ("lstm", False), "bilstm": ("lstm", True)}
PRETRAINED = Path("models") / "language" / "bert_mlm" / "model.pt"


def read_texts(directory: Path, split: str) -> tuple[list[str], list[int]]:
    table = read_split(directory, split, ["text", "label"])
    return table.column("text").to_pylist(), table.column("label").to_pylist()


def load_pretrained(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path} not found: the BERT classifiers start from language's bert_mlm "
                        "(dvc repro train_language@bert_mlm)")
    return torch.load(path, map_location="cpu", weights_only=True)


def scores(confusion: Tensor) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` of a (true, predicted) confusion matrix; a class never
    predicted nor present counts as F1 1, one missed entirely as 0."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    predicted, actual = confusion.sum(0), confusion.sum(1)
    denominator = predicted + actual
    f1 = torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1), torch.ones_like(denominator))
    return {"accuracy": float(true_positive.sum() / confusion.sum()), "macro_f1": float(f1.mean())}


class TextClassificationTask(ModuleTask):
    def __init__(self, model: str, config: LMBase, section: TextClassificationConfig, directory: Path,
                 meta: DatasetMeta, pretrained: Mapping[str, Any] | None) -> None:
        self.model_name, self.config, self.section, self.directory, self.meta = model, config, section, directory, meta
        self.texts = {split: read_texts(directory, split) for split in ("train", "val")}
        self.pretrained = pretrained
        if pretrained is not None:
            self.vocab = Vocabulary.from_dict(pretrained["vocab"])
            self.max_words = min(section.max_words, pretrained["arch"]["block_size"] - 1)
        else:
            self.vocab = word_vocabulary(self.texts["train"][0])
            self.max_words = section.max_words
        self.collate_fn = functools.partial(pad_words, pad_id=self.vocab.pad_id)  # picklable for loader workers
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [encode_words(self.vocab, t, self.max_words) for t in texts]

    def datasets(self) -> Mapping[str, Dataset]:
        return {split: WordSequences(self.encode(texts), labels) for split, (texts, labels) in self.texts.items()}

    def build_network(self) -> nn.Module:
        classes = self.meta.num_classes
        if self.pretrained is None:
            cell, bidirectional = RECURRENT[self.model_name]
            arch = {k: v for k, v in self.config.model_dump().items() if k not in TRAINING_KEYS and k != "dropout"}
            return RNNClassifier(len(self.vocab), classes, cell, bidirectional, dropout=self.config.dropout,
                                 pad_id=self.vocab.pad_id, **arch)
        arch = dict(self.pretrained["arch"])
        encoder = BertEncoder(len(self.vocab), **arch)
        if self.config.pretrained:
            prefix = "encoder."
            encoder.load_state_dict({k.removeprefix(prefix): v for k, v in self.pretrained["state_dict"].items()
                                     if k.startswith(prefix)})
        return BertClassifier(encoder, classes, self.config.dropout)

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        self.modules = {"net": wrap(self.build_network().to(device))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers, self.schedulers = {"net": optimizer}, {"net": scheduler}

    def logits(self, net: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        return net(batch["tokens"].to(self.device), batch["mask"].to(self.device), batch["length"])

    def train_step(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        with self.precision.autocast():
            loss = F.cross_entropy(self.logits(self.modules["net"], batch), batch["label"].to(self.device))
        self.precision.backward_step(loss, self.optimizers["net"], max_norm=self.config.grad_clip)
        self.schedulers["net"].step()
        return {"loss": loss.detach()}

    def confusion(self, net: nn.Module, batches: Iterable[Any]) -> Tensor:
        classes = self.meta.num_classes
        confusion = torch.zeros(classes, classes, dtype=torch.float64)
        net.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    predicted = self.logits(net, batch).argmax(-1).cpu()
                    confusion += torch.bincount(batch["label"] * classes + predicted,
                                                minlength=classes**2).view(classes, classes)
        finally:
            net.train()
        return confusion

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        confusion = self.confusion(unwrap(self.modules["net"]), batches)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(confusion)
        return scores(confusion)

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = unwrap(self.modules["net"])
        net.eval()
        try:
            with torch.no_grad():
                predicted = self.logits(net, batch).argmax(-1).cpu()
        finally:
            net.train()
        names = self.meta.class_names
        texts = self.texts["val"][0]
        rows = [(f"{'ok' if p == t else 'WRONG'}: predicted {names[p]}, true {names[t]}", texts[int(i)])
                for i, p, t in zip(batch["index"][:10], predicted[:10].tolist(), batch["label"][:10].tolist(),
                                   strict=True)]
        return {"predictions": text_figure(f"{self.model_name}: val predictions", rows)}

    def export(self) -> dict[str, Any]:
        return {"family": "text_classification", "model": self.model_name, "vocab": self.vocab.to_dict(),
                "max_words": self.max_words, "class_names": list(self.meta.class_names),
                "state_dict": unwrap(self.modules["net"]).state_dict()}


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.text_classification.dataset


def build_task(model: str, params: Params) -> TextClassificationTask:
    section = params.text_classification
    config = getattr(section.models, model)
    pretrained = load_pretrained(resolve(PRETRAINED)) if isinstance(config, BertClassifierConfig) else None
    directory = data_dir(params)
    return TextClassificationTask(model, config, section, directory, read_meta(directory), pretrained)


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """Test accuracy and macro-F1 of the trained classifier."""
    task = build_task(export["model"], params)
    net = task.build_network()
    net.load_state_dict(export["state_dict"])
    task.device = torch.device("cpu")
    texts, labels = read_texts(task.directory, "test")
    loader = DataLoader(WordSequences(task.encode(texts), labels), batch_size=model_trainer(
        params, "text_classification", export["model"]).eval_batch_size, collate_fn=task.collate_fn)
    return {"metrics": {f"test/{k}": v for k, v in scores(task.confusion(net, loader)).items()}}
