"""Mixed precision for a task's training steps, chosen by ``trainer.precision``.

``fp32`` changes nothing. ``bf16`` runs forward passes and losses under ``torch.autocast`` in
bfloat16 (tensor cores on GPUs since Ampere; also supported on CPU); it has float32's exponent
range, so it needs no loss scaling. ``fp16`` autocasts to float16 and scales the loss with a
``GradScaler`` per optimizer so that small gradients do not underflow, as in PyTorch's AMP recipe.
Weights and optimizer states stay float32 in every mode; evaluation runs in float32 so metrics
mean the same whatever the training precision.

A task uses it as::

    with self.precision.autocast():
        loss = criterion(net(x), y)
    self.precision.backward_step(loss, optimizer, max_norm=clip)  # zero_grad, backward, (clip), step
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

Precision = Literal["fp32", "bf16", "fp16"]
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast context and (for fp16) loss-scaled optimizer steps for one device type."""

    def __init__(self, precision: Precision = "fp32", device_type: str = "cpu"):
        if precision not in AUTOCAST_DTYPES:
            raise ValueError(f"precision must be one of {sorted(AUTOCAST_DTYPES)}, not {precision!r}")
        self.precision = precision
        self.device_type = device_type
        self.dtype = AUTOCAST_DTYPES[precision]
        self._scalers: dict[int, torch.amp.GradScaler] = {}  # one per optimizer (fp16 only)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Forward passes and losses inside this run in the training precision."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device_type, dtype=self.dtype):
            yield

    def _scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.precision != "fp16":
            return None
        key = id(optimizer)
        if key not in self._scalers:
            self._scalers[key] = torch.amp.GradScaler(self.device_type)
        return self._scalers[key]

    def backward_step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, max_norm: float | None = None
    ) -> None:
        """``zero_grad``, backward, optional gradient-norm clipping, and the optimizer step.

        Under fp16 the loss is scaled before backward, gradients are unscaled before clipping,
        and a step whose gradients overflowed is skipped (the scale then shrinks), as
        ``torch.amp.GradScaler`` does.
        """
        optimizer.zero_grad(set_to_none=True)
        scaler = self._scaler(optimizer)
        if scaler is None:
            loss.backward()
            if max_norm:
                nn.utils.clip_grad_norm_(_parameters(optimizer), max_norm)
            optimizer.step()
            return
        scaler.scale(loss).backward()
        if max_norm:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(_parameters(optimizer), max_norm)
        scaler.step(optimizer)
        scaler.update()


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


FP32 = MixedPrecision()  # the default of every task until the harness sets its own
