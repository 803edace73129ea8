"""The interface between the Ray Train harness and a model family.

The harness owns distribution (process group, samplers, DDP wrapping, metric reduction),
checkpoints, logging and progress; a task owns everything model-specific. The interface is
small enough that a GAN (two networks, two optimizers, alternating steps) and a detector
(a loss dict from the model itself) fit it without special cases in the harness:

- ``setup`` builds the networks on a device, hands each trainable one to ``wrap`` (DDP under
  Ray Train; identity in a plain loop) and creates the optimizers (and learning-rate schedules,
  which need the number of steps per epoch on this rank);
- ``train_step`` does forward, backward and the optimizer step(s) for one batch and returns
  the batch's scalar losses;
- ``evaluate`` returns named metrics over a loader, reduced across ranks;
- ``figures`` draws predictions for a human (rank 0 only, no collectives).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from components.train.precision import FP32, MixedPrecision

Wrap = Callable[[nn.Module], nn.Module]


class Task(Protocol):
    """One model of one family, as the harness drives it."""

    modules: Mapping[str, nn.Module]  # the networks (DDP-wrapped after setup)
    precision: MixedPrecision  # set by the harness after setup (trainer.precision); train_step uses it

    def datasets(self) -> Mapping[str, Dataset]:
        """``{"train": ..., "val": ...}``: map-style datasets yielding batches' items."""
        ...

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        """Build networks on ``device``, wrap the trainable ones, create optimizers and schedules."""
        ...

    def train_step(self, batch: Any) -> Mapping[str, torch.Tensor]:
        """One optimisation step on ``batch``; returns detached scalar losses (``loss`` first)."""
        ...

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Metrics over this rank's batches, reduced across ranks (every rank calls it)."""
        ...

    def figures(self, batch: Any) -> Mapping[str, Any]:
        """Matplotlib figures of predictions on ``batch`` (called on rank 0 only)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: networks and optimizer states."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def export(self) -> dict[str, Any]:
        """The trained weights (unwrapped) and what is needed to rebuild the network."""
        ...

    def inputs(self) -> list[Path]:
        """The files and directories the task reads from disk (shipped to workers on other nodes)."""
        ...


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP (or similar) wrapper."""
    return module.module if hasattr(module, "module") else module


class ModuleTask:
    """State handling shared by tasks that keep ``modules``, ``optimizers`` and ``schedulers`` dicts."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    precision: MixedPrecision = FP32  # the harness sets trainer.precision's after setup
    directory: Path  # the prepared dataset

    def inputs(self) -> list[Path]:
        return [self.directory]

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: unwrap(m).state_dict() for name, m in self.modules.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in getattr(self, "schedulers", {}).items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, module in self.modules.items():
            unwrap(module).load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in getattr(self, "schedulers", {}).items():
            scheduler.load_state_dict(state["schedulers"][name])
