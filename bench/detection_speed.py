"""Benchmark: the course's detection comparison: sliding window, R-CNN, Fast R-CNN, Faster R-CNN.

    python -m bench.detection_speed [--images 100] [--repeats 3] [--threads 2]

Loads each trained detector (``models/detection/<model>/model.pt``, from its train stage) and
times it on the first ``--images`` validation scenes, one image per call (the papers' "test time
per image") and all of them in one call (as the stage's evaluation batches them), side by side in
one process, best of ``--repeats``: the detector alone (R-CNN and Fast R-CNN on the cached
selective-search proposals), and selective search itself (measured here, on the same images).
Prints a Markdown table with each stage's AP50, AP and training time (its metrics file) and the
inference ratios against R-CNN. Run from the repository root after the four ``train_detection``
stages.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from components.data.proposals import read_proposals, selective_search
from components.families.detection.task import PROPOSAL_MODELS, DetectionDataset, load_exported

MODELS = ("sliding_window", "rcnn", "fast_rcnn", "faster_rcnn")
DATA = Path("data/scenes")


def time_per_image(run, items: list, repeats: int) -> float:
    """Best-of-``repeats`` mean seconds of ``run(item)`` over ``items``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            run(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    val = DetectionDataset(DATA, "val", proposals=True)
    items = [val[i] for i in range(args.images)]
    proposals, _ = read_proposals(DATA, "val")
    pixels = [(image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy() for image, _ in items]
    search = torch.load(Path("models/detection/rcnn/model.pt"), weights_only=False)["proposals"]
    search_s = time_per_image(lambda p: selective_search(p, **search), pixels, args.repeats)

    rows = {}
    for model in MODELS:
        export = torch.load(Path("models/detection") / model / "model.pt", weights_only=False)
        net = load_exported(export)
        if model in PROPOSAL_MODELS and export["proposals"] != search:
            print(f"note: {model} was trained on proposals {export['proposals']}, R-CNN on {search}; "
                  "both are timed on the cached ones")

        def run(indices, net=net, model=model):
            images = [items[i][0] for i in indices]
            if model in PROPOSAL_MODELS:
                return net(images, [torch.from_numpy(proposals[i]) for i in indices])
            return net(images)

        with torch.no_grad():
            detector_s = time_per_image(run, [[i] for i in range(len(items))], args.repeats)
            batched_s = time_per_image(run, [list(range(len(items)))], args.repeats) / len(items)
        metrics = json.loads((Path("metrics/details") / f"detection-{model}.json").read_text())
        rows[model] = {"detector_s": detector_s, "batched_s": batched_s,
                       "search_s": search_s if model in PROPOSAL_MODELS else 0.0,
                       "map50": metrics["val/map50"], "map": metrics["val/map"],
                       "train_s": metrics["train_wall_s"],
                       "params": sum(p.numel() for p in net.parameters())}

    one, batched = rows["rcnn"]["detector_s"], rows["rcnn"]["batched_s"]
    print(f"\n{date.today()}, {platform.machine()} {platform.node()}, torch {torch.__version__}, "
          f"{args.threads} threads, {args.images} val images, best of {args.repeats}\n")
    print("| model | params | val AP50 | val AP | training | detector ms/image, one at a time (R-CNN / it) | "
          f"detector ms/image, {args.images} per call (R-CNN / it) | + selective search ms | "
          "total ms/image, one at a time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, r in rows.items():
        total = r["detector_s"] + r["search_s"]
        print(f"| {model} | {r['params'] / 1e6:.2f}M | {r['map50']:.3f} | {r['map']:.3f} | {r['train_s']:.0f} s | "
              f"{1000 * r['detector_s']:.2f} ({one / r['detector_s']:.1f}x) | "
              f"{1000 * r['batched_s']:.2f} ({batched / r['batched_s']:.1f}x) | "
              f"{1000 * r['search_s']:.1f} | {1000 * total:.1f} |")
    print(f"\nproposals per image (val, cached): {np.mean([len(p) for p in proposals]):.1f}; selective search {search}")


if __name__ == "__main__":
    main()
