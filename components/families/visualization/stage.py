"""What the two visualization stages share: the trained networks they explain and their seeded test
subsets (the run, rows and figures: components/analysis.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components import analysis
from components.config import Params
from components.families.visualization.family import DIGITS_MODEL

SCENE_MODEL = "models/visualization/scene_cnn"


def start(argv: list[str] | None, description: str) -> tuple[Params, Path, torch.Generator]:
    """:func:`components.analysis.start` at the family's trainer threads."""
    return analysis.start(argv, description, lambda params: params.visualization.trainer.cpus_per_worker)


def digit_classifier(root: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The adversarial family's undefended digit CNN (frozen, eval mode) and its export."""
    from components.families.adversarial.task import load_exported

    export = analysis.load_export(root, DIGITS_MODEL, "train_adversarial@cnn")
    return load_exported(export), export


def last_conv_block(digit_net: nn.Module) -> nn.Module:
    """The digit classifier's last conv-BN-ReLU stage (before its pool): the map Grad-CAM weights."""
    return [module for module in digit_net.trunk if isinstance(module, nn.Sequential)][-1]


def scene_classifier(root: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The visualization family's scene classifier (frozen, eval mode) and its export."""
    from components.families.visualization.task import load_exported

    export = analysis.load_export(root, SCENE_MODEL, "train_visualization@scene_cnn")
    return load_exported(export), export


def subset(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded subset of ``size`` of ``count`` indices (all of them, in order, when size >= count)."""
    if size >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=generator)[:size].sort().values


@contextmanager
def stage_run(params: Params, root: Path, stage: str, model: str,
              identity: Mapping[str, Any]) -> Iterator[analysis.StageRun]:
    """The stage's MLflow run ``<model>`` in ``visualization``, keyed by ``identity`` and both networks."""
    with analysis.stage_run(params, root, "visualization", stage, model, identity,
                            (DIGITS_MODEL, SCENE_MODEL)) as run:
        yield run
