"""The encoders the analysis stages (probe, transfer) compare: every method's, and an untrained one."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from components import analysis
from components.config import Params
from components.data.schema import read_meta
from components.families.selfsup.family import listed_methods
from components.families.selfsup.models import build_encoder
from components.families.selfsup.task import data_dir, load_exported


def untrained(params: Params, offset: int = 0) -> nn.Module:
    """The encoder's architecture with the random weights of seed ``params.seed + offset`` (those a method
    with ``init_seed: offset`` starts from), in eval mode."""
    meta = read_meta(data_dir(params))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed + offset)
        net = build_encoder(params.selfsup.encoder.model_dump(), meta.channels, meta.height)
    return net.eval().requires_grad_(False)


def trained_and_untrained(root: Path, params: Params) -> dict[str, nn.Module]:
    """The pretrained encoder of each method ``pipeline.selfsup`` lists (models/selfsup/<method>/, in
    eval mode), then ``random_init``: the same architecture with seeded random weights."""
    nets = {method: load_exported(analysis.load_export(root, f"models/selfsup/{method}", f"train_selfsup@{method}"))
            for method in listed_methods(params)}
    nets["random_init"] = untrained(params)
    return nets
