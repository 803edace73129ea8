"""Benchmark on one GPU: our Ray Train harness vs a plain PyTorch loop, and every model under bf16.

    python -m bench.gpu_throughput [--side-by-side segmentation/unet detection/faster_rcnn]
                                   [--precision bf16] [--batch-size 64] [--epochs 3]
                                   [--smoke-steps 30] [--json results.json]

Run from the repository root after `dvc repro prepare evaluator` (or `python -m pipelines.prepare`
and `python -m pipelines.evaluator`), on a machine with a CUDA GPU.

1. Side by side, for each ``family/model`` given: the same task (network, optimizer, batches,
   precision) trained for ``--epochs`` epochs in a plain loop on ``cuda``, then by ``fit()`` with
   one GPU worker. Per-epoch training throughput (images/s, evaluation excluded; both sides
   synchronise the GPU before stopping the clock) and the peak GPU memory allocated during
   training. The first epoch includes cuDNN's algorithm search and the allocator's warm-up, so
   the last epoch is the one compared.
2. Smoke: every model of every supervised and generative family trains ``--smoke-steps``
   batches on the GPU under the chosen precision and is evaluated on 256 validation items; its
   step time, peak memory, final loss and headline metric are printed (not a benchmark of the
   model: a check that each one runs on a GPU in mixed precision).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from components.config import load_params, model_trainer
from components.families import FAMILIES, get_family
from components.runtime import ray_init, seed_everything, with_absolute_paths
from components.schema import TrainerConfig
from components.train.harness import TrainJob, build_loaders, fit
from components.train.precision import MixedPrecision

GIB = 2**30
CPUS_PER_WORKER = min(4, os.cpu_count() or 1)  # torch threads on both sides (collation, detectors' CPU ops)
DEVICE = torch.device("cuda")  # --device cpu: a dry run of this script's code paths on a machine without one


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _reset_peak() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats(DEVICE)


def _peak_gib() -> float:
    return torch.cuda.max_memory_allocated(DEVICE) / GIB if DEVICE.type == "cuda" else float("nan")


def gpu_trainer(params, family: str, model: str, precision: str, batch_size: int | None) -> TrainerConfig:
    trainer = model_trainer(params, family, model)
    update: dict[str, Any] = {"use_gpu": DEVICE.type == "cuda", "precision": precision, "num_workers": 1,
                              "cpus_per_worker": CPUS_PER_WORKER}
    if batch_size:
        update["batch_size"] = batch_size
    return trainer.model_copy(update=update)


def _smoke_val_loader(task, trainer: TrainerConfig, limit: int) -> DataLoader:
    val = task.datasets()["val"]
    return DataLoader(Subset(val, range(min(limit, len(val)))), batch_size=trainer.eval_batch_size,
                      collate_fn=task.collate_fn)


def _build(family: str, model: str, params, trainer: TrainerConfig, device: torch.device):
    torch.set_num_threads(int(trainer.cpus_per_worker))  # as the harness's worker does
    seed_everything(params.seed)
    task = get_family(family).build_task(model, params)
    sampler, loader, val = build_loaders(task, trainer, rank=0, world=1, seed=params.seed)  # the harness's batches
    task.setup(device, wrap=lambda module, **_: module, steps_per_epoch=len(loader))
    task.precision = MixedPrecision(trainer.precision, device.type)
    return task, sampler, loader, val


def plain_loop(family: str, model: str, params, trainer: TrainerConfig, epochs: int) -> dict[str, Any]:
    """Train on the GPU without Ray; per-epoch images/s and the training peak memory."""
    task, sampler, loader, val = _build(family, model, params, trainer, DEVICE)
    _reset_peak()
    throughput = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        _sync()
        started = time.perf_counter()
        for batch in loader:
            task.train_step(batch)
        _sync()
        throughput.append(len(sampler) / (time.perf_counter() - started))
    peak = _peak_gib()
    metrics = task.evaluate(val)
    headline = get_family(family).headline.removeprefix("val/")
    return {"images_per_s": throughput, "gpu_peak_gib": peak, "metric": float(metrics[headline])}


def harness(family: str, model: str, params, trainer: TrainerConfig, epochs: int) -> dict[str, Any]:
    """``fit()`` with one GPU worker; the harness's own per-epoch throughput and memory metrics."""
    with tempfile.TemporaryDirectory() as storage:
        job = TrainJob(family=family, model=model, params=params, trainer=trainer, epochs=epochs,
                       run_name=f"gpu-bench-{family}-{model}", storage_path=storage)
        started = time.perf_counter()
        outcome = fit(job)
        wall = time.perf_counter() - started
    history = outcome.history
    return {
        "images_per_s": [h["throughput/train_samples_per_s"] for h in history],
        "gpu_peak_gib": max(h.get("memory/gpu_peak_gib", float("nan")) for h in history),
        "metric": outcome.final_metrics.get(get_family(family).headline, float("nan")),
        "fit_wall_s": wall,
    }


