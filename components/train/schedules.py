"""Learning-rate schedules shared by families, as multiplicative factors for ``LambdaLR``."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up from 0 to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    The factor depends only on the step index, so a resumed ``LambdaLR`` (whose state is just the
    step count) continues the same curve, and raising the epoch count stretches the remaining decay.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def hold_then_linear(total_steps: int) -> Callable[[int], float]:
    """pix2pix's and CycleGAN's schedule: the full rate for the first half of ``total_steps``, then
    linearly to 0 at the end."""
    half = total_steps // 2

    def factor(step: int) -> float:
        return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, total_steps - half))

    return factor


def constant() -> Callable[[int], float]:
    return lambda step: 1.0


def adamw_with_schedule(parameters, config, steps_per_epoch: int):
    """AdamW at ``config.lr`` / ``config.weight_decay`` and its ``LambdaLR`` over ``config.epochs``:
    ``lr_schedule`` ``cosine`` (``warmup_fraction`` of the steps linear warm-up) or ``constant``."""
    import torch

    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        factor = warmup_cosine(int(config.warmup_fraction * total_steps), total_steps)
    else:
        factor = constant()
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
