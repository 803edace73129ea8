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

Optional parts, with the defaults :class:`ModuleTask` gives every family's task:

- ``collate_fn`` batches a list of dataset items (``None``: PyTorch's default collation, which
  stacks tensors); ``train_sampler(num_replicas, rank, seed, batch_size)`` orders this rank's
  training items (``None``: a shuffling ``DistributedSampler`` over the training set);
- ``optimizers`` and ``schedulers``: the task's optimizers and learning-rate schedules by name
  (empty: nothing to checkpoint or to give new hyperparameters);
- ``adopt_state_dict`` loads another run's state (Population Based Training hands a trial a better
  trial's checkpoint) and keeps this task's own hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import Dataset, Sampler

from components.train.precision import FP32, MixedPrecision

# Wraps a trainable network for this run: moved to the device; under several workers DDP, with the
# keyword arguments as DDP options (a task passes find_unused_parameters=True if some steps skip layers).
Wrap = Callable[..., nn.Module]
Collate = Callable[[list[Any]], Any]
# (num_replicas, rank, seed, batch_size) -> this rank's sampler of training items; it must have
# ``set_epoch(epoch)`` and give every rank the same number of batches (DDP steps in lockstep).
MakeSampler = Callable[..., Sampler]


class Task(Protocol):
    """One model of one family, as the harness drives it."""

    modules: Mapping[str, nn.Module]  # the networks (DDP-wrapped after setup)
    precision: MixedPrecision  # set by the harness after setup (trainer.precision); train_step uses it
    # How the harness batches both splits' items; None: PyTorch's default collation (stacks tensors).
    collate_fn: Collate | None
    # This rank's sampler of training items, called as ``train_sampler(num_replicas=, rank=, seed=,
    # batch_size=)``; None: ``DistributedSampler(shuffle=True)`` over the training set.
    train_sampler: MakeSampler | None
    # The optimizers and schedules built by ``setup``, by name: checkpointed with the task, and given
    # this task's hyperparameters again by ``adopt_state_dict``. Empty: nothing of the kind.
    optimizers: Mapping[str, torch.optim.Optimizer]
    schedulers: Mapping[str, LRScheduler]

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

    def adopt_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load another run's ``state_dict`` (PBT: a better trial's checkpoint) but keep this task's
        hyperparameters: weights, optimizer moments and step counts come from ``state``; learning
        rates, weight decay, betas and the schedules' peaks stay this task's (see :func:`adopt_state_dict`)."""
        ...

    def export(self) -> dict[str, Any]:
        """The trained weights (unwrapped) and what is needed to rebuild the network."""
        ...

    def inputs(self) -> list[Path]:
        """The files and directories the task reads from disk (shipped to workers on other nodes)."""
        ...


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP (or similar) wrapper."""
    return module.module if hasattr(module, "module") else module


Hyperparameters = tuple[dict[str, list[dict[str, Any]]], dict[str, list[float]]]


def hyperparameters(task: Any) -> Hyperparameters:
    """``task``'s optimizer hyperparameters (every param-group key but the parameters) and its
    schedulers' base learning rates, as built from its job's params. ``task``: anything with
    ``optimizers`` and ``schedulers`` mappings."""
    groups = {name: [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
              for name, optimizer in task.optimizers.items()}
    base_lrs = {name: list(scheduler.base_lrs) for name, scheduler in task.schedulers.items()}
    return groups, base_lrs


def keep_hyperparameters(task: Any, groups: Mapping[str, list[dict[str, Any]]],
                         base_lrs: Mapping[str, list[float]]) -> None:
    """After loading another run's state: ``task``'s own hyperparameters again (lr, weight decay,
    betas, the schedules' peak) from :func:`hyperparameters`, the loaded weights, moments and step
    counts kept; each learning rate is re-derived from its schedule at the loaded step."""
    for name, optimizer in task.optimizers.items():
        for group, fresh in zip(optimizer.param_groups, groups[name], strict=True):
            group.update(fresh)
    for name, scheduler in task.schedulers.items():
        scheduler.base_lrs = list(base_lrs[name])
        factors = getattr(scheduler, "lr_lambdas", None)  # LambdaLR (components/train/schedules.py)
        if factors is not None:
            for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, factors, strict=True):
                group["lr"] = base * factor(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def adopt_state_dict(task: Any, state: Mapping[str, Any]) -> None:
    """``task.load_state_dict(state)`` between :func:`hyperparameters` and :func:`keep_hyperparameters`:
    another run's weights, moments and steps with ``task``'s own hyperparameters."""
    groups, base_lrs = hyperparameters(task)
    task.load_state_dict(state)
    keep_hyperparameters(task, groups, base_lrs)


_NONE: Mapping[str, Any] = MappingProxyType({})  # a read-only empty default, shared safely


class ModuleTask:
    """The :class:`Task` defaults and state handling shared by tasks that keep ``modules``,
    ``optimizers`` and ``schedulers`` dicts (every family's task subclasses it)."""

    modules: dict[str, nn.Module]
    optimizers: Mapping[str, torch.optim.Optimizer] = _NONE  # setup fills them
    schedulers: Mapping[str, LRScheduler] = _NONE
    collate_fn: Collate | None = None  # PyTorch's default collation
    train_sampler: MakeSampler | None = None  # the harness's shuffling DistributedSampler
    precision: MixedPrecision = FP32  # the harness sets trainer.precision's after setup
    directory: Path  # the prepared dataset
    # The task's own CPU random stream (augmentations, attack starts), when it keeps one: checkpointed
    # with it, so a resumed run draws what the uninterrupted one would have.
    generator: torch.Generator | None = None

    def inputs(self) -> list[Path]:
        return [self.directory]

    def state_dict(self) -> dict[str, Any]:
        state = {
            "modules": {name: unwrap(m).state_dict() for name, m in self.modules.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, module in self.modules.items():
            unwrap(module).load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def adopt_state_dict(self, state: Mapping[str, Any]) -> None:
        adopt_state_dict(self, state)
