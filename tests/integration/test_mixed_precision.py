"""Mixed precision and GPUs through the harness: bf16 training on CPU (every run), on a GPU (the
``gpu`` tier, skipped without CUDA), and ``use_gpu: true`` on a cluster without GPUs."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile

import pytest
import torch
import yaml

from components.config import load_params, model_trainer
from components.runtime import with_absolute_paths
from components.train.harness import TrainJob, fit
from tests.conftest import run_env

pytestmark = pytest.mark.slow


def _fit_unet(root, **trainer):
    params = with_absolute_paths(load_params(root / "params.yaml"))
    with tempfile.TemporaryDirectory() as storage:
        job = TrainJob(family="segmentation", model="unet", params=params,
                       trainer=model_trainer(params, "segmentation", "unet").model_copy(update=trainer),
                       epochs=1, run_name="precision", storage_path=storage)
        return fit(job)


def _weights_are_float32(outcome) -> bool:
    state = outcome.export["state_dict"]
    return all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_bf16_training_on_cpu_with_a_loader_process(prepared, ray_session):
    """trainer.precision reaches the worker's task: a bf16-autocast epoch, its batches from a
    DataLoader process (trainer.loader_workers), trains and evaluates, and the weights it exports
    stay float32."""
    outcome = _fit_unet(prepared, precision="bf16", loader_workers=1)
    assert math.isfinite(outcome.final_metrics["train/loss"])
    assert 0 <= outcome.final_metrics["val/miou"] <= 1
    assert _weights_are_float32(outcome)
    assert "memory/gpu_peak_gib" not in outcome.final_metrics  # CPU: no GPU memory to report


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_bf16_training_reports_peak_memory(prepared, ray_session):
    outcome = _fit_unet(prepared, use_gpu=True, precision="bf16", cpus_per_worker=1)
    assert math.isfinite(outcome.final_metrics["train/loss"])
    assert 0 < outcome.final_metrics["memory/gpu_peak_gib"] < 80
    assert _weights_are_float32(outcome)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without GPUs")
@pytest.mark.parametrize(("num_workers", "says"), [
    (0, ["use_gpu is true but no CUDA GPU is visible"]),  # local path: this process must see one
    (1, ["use_gpu", "need 1 GPU(s)", "has 0 GPU(s)"]),  # worker path: the Ray cluster must have one
], ids=["local", "worker"])
def test_use_gpu_without_a_gpu_is_a_one_line_error(prepared, num_workers, says):
    """Not a hang waiting for resources: one line naming what was asked and what the machine or
    cluster has, before any output or MLflow run is written."""
    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["segmentation"]["trainer"].update(use_gpu=True, num_workers=num_workers)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "pipelines.train", "segmentation", "unet"], cwd=prepared,
                            env=run_env(prepared), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert all(part in lines[0] for part in says), lines[0]
    assert not (prepared / "models").exists()
    assert not (prepared / "mlflow.db").exists() or "segmentation" not in _experiment_names(prepared)


def _experiment_names(root) -> list[str]:
    from mlflow import MlflowClient

    return [e.name for e in MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()]
