"""What the translation and captioning tasks share: teacher-forced training (on length-grouped
batches unless a task orders its own: captioning shuffles), and the teacher-forced likelihood
behind ``val/perplexity``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from components.data.text import Vocabulary
from components.families.sequence.config import SeqModelBase
from components.train.samplers import LengthGroupedSampler
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap

# Keys of a model's params section that configure training rather than the network.
TRAINING_KEYS = (
    "epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction", "grad_clip", "label_smoothing", "batch_size",
)


class SequenceTask(ModuleTask):
    """A decoder trained with teacher forcing: subclasses set ``config``, ``target_vocab``, build the
    network (``build_network``), the datasets (whose train split has ``lengths``) and say where a
    batch's source is (``source``)."""

    config: SeqModelBase
    target_vocab: Vocabulary

    def build_network(self) -> nn.Module:
        raise NotImplementedError

    def source(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(src, src_mask)`` of a batch already on the device."""
        raise NotImplementedError

    def train_sampler(self, num_replicas: int, rank: int, seed: int, batch_size: int) -> LengthGroupedSampler:
        """Batches of similar length (less padding for the decoder to step through)."""
        return LengthGroupedSampler(self.datasets()["train"].lengths, batch_size, num_replicas, rank, seed)

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        self.modules = {"net": wrap(self.build_network().to(device))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers = {"net": optimizer}
        self.schedulers = {"net": scheduler}

    def to_device(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.target_vocab.pad_id,
                               **kwargs)

    def train_step(self, batch: Any) -> Mapping[str, torch.Tensor]:
        b = self.to_device(batch)
        with self.precision.autocast():
            logits = self.modules["net"](*self.source(b), b["tgt_in"])
            loss = self._cross_entropy(logits, b["tgt_out"], label_smoothing=self.config.label_smoothing)
        self.precision.backward_step(loss, self.optimizers["net"], max_norm=self.config.grad_clip)
        self.schedulers["net"].step()
        return {"loss": loss.detach()}

    def target_nll(self, net: nn.Module, b: Mapping[str, torch.Tensor]) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of a device batch's targets under teacher forcing,
        and the number of target tokens."""
        logits = net(*self.source(b), b["tgt_in"])
        nll = self._cross_entropy(logits, b["tgt_out"], reduction="sum").item()
        return nll, int((b["tgt_out"] != self.target_vocab.pad_id).sum())