def smoke(family: str, model: str, params, precision: str, batch_size: int | None, steps: int) -> dict[str, Any]:
    """A few GPU training steps in ``precision`` and an evaluation on 256 validation items."""
    trainer = gpu_trainer(params, family, model, precision, batch_size)
    task, sampler, loader, _ = _build(family, model, params, trainer, DEVICE)
    sampler.set_epoch(0)
    _reset_peak()
    losses, step_s, batches = [], [], iter(loader)
    for step in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        _sync()
        started = time.perf_counter()
        out = task.train_step(batch)
        _sync()
        if step >= min(5, steps - 1):  # the first steps pay for cuDNN's algorithm search
            step_s.append(time.perf_counter() - started)
        losses.append(float(next(iter(out.values()))))
    peak = _peak_gib()
    metrics = task.evaluate(_smoke_val_loader(task, trainer, limit=256))
    headline = get_family(family).headline.removeprefix("val/")
    return {"batch_size": trainer.batch_size, "ms_per_step": 1000 * sum(step_s) / len(step_s),
            "first_loss": losses[0], "last_loss": losses[-1], "finite": all(map(math.isfinite, losses)),
            "gpu_peak_gib": peak, "metric": float(metrics[headline]), "metric_name": headline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side-by-side", nargs="*", default=["segmentation/unet", "detection/faster_rcnn"])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch-size", type=int, default=64, help="per GPU, both sides (0: params.yaml's)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--smoke-steps", type=int, default=30, help="0 skips the every-model smoke")
    parser.add_argument("--smoke-families", nargs="*", default=sorted(FAMILIES))
    parser.add_argument("--json", default=None, help="write every result here")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run of the code paths")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench.gpu_throughput needs a CUDA GPU (--device cpu for a dry run)")
    params = with_absolute_paths(load_params())
    gpu = torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else platform.processor() or "cpu"
    print(f"{gpu}; torch {torch.__version__}; {platform.machine()}; precision {args.precision}", flush=True)
    results: dict[str, Any] = {"device": gpu, "torch": torch.__version__, "precision": args.precision,
                               "batch_size": args.batch_size, "epochs": args.epochs, "side_by_side": {}, "smoke": {}}

    if args.side_by_side:
        ray_init()
        import ray

        print(f"ray cluster resources: {ray.cluster_resources()}", flush=True)
    for name in args.side_by_side:
        family, model = name.split("/")
        trainer = gpu_trainer(params, family, model, args.precision, args.batch_size)
        plain = plain_loop(family, model, params, trainer, args.epochs)
        ours = harness(family, model, params, trainer, args.epochs)
        ratio = ours["images_per_s"][-1] / plain["images_per_s"][-1]
        results["side_by_side"][name] = {"plain": plain, "harness": ours, "ratio_last_epoch": ratio,
                                         "batch_size": trainer.batch_size}
        print(f"| {name} | {trainer.batch_size} | {args.precision} | {plain['images_per_s'][-1]:.0f} | "
              f"{ours['images_per_s'][-1]:.0f} | {ratio:.3f} | {plain['gpu_peak_gib']:.2f} | "
              f"{ours['gpu_peak_gib']:.2f} | {plain['metric']:.4f} / {ours['metric']:.4f} |", flush=True)
        print(f"    per-epoch images/s plain {[round(x) for x in plain['images_per_s']]}  "
              f"harness {[round(x) for x in ours['images_per_s']]}  fit wall {ours['fit_wall_s']:.1f}s", flush=True)

    for family in args.smoke_families if args.smoke_steps else []:
        for model in get_family(family).models:
            key = f"{family}/{model}"
            try:
                row = smoke(family, model, params, args.precision, None, args.smoke_steps)
            except Exception as error:  # one model's failure must not hide the others' results
                row = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
                print(f"| {key} | FAILED | {row['error']} |", flush=True)
            else:
                print(f"| {key} | {row['batch_size']} | {row['ms_per_step']:.1f} | {row['first_loss']:.3f} -> "
                      f"{row['last_loss']:.3f} | {row['gpu_peak_gib']:.2f} | {row['metric_name']} "
                      f"{row['metric']:.4f} |", flush=True)
            results["smoke"][key] = row
            if DEVICE.type == "cuda":
                torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
