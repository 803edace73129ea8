"""Training throughput of the segmentation models on 2 CPU threads (a benchmark, not a test).

Times forward + backward + Adam step on synthetic 64x64 1-channel batches and prints one
Markdown table row per model:

    .venv/bin/python bench/segmentation_sizing.py [--models fcn unet] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from components.families.segmentation.models import MODELS, build_model


def train_images_per_second(
    name: str,
    batch_size: int,
    image_size: int,
    num_classes: int,
    warmup_steps: int,
    timed_steps: int,
    windows: int,
    channels_last: bool,
) -> tuple[int, float, float]:
    """(parameter count, median, best training images/s over ``windows`` timing windows) of ``name``.

    The best window is the least disturbed by other processes on a shared machine.
    """
    model = build_model(name, in_channels=1, num_classes=num_classes).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(batch_size, 1, image_size, image_size)
    targets = torch.randint(num_classes, (batch_size, image_size, image_size))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), targets).backward()
        optimizer.step()

    for _ in range(warmup_steps):
        step()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(timed_steps // windows):
            step()
        rates.append(timed_steps // windows * batch_size / (time.perf_counter() - start))
    return sum(p.numel() for p in model.parameters()), statistics.median(rates), max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--timed-steps", type=int, default=30)
    parser.add_argument("--windows", type=int, default=3, help="timed steps are split into this many windows")
    parser.add_argument("--channels-last", action="store_true", help="NHWC model and inputs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"training throughput: batch {args.batch_size}, {args.image_size}x{args.image_size}x1, "
        f"{args.num_classes} classes, {args.threads} threads, torch {torch.__version__}, "
        f"{'channels_last' if args.channels_last else 'contiguous (NCHW)'}, load average {os.getloadavg()[0]:.1f}"
    )
    print("| model | params | train img/s (median) | train img/s (best window) |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.models:
        params, median, best = train_images_per_second(
            name,
            args.batch_size,
            args.image_size,
            args.num_classes,
            args.warmup_steps,
            args.timed_steps,
            args.windows,
            args.channels_last,
        )
        print(f"| {name} | {params / 1e6:.3f}M | {median:.0f} | {best:.0f} |", flush=True)


if __name__ == "__main__":
    main()
