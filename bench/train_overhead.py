"""Benchmark: the same model, data and epochs in a plain PyTorch loop vs our Ray Train harness.

    python -m bench.train_overhead [--family segmentation] [--model unet] [--epochs N]
                                   [--num-workers N] [--controller-poll-s S] [--append]

Both sides use the family's own task (same network, optimizer, batches, evaluation every
``trainer.eval_every`` epochs and after the last) and the same thread count; they run one after
the other in one process, so the ratio is measured under the same machine conditions. The harness
side is ``fit()`` with params.yaml's trainer (``--num-workers`` overrides it): on the local path
(0, the default) in this process, per-epoch checkpoints written to storage; with workers, their
start-up and DDP setup included, and ``ray.init`` timed separately because a stage pays it once
however many jobs it runs. Run from the repository root after `dvc repro prepare`.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from components.config import load_params, model_trainer
from components.families import get_family
from components.runtime import ray_init, seed_everything, with_absolute_paths
from components.train.harness import TrainJob, fit


def plain_loop(family: str, model: str, params, epochs: int) -> tuple[float, float]:
    """Train, evaluating on the harness's cadence, without Ray; returns (wall s, final headline metric)."""
    trainer = model_trainer(params, family, model)
    torch.set_num_threads(max(1, int(trainer.cpus_per_worker)))
    seed_everything(params.seed)
    started = time.perf_counter()
    task = get_family(family).build_task(model, params)
    data = task.datasets()
    generator = torch.Generator().manual_seed(params.seed)
    collate = task.collate_fn  # as the harness does (detection batches are lists)
    train = DataLoader(data["train"], batch_size=trainer.batch_size, shuffle=True, generator=generator,
                       collate_fn=collate)
    task.setup(torch.device("cpu"), wrap=lambda module, **_: module, steps_per_epoch=len(train))
    val = DataLoader(data["val"], batch_size=trainer.eval_batch_size, collate_fn=collate)
    metrics = {}
    for epoch in range(epochs):
        for batch in train:
            task.train_step(batch)
        if epoch + 1 == epochs or (epoch + 1) % trainer.eval_every == 0:
            metrics = task.evaluate(val)
    return time.perf_counter() - started, next(iter(metrics.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="segmentation")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's epochs in params.yaml")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="trainer.num_workers for the harness side (default: params.yaml's; 0 = local path)")
    parser.add_argument("--controller-poll-s", type=float, default=None,
                        help="trainer.controller_poll_s for the harness side (default: params.yaml's)")
    parser.add_argument("--append", action="store_true", help="append the result row to BENCHMARKS.md")
    args = parser.parse_args()

    params = with_absolute_paths(load_params())
    section = getattr(params, args.family)
    epochs = args.epochs or getattr(section.models, args.model).epochs

    plain_s, plain_metric = plain_loop(args.family, args.model, params, epochs)
    print(f"plain PyTorch loop: {plain_s:.1f}s, headline metric {plain_metric:.4f}", flush=True)

    trainer = model_trainer(params, args.family, args.model)
    if args.num_workers is not None:
        trainer = trainer.model_copy(update={"num_workers": args.num_workers})
    started = time.perf_counter()
    if trainer.num_workers:
        ray_init(params.runtime.ray_address)
    init_s = time.perf_counter() - started
    if args.controller_poll_s is not None:
        trainer = trainer.model_copy(update={"controller_poll_s": args.controller_poll_s})
    with tempfile.TemporaryDirectory() as storage:
        job = TrainJob(
            family=args.family, model=args.model, params=params,
            trainer=trainer, epochs=epochs,
            run_name=f"bench-{args.model}", storage_path=storage,
        )
        started = time.perf_counter()
        outcome = fit(job)
        harness_s = time.perf_counter() - started
    harness_metric = outcome.final_metrics.get(get_family(args.family).headline, float("nan"))
    print(f"Ray Train harness:  {harness_s:.1f}s (+ ray.init {init_s:.1f}s), headline metric {harness_metric:.4f}")
    ratio = harness_s / plain_s
    workers = f"{trainer.num_workers} x" if trainer.num_workers else "local,"
    row = (
        f"| {date.today()} | {args.family}/{args.model} | {epochs} | {workers} {trainer.cpus_per_worker:g} CPU | "
        f"{plain_s:.1f} | {harness_s:.1f} | {init_s:.1f} | {ratio:.3f} | {platform.machine()}, "
        f"{torch.get_num_threads()} threads |"
    )
    print(f"ratio harness/plain: {ratio:.3f}\n{row}")
    if args.append:
        with Path("BENCHMARKS.md").open("a") as f:
            f.write(row + "\n")


if __name__ == "__main__":
    main()
