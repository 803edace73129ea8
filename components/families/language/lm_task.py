"""The language models as the harness drives them: character RNNs by truncated BPTT, a GPT by
next-character prediction on blocks, BERT by masked language modelling on sentences.

Every causal model is scored the same way on the same text: the val text in segments of
``language.val_segment`` tokens, each from a fresh state, every token but a segment's first
predicted once (``val/perplexity`` per token; ``val/bits_per_char``: the summed NLL over the
characters those tokens stand for, comparable across tokenizers). A GPT whose context is shorter
than a segment slides over it half a context at a time, so each token is predicted with at least
half a context of history.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from components.config import Params, model_trainer
from components.data.text import Vocabulary
from components.families.language.cells import best_cells, clause_excerpt_start, text_properties
from components.families.language.config import BertConfig, CharRNNConfig, LanguageConfig, LMBase
from components.families.language.corpus import (
    IGNORE,
    MASK,
    Blocks,
    Segments,
    StreamChunks,
    StreamSampler,
    TextCodec,
    WordSequences,
    encode_words,
    join_lines,
    mask_tokens,
    pad_words,
    split_sentences,
    word_vocabulary,
)
from components.families.language.figures import cells_figure, text_figure
from components.families.language.models import GPT, CharRNN, MaskedLM, detach_state
from components.families.language.sampling import sample
from components.runtime import resolve
from components.train.samplers import LengthGroupedSampler
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

TRAINING_KEYS = ("epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction", "grad_clip", "batch_size")
CELL_OF = {"char_rnn": "rnn", "char_lstm": "lstm", "char_gru": "gru"}
CELL_TEXT = 1200  # characters of val text the interpretable-cell analysis reads
FIGURE_TEXT = 600  # characters the interpretable-cells figure colours


def _all_reduce(values: Tensor) -> Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values)
    return values


def architecture(config: LMBase) -> dict[str, Any]:
    return {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS and k not in ("k1", "k2", "masking")}


class LMTask(ModuleTask):
    """What the three kinds share: one network, AdamW with the model's schedule, the export."""

    model_name: str
    config: LMBase
    vocab: Vocabulary

    def build_network(self) -> nn.Module:
        raise NotImplementedError

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        self.modules = {"net": wrap(self.build_network().to(device))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers, self.schedulers = {"net": optimizer}, {"net": scheduler}

    def step(self, loss: Tensor) -> None:
        self.precision.backward_step(loss, self.optimizers["net"], max_norm=self.config.grad_clip)
        self.schedulers["net"].step()

    def export(self) -> dict[str, Any]:
        return {"family": "language", "model": self.model_name, "arch": architecture(self.config),
                "vocab": self.vocab.to_dict(), "state_dict": unwrap(self.modules["net"]).state_dict()}


class CausalLMTask(LMTask):
    """A character RNN (truncated BPTT over parallel streams) or a GPT (shuffled blocks)."""

    def __init__(self, model: str, config: LMBase, section: LanguageConfig, directory: Path) -> None:
        self.model_name, self.config, self.section, self.directory = model, config, section, directory
        train = split_sentences(directory, "train", section.column)
        self.val_text = join_lines(split_sentences(directory, "val", section.column))
        self.codec = TextCodec.train(train, section.tokenizer, section.vocab_size)
        self.vocab = self.codec.vocab
        self.train_ids, self.val_ids = self.codec.encode(join_lines(train)), self.codec.encode(self.val_text)
        self.recurrent = isinstance(config, CharRNNConfig)
        self.cells = self.recurrent and not self.codec.subword  # the text properties are per character
        self.state = None  # the streams' hidden state, carried from chunk to chunk
        self.train_sampler = self._stream_sampler if self.recurrent else None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}
        self.sample_generator = torch.Generator().manual_seed(0)

    def _stream_sampler(self, num_replicas: int, rank: int, seed: int, batch_size: int) -> StreamSampler:
        return StreamSampler(len(self.train_ids), self.config.k1, batch_size, num_replicas, rank, seed)

    def datasets(self) -> Mapping[str, Dataset]:
        train = (StreamChunks(self.train_ids, self.config.k1, self.config.k2) if self.recurrent
                 else Blocks(self.train_ids, self.config.block_size))
        return {"train": train, "val": Segments(self.val_ids, self.section.val_segment)}

    def build_network(self) -> nn.Module:
        arch = architecture(self.config)
        if self.recurrent:
            return CharRNN(len(self.vocab), CELL_OF[self.model_name], **arch)
        return GPT(len(self.vocab), **arch)

    def train_step(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        x, y = batch["x"].to(self.device, non_blocking=True), batch["y"].to(self.device, non_blocking=True)
        with self.precision.autocast():
            if self.recurrent:
                if bool(batch["fresh"][0]) or self.state is None:
                    self.state = None
                logits, carried = self.modules["net"](x, self.state, int(batch["advance"][0]))
                k1 = self.config.k1  # the chunk's new characters; the rest is context
                loss = F.cross_entropy(logits[:, -k1:].flatten(0, 1), y[:, -k1:].flatten())
            else:
                loss = F.cross_entropy(self.modules["net"](x).flatten(0, 1), y.flatten())
        self.step(loss)
        if self.recurrent:
            self.state = detach_state(carried)
        return {"loss": loss.detach()}

    def position_nll(self, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(B, T) negative log-likelihood (nats) of every target of ``x``/``y`` from a fresh state."""
        if self.recurrent:
            logits, _ = net(x)
            return F.cross_entropy(logits.transpose(1, 2).float(), y, reduction="none")
        block, length = net.block_size, x.shape[1]
        stride = max(1, block // 2)
        nll = torch.zeros(x.shape, device=x.device)
        start = 0
        while True:
            end = min(start + block, length)
            logits = net(x[:, start:end])
            window = F.cross_entropy(logits.transpose(1, 2).float(), y[:, start:end], reduction="none")
            keep = 0 if start == 0 else block - stride  # earlier positions were scored with less history
            nll[:, start + keep:end] = window[:, keep:]
            if end == length:
                return nll
            start += stride

    def split_dataset(self, split: str) -> Dataset:
        text = join_lines(split_sentences(self.directory, split, self.section.column))
        return Segments(self.codec.encode(text), self.section.val_segment)

    def evaluate(self, batches: Iterable[Any], cells: bool = True) -> Mapping[str, float]:
        """``bits_per_char`` and per-token ``perplexity`` (per character with ``tokenizer: char``) of
        the segments; for character RNNs (``cells``) also each val-text property's best unit
        correlation (``cell_correlation/<property>``)."""
        net = unwrap(self.modules["net"])
        totals = torch.zeros(3, dtype=torch.float64)  # summed NLL (nats), characters, tokens
        net.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    nll = self.position_nll(net, batch["x"].to(self.device), batch["y"].to(self.device))
                    chars = float(self.codec.chars[batch["y"]].sum())
                    totals += torch.tensor([float(nll.sum()), chars, nll.numel()], dtype=torch.float64)
                cells = self.interpretable_cells(net)[1] if self.cells and cells else {}
        finally:
            net.train()
        nll, chars, tokens = _all_reduce(totals).tolist()
        metrics = {"bits_per_char": nll / chars / math.log(2), "perplexity": math.exp(nll / tokens)}
        metrics.update({f"cell_correlation/{name}": abs(r) for name, (_, r) in cells.items()})
        return metrics

    def interpretable_cells(self, net: CharRNN) -> tuple[np.ndarray, dict[str, tuple[int, float]]]:
        """The last layer's activations over the first ``CELL_TEXT`` val characters and, per text
        property, the unit that tracks it best."""
        text = self.val_text[:CELL_TEXT]
        activations = net.cell_activations(self.codec.encode(text).view(1, -1).to(self.device))[0]
        activations = activations.float().cpu().numpy()
        return activations, best_cells(activations, text_properties(text))

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = unwrap(self.modules["net"]).eval()
        sampling = self.section.sampling
        prompt = self.codec.encode(sampling.prompt).to(self.device)
        try:
            rows = [(f"temperature {t}", self.codec.decode(
                prompt.tolist() + sample(net, prompt, sampling.length, t, self.sample_generator)))
                for t in sampling.temperatures]
            figures = {"samples": text_figure(f"{self.model_name}: samples", rows)}
            if self.cells:
                with torch.no_grad():
                    best = self.interpretable_cells(net)[1]
                    start = clause_excerpt_start(self.val_text)  # so the comma_due strip has a clause to show
                    text = self.val_text[start:start + FIGURE_TEXT]
                    activations = net.cell_activations(self.codec.encode(text).view(1, -1).to(self.device))[0]
                figures["interpretable_cells"] = cells_figure(text, activations.float().cpu().numpy(), best)
            return figures
        finally:
            net.train()


class MaskedLMTask(LMTask):
    """BERT's pretraining: sentences as words, ``masking`` applied afresh to every batch."""

    def __init__(self, model: str, config: BertConfig, section: LanguageConfig, directory: Path) -> None:
        self.model_name, self.config, self.section, self.directory = model, config, section, directory
        train = split_sentences(directory, "train", section.column)
        self.vocab = word_vocabulary(train)
        self.mask_id = self.vocab.stoi[MASK]
        max_words = config.block_size - 1
        self.sequences = {split: [encode_words(self.vocab, s, max_words) for s in sentences] for split, sentences in
                          (("train", train), ("val", split_sentences(directory, "val", section.column)))}
        self.collate_fn = functools.partial(pad_words, pad_id=self.vocab.pad_id)  # picklable for loader workers
        self.generator = torch.Generator().manual_seed(0)  # the masks; checkpointed (ModuleTask)
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    def datasets(self) -> Mapping[str, Dataset]:
        return {split: WordSequences(seqs) for split, seqs in self.sequences.items()}

    def split_dataset(self, split: str) -> Dataset:
        sentences = split_sentences(self.directory, split, self.section.column)
        return WordSequences([encode_words(self.vocab, s, self.config.block_size - 1) for s in sentences])

    def train_sampler(self, num_replicas: int, rank: int, seed: int, batch_size: int) -> LengthGroupedSampler:
        return LengthGroupedSampler([len(s) for s in self.sequences["train"]], batch_size, num_replicas, rank, seed)

    def build_network(self) -> nn.Module:
        return MaskedLM(len(self.vocab), **architecture(self.config))

    def corrupt(self, batch: Mapping[str, Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        tokens, mask = batch["tokens"], batch["mask"]
        maskable = mask.clone()
        maskable[:, 0] = False  # never [CLS]
        m = self.config.masking
        return mask_tokens(tokens, maskable, m.rate, m.mask, m.random, self.mask_id, self.mask_id + 1,
                           len(self.vocab), generator)

    def train_step(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        inputs, targets = self.corrupt(batch, self.generator)
        with self.precision.autocast():
            logits = self.modules["net"](inputs.to(self.device), batch["mask"].to(self.device))
            loss = F.cross_entropy(logits.flatten(0, 1), targets.to(self.device).flatten(), ignore_index=IGNORE)
        self.step(loss)
        return {"loss": loss.detach()}

    def evaluate(self, batches: Iterable[Any], cells: bool = False) -> Mapping[str, float]:
        """``mlm_accuracy`` and ``mlm_perplexity`` of the chosen tokens under a fixed masking."""
        net = unwrap(self.modules["net"])
        generator = torch.Generator().manual_seed(1)
        totals = torch.zeros(3, dtype=torch.float64)  # NLL, correct, chosen tokens
        net.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    inputs, targets = self.corrupt(batch, generator)
                    logits = net(inputs.to(self.device), batch["mask"].to(self.device)).float()
                    targets = targets.to(self.device)
                    chosen = targets != IGNORE
                    nll = F.cross_entropy(logits[chosen], targets[chosen], reduction="sum")
                    correct = (logits[chosen].argmax(-1) == targets[chosen]).sum()
                    totals += torch.tensor([float(nll), float(correct), float(chosen.sum())], dtype=torch.float64)
        finally:
            net.train()
        nll, correct, count = _all_reduce(totals).tolist()
        return {"mlm_accuracy": correct / count, "mlm_perplexity": math.exp(nll / count)}

    def figures(self, batch: Any) -> Mapping[str, Any]:
        net = unwrap(self.modules["net"]).eval()
        inputs, targets = self.corrupt(batch, torch.Generator().manual_seed(2))
        try:
            with torch.no_grad():
                predicted = net(inputs.to(self.device), batch["mask"].to(self.device)).argmax(-1).cpu()
        finally:
            net.train()
        rows = []
        for i in range(min(8, len(inputs))):
            n = int(batch["length"][i])
            words = []
            for j in range(1, n):
                shown = self.vocab.itos[int(inputs[i, j])]
                if targets[i, j] != IGNORE:
                    guess, original = self.vocab.itos[int(predicted[i, j])], self.vocab.itos[int(targets[i, j])]
                    words.append(f"[{shown}→{guess}|{original}]")
                else:
                    words.append(shown)
            rows.append((f"val sentence {int(batch['index'][i])}", " ".join(words)))
        return {"masked_predictions": text_figure("[input→predicted|original] at the chosen positions", rows)}


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.language.dataset


def build_task(model: str, params: Params) -> LMTask:
    section = params.language
    config = getattr(section.models, model)
    if isinstance(config, BertConfig):
        return MaskedLMTask(model, config, section, data_dir(params))
    return CausalLMTask(model, config, section, data_dir(params))


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """The trained model's scores on the test split (as val's: ``test/bits_per_char``...)."""
    task = build_task(export["model"], params)
    if task.vocab.to_dict() != export["vocab"]:
        raise ValueError(f"{export['model']}: the train split's vocabulary changed since the model was trained")
    net = task.build_network()
    net.load_state_dict(export["state_dict"])
    task.device, task.modules = torch.device("cpu"), {"net": net}
    trainer = model_trainer(params, "language", export["model"])
    loader = DataLoader(task.split_dataset("test"), batch_size=trainer.eval_batch_size, collate_fn=task.collate_fn)
    return {"metrics": {f"test/{k}": v for k, v in task.evaluate(loader, cells=False).items()}}
