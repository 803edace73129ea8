"""A toy Task for tests that drive the harness in-process: linear regression on 80 seeded random
rows (64 train, 16 val: 4 steps an epoch at batch size 16), whose loss can be made non-finite at one
global step. Tests use it where the family's own networks would only add seconds."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import TensorDataset

from components.config import load_params
from components.train.harness import TrainJob
from components.train.task import ModuleTask
from tests.conftest import tiny_params_dict

STEPS_PER_EPOCH = 4  # 64 training items, batches of 16


class LinearTask(ModuleTask):
    """The loss is multiplied by ``bad`` at global step ``bad_at`` (0-based, counted across epochs
    and runs of this object); ``momentum`` > 0 gives the optimizer a state to checkpoint."""

    def __init__(self, bad_at: int | None = None, bad: float = float("nan"), momentum: float = 0.0):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(80, 4, generator=generator)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(80, generator=generator)
        self.data = {"train": TensorDataset(x[:64], y[:64]), "val": TensorDataset(x[64:], y[64:])}
        self.bad_at, self.bad, self.momentum, self.steps = bad_at, bad, momentum, 0
        self.modules = {"net": nn.Linear(4, 1)}

    def datasets(self):
        return self.data

    def inputs(self) -> list[Path]:
        return []

    def setup(self, device, wrap, steps_per_epoch):
        self.modules = {"net": wrap(self.modules["net"].to(device))}
        self.optimizers = {"net": torch.optim.SGD(self.modules["net"].parameters(), lr=0.05, momentum=self.momentum)}

    def train_step(self, batch):
        x, y = batch
        loss = (self.modules["net"](x).squeeze(1) - y).square().mean()
        if self.steps == self.bad_at:
            loss = loss * self.bad
        self.optimizers["net"].zero_grad()
        loss.backward()
        self.optimizers["net"].step()
        self.steps += 1
        return {"loss": loss.detach()}

    def evaluate(self, batches):
        with torch.no_grad():
            errors = [(self.modules["net"](x).squeeze(1) - y).square() for x, y in batches]
        return {"mse": float(torch.cat(errors).mean())}

    def figures(self, batch):
        return {}

    def export(self):
        return {"state_dict": self.modules["net"].state_dict()}


def linear_job(root: Path, epochs: int, run_name: str, num_workers: int = 0) -> TrainJob:
    """A harness job for :class:`LinearTask` with the tiny params written to ``root``, checkpoints
    under ``root/storage``."""
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    params = load_params(root / "params.yaml")
    trainer = params.segmentation.trainer.model_copy(update={
        "num_workers": num_workers, "batch_size": 16, "eval_batch_size": 16, "eval_every": 1,
        "figure_every": 100, "loader_workers": 0, "use_gpu": False, "precision": "fp32",
    })
    return TrainJob(family="test", model="linear", params=params, trainer=trainer, epochs=epochs,
                    run_name=run_name, storage_path=str(root / "storage"))
