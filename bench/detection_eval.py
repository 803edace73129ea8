"""Benchmark: COCO box AP of the same predictions by our evaluator vs pycocotools' COCOeval.

    python -m bench.detection_eval [--images 500] [--detections 100] [--repeats 3] [--append]

Predictions are the scenes' ground truth (the split's ``instances_<split>.json``) jittered by a
few pixels with random scores, plus random false positives, up to ``--detections`` per image —
the load of a real detector's output at COCO's maxDets=100. Three paths, one after the other in
one process: pycocotools (``COCO.loadRes`` + ``COCOeval`` evaluate/accumulate/summarize, the
reference), torchmetrics' ``MeanAveragePrecision`` on the faster-coco-eval backend (COCO numbers
only, with COCOeval's float64 thresholds: torchmetrics' float32 defaults move AP by ~2e-4), and
our ``DetectionEvaluator.compute`` (that plus per-class AP and VOC AP, what a validation pass
runs). AP@[.5:.95] must agree to 1e-6. Run from the repository root after
`dvc repro prepare`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchmetrics.detection import MeanAveragePrecision

from components.metrics.detection import IOU_THRESHOLDS, RECALL_THRESHOLDS, DetectionEvaluator


def make_predictions(gt: dict, per_image: int, seed: int) -> list[dict]:
    """COCO-format detections: each object found with a jittered box, then false positives."""
    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    categories = [c["id"] for c in gt["categories"]]
    by_image: dict[int, list] = {im["id"]: [] for im in gt["images"]}
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, 1.5, 4)
        by_image[ann["image_id"]].append(
            {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": float(rng.uniform(0.3, 1)),
             "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]})
    detections = []
    for image_id, found in by_image.items():
        width, height = sizes[image_id]
        for _ in range(per_image - len(found)):
            w, h = rng.uniform(6, 30, 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            found.append({"image_id": image_id, "category_id": int(rng.choice(categories)),
                          "score": float(rng.uniform(0, 0.6)), "bbox": [x, y, w, h]})
        detections += found
    return detections


def pycocotools_ap(gt_path: Path, detections: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def to_torch(gt: dict, detections: list[dict]) -> tuple[list[dict], list[dict]]:
    ids = [im["id"] for im in gt["images"]]

    def xyxy(b):
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]

    preds = {i: {"boxes": [], "scores": [], "labels": []} for i in ids}
    for d in detections:
        p = preds[d["image_id"]]
        p["boxes"].append(xyxy(d["bbox"]))
        p["scores"].append(d["score"])
        p["labels"].append(d["category_id"])
    targets = {i: {"boxes": [], "labels": []} for i in ids}
    for a in gt["annotations"]:
        targets[a["image_id"]]["boxes"].append(xyxy(a["bbox"]))
        targets[a["image_id"]]["labels"].append(a["category_id"])

    def tensors(d):
        return {"boxes": torch.tensor(d["boxes"], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(d["labels"], dtype=torch.int64),
                **({"scores": torch.tensor(d["scores"], dtype=torch.float32)} if "scores" in d else {})}

    return [tensors(preds[i]) for i in ids], [tensors(targets[i]) for i in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/scenes")
    parser.add_argument("--split", default="val")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--detections", type=int, default=100, help="per image")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each path")
    parser.add_argument("--append", action="store_true", help="append the row to BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    gt_path = Path(args.data) / f"instances_{args.split}.json"
    gt = json.loads(gt_path.read_text())
    keep = {im["id"] for im in gt["images"][: args.images]}
    gt = {**gt, "images": [im for im in gt["images"] if im["id"] in keep],
          "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
    subset = Path("/tmp") / f"courselab-bench-{gt_path.stem}-{args.images}.json"
    subset.write_text(json.dumps(gt))
    detections = make_predictions(gt, args.detections, seed=0)
    preds, targets = to_torch(gt, detections)
    class_names = ["background"] + [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]

    def torchmetrics_ap() -> float:
        metric = MeanAveragePrecision(box_format="xyxy", backend="faster_coco_eval", iou_thresholds=IOU_THRESHOLDS,
                                      rec_thresholds=RECALL_THRESHOLDS)
        metric.update(preds, targets)
        with contextlib.redirect_stdout(io.StringIO()):
            return float(metric.compute()["map"])

    def ours_ap() -> float:
        evaluator = DetectionEvaluator(class_names)
        evaluator.update(preds, targets)
        return evaluator.compute()["map"]

    results = {}
    for name, run in (("pycocotools", lambda: pycocotools_ap(subset, detections)),
                      ("torchmetrics+faster_coco_eval", torchmetrics_ap), ("ours (+ per-class, VOC)", ours_ap)):
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            ap = run()
            times.append(time.perf_counter() - started)
        results[name] = (min(times), ap)
        print(f"{name:32s} {min(times):7.3f} s   AP@[.5:.95] {ap:.6f}")
    reference_s, reference_ap = results["pycocotools"]
    for name, (_, ap) in results.items():
        if abs(ap - reference_ap) > 1e-6:
            raise SystemExit(f"{name}: AP {ap} differs from pycocotools' {reference_ap}")
    fast_s, ours_s = results["torchmetrics+faster_coco_eval"][0], results["ours (+ per-class, VOC)"][0]
    row = (f"| {date.today()} | detection eval, {len(gt['images'])} images x {args.detections} dets, "
           f"{len(gt['annotations'])} objects | pycocotools {reference_s:.2f} s | torchmetrics+faster-coco-eval "
           f"{fast_s:.2f} s ({reference_s / fast_s:.1f}x faster) | ours (+ per-class + VOC) {ours_s:.2f} s "
           f"({reference_s / ours_s:.1f}x) | AP {reference_ap:.4f} equal | {platform.node()}, 1 thread |")
    print(row)
    if args.append:
        with open("BENCHMARKS.md", "a") as out:
            out.write(row + "\n")


if __name__ == "__main__":
    main()
