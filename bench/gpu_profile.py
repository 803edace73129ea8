"""Benchmark the GPU profile (params-gpu.yaml): each model at its papers' size on one GPU.

    python -m bench.gpu_profile [--models family/model ...] [--side-by-side family/model ...]
                                [--steps 100] [--epochs 2] [--workers 0] [--workdir DIR] [--deadline-s S]
                                [--dqn-seconds S] [--json PATH] [--device cuda|cpu] [--tiny]

Data: the profile's datasets as synthetic stand-ins at the real sizes (``data.<name>.synthetic``),
written by the real prepare stage under ``--workdir``/data; each stand-in is drawn just large enough
(``synthetic_fraction``) for ``--steps`` training steps in ``--epochs`` epochs at the profile's batch.

Per model, in one process, with the same task, batches and precision (bf16):

1. **reference**: the model's training step alone, repeated on one batch already on the GPU (no
   data loading, no harness): what the chip does for this network at this size, the figure
   published benchmarks quote (synthetic-data runs). ``classification/resnet50`` is torchvision's
   ResNet-50 at 224 px, batch 256, for comparison with published ResNet-50 throughput.
2. **plain** (``--side-by-side`` models): the family's task stepped by a plain PyTorch loop over
   the harness's own loaders, as torchvision's references' ``train_one_epoch`` does.
3. **harness**: ``fit()`` (``--workers 0``: Ray Train's local mode in this process; ``N``: N Ray
   Train workers on a local Ray, one GPU each, DDP from 2), its own per-epoch images/s (all
   workers together), loss and peak memory (rank 0's).

Reported: images/s (sentence pairs/s for translation, image-caption pairs/s for captioning, COCO's
stand-in with five captions per image; label map -> photo pairs for image_translation, scored by an
untrained FCN-ResNet50 here) of the last epoch (the first pays cuDNN's
algorithm search), harness/reference and harness/plain ratios, peak GPU memory (GiB and % of the
card), the training loss per epoch.
``--dqn-seconds S`` adds the profile's Breakout DQN (RLlib, learner on the GPU): env steps/s.
``--device cpu --tiny`` is a dry run of the code paths on a machine without a GPU.
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
import yaml

import bench.gpu_throughput
from bench.gpu_throughput import plain_loop
from components.config import model_trainer, parse_params
from components.data.synthetic import (
    CIFAR10_TRAIN_IMAGES,
    COCO_TRAIN_IMAGES,
    MNIST_TRAIN_IMAGES,
    MULTI30K_SIZES,
    VOC_TRAIN_IDS,
)
from components.data.synthetic.captions import CAPTIONS_PER_IMAGE
from components.families import get_family
from components.runtime import seed_everything
from components.train.harness import TrainJob, build_loaders, fit
from components.train.precision import MixedPrecision
from tools.profile import merged, profile_overrides

GIB = 2**30
DEFAULT_MODELS = (
    "segmentation/fcn", "detection/faster_rcnn", "segmentation/dilated", "detection/retinanet",
    "detection/fcos", "detection/mask_rcnn", "generative/dcgan", "translation/transformer",
    "captioning/show_attend_tell", "image_translation/pix2pix",
)  # fmt: skip  (most wanted first: --deadline-s may cut the list short)
DEFAULT_SIDE_BY_SIDE = ("segmentation/fcn", "detection/faster_rcnn")
PROFILE_DATASETS = {"segmentation": "voc", "detection": "coco", "generative": "cifar10", "translation": "parallel",
                    "captioning": "coco", "image_translation": "voc"}  # captioning and image_translation share
# detection's data/coco and segmentation's data/voc (resized when loaded)
ITEMS_PER_IMAGE = {"captioning": CAPTIONS_PER_IMAGE}  # training items per train image (else 1): captions
REAL_TRAIN_IMAGES = {  # items (images, sentence pairs) of each train split
    "voc": VOC_TRAIN_IDS, "coco": COCO_TRAIN_IMAGES, "mnist": MNIST_TRAIN_IMAGES, "cifar10": CIFAR10_TRAIN_IMAGES,
    "parallel": MULTI30K_SIZES["train"],
}  # fmt: skip


def _to(batch: Any, device: torch.device) -> Any:
    """A batch (tensors in lists, tuples and dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to(value, device) for key, value in batch.items()}
    return batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else float("nan")


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def profile_params(data_root: Path, steps: int, epochs: int, tiny: bool, device: torch.device,
                   models: tuple[str, ...] = DEFAULT_MODELS) -> dict:
    """params.yaml + params-gpu.yaml (stand-ins) with the stand-ins sized for ``steps``."""
    base = yaml.safe_load(Path("params.yaml").read_text())
    raw = merged(base, profile_overrides("gpu", synthetic=True))
    raw["data"]["root"] = str(data_root)
    raw["data"]["scenes"].update(num_train=64, num_val=16, num_test=16)  # unused here: keep prepare short
    raw["data"]["grammar_en_de"].update(num_train=200, num_val=20, num_test=20, max_words=20, num_longer=5,
                                        longer_max_words=26)
    raw["data"]["word_order"].update(num_train=100, num_val=10, num_test=10)  # drawn from grammar_en_de's splits
    if tiny:
        raw["data"]["voc"]["image_size"] = raw["data"]["coco"]["image_size"] = 64
        for family in PROFILE_DATASETS:
            raw[family]["trainer"]["batch_size"] = 2
            for model in raw[family]["models"].values():
                if model.get("batch_size"):
                    model["batch_size"] = 2
        raw["generative"]["fid"].update(num_generated=32, reference_split="val")
        raw["captioning"]["image_size"] = None  # data/coco's 64 px as prepared: a 4x4 grid
        raw["image_translation"]["image_size"] = 32  # half of data/voc's 64, as 256 of 512
        raw["image_translation"]["generator"]["depth"] = 5
    if device.type == "cpu":
        for family in PROFILE_DATASETS:
            raw[family]["trainer"].update(use_gpu=False, precision="fp32" if tiny else "bf16")
        raw["trainer"].update(use_gpu=False, cpus_per_worker=1)
    wanted: dict[str, float] = {}  # dataset -> train images its benchmarked families need (the most)
    for family, dataset in PROFILE_DATASETS.items():
        mine = [m.split("/")[1] for m in models if m.startswith(family + "/")]
        if mine:
            batch = max([raw[family]["trainer"]["batch_size"]]
                        + [raw[family]["models"][m].get("batch_size") or 0 for m in mine])
            per_epoch = math.ceil(steps / epochs) * batch / ITEMS_PER_IMAGE.get(family, 1)
            images = per_epoch / (1 - raw["data"][dataset]["val_fraction"]) * 1.02
            wanted[dataset] = max(wanted.get(dataset, 0.0), images)
    for dataset in dict.fromkeys(PROFILE_DATASETS.values()):
        section = raw["data"][dataset]
        if dataset not in wanted:  # not benchmarked: not generated
            section["synthetic"] = False
            continue
        section["synthetic_fraction"] = min(1.0, wanted[dataset] / REAL_TRAIN_IMAGES[dataset])
        if dataset == "coco":
            section["max_test_images"] = 64 if tiny else 100
    for family in PROFILE_DATASETS:
        raw[family]["trainer"].update(eval_every=epochs, figure_every=10**6)  # one evaluation, at the end
        for model in raw[family]["models"].values():
            model["epochs"] = epochs
    return raw


def prepare(raw: dict, workdir: Path) -> float:
    """The real prepare stage on the bench's params (``workdir`` is the repository root meanwhile)."""
    from pipelines.prepare import main as prepare_main  # noqa: PLC0415

    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    started = time.perf_counter()
    prepare_main(["--params", str(path)])
    return time.perf_counter() - started


def quick_evaluator(params, device: torch.device) -> float:
    """The generative task needs the evaluator stage's classifier (for FID): one epoch of it here,
    without the stage's MLflow run. The FID it gives is not the profile's: only training is timed."""
    from components.data.schema import read_meta  # noqa: PLC0415
    from components.families.generative.base import EVALUATOR_DIR, load_split  # noqa: PLC0415
    from components.families.generative.evaluator import (  # noqa: PLC0415
        EVALUATOR_FILE,
        Evaluator,
        EvaluatorTraining,
        export_evaluator,
        train_evaluator,
    )
    from components.runtime import resolve  # noqa: PLC0415
    from pipelines.evaluator import ARCH_KEYS  # noqa: PLC0415

    config = params.generative.evaluator
    directory = resolve(params.data.root) / params.generative.dataset
    meta = read_meta(directory)
    arch = {"in_channels": meta.channels, "num_classes": meta.num_classes, "image_size": meta.height,
            **{k: getattr(config, k) for k in ARCH_KEYS}}
    training = EvaluatorTraining(**config.model_dump(exclude={*ARCH_KEYS, "min_test_accuracy"}) | {"epochs": 1})
    net = Evaluator(**arch)
    splits = {split: load_split(directory, split).tensors for split in ("train", "val", "test")}
    started = time.perf_counter()
    result = train_evaluator(net, splits, training, params.seed, lambda epoch, metrics: None, device)
    out = resolve(EVALUATOR_DIR)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(export_evaluator(net, arch, meta.class_names, result), out / EVALUATOR_FILE)
    print(f"evaluator: 1 epoch, test accuracy {result['test/accuracy']:.3f}", flush=True)
    return time.perf_counter() - started


def untrained_scorer(params) -> None:
    """The image-translation task reads the segmentation stage's network (its FCN-score): an
    untrained one of the profile's architecture here, unless ``--workdir`` already holds one (never
    overwritten). Its scores are not the profile's: only training is timed."""
    from components.families.image_translation.scoring import scorer_folder  # noqa: PLC0415
    from components.families.segmentation.task import build_task as segmentation_task  # noqa: PLC0415
    from components.runtime import resolve  # noqa: PLC0415

    scorer = params.image_translation.scorer
    out = resolve(scorer_folder(scorer))
    if (out / "model.pt").is_file():
        return
    task = segmentation_task(scorer, params)
    task.setup(torch.device("cpu"), wrap=lambda module, **_: module, steps_per_epoch=1)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(task.export(), out / "model.pt")


def reference_step(family: str, model: str, params, trainer, device: torch.device, steps: int) -> dict[str, Any]:
    """The task's training step repeated on one batch held on ``device``: images/s and peak memory."""
    torch.set_num_threads(int(trainer.cpus_per_worker))
    seed_everything(params.seed)
    task = get_family(family).build_task(model, params)
    _, loader, _ = build_loaders(task, trainer, rank=0, world=1, seed=params.seed)
    task.setup(device, wrap=lambda module, **_: module, steps_per_epoch=len(loader))
    task.precision = MixedPrecision(trainer.precision, device.type)
    batch = _to(next(iter(loader)), device)
    _reset(device)
    warmup = min(10, steps)
    for _ in range(warmup):
        task.train_step(batch)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        task.train_step(batch)
    _sync(device)
    elapsed = time.perf_counter() - started
    return {"images_per_s": steps * trainer.batch_size / elapsed, "gpu_peak_gib": _peak(device),
            "ms_per_step": 1000 * elapsed / steps, "steps_per_epoch": len(loader)}


def resnet50_reference(device: torch.device, steps: int, tiny: bool) -> dict[str, Any]:
    """torchvision's ResNet-50 classifier, 224 px, batch 256, bf16, NHWC, SGD: the published yardstick."""
    from torchvision.models import resnet50  # noqa: PLC0415

    batch, size = (4, 64) if tiny else (256, 224)
    net = resnet50(weights=None).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)
    _reset(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(min(10, steps)):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return {"images_per_s": steps * batch / (time.perf_counter() - started), "gpu_peak_gib": _peak(device),
            "batch_size": batch, "image_size": size}


def dqn_throughput(params, seconds: float, device: torch.device) -> dict[str, Any]:
    """The profile's DQN on Breakout through RLlib (env runners sampling, the local learner on the
    GPU): env steps/s and replayed transitions/s after the first updates; ``learning_starts`` is
    lowered to 2,000 steps so updates begin within the measurement. Nothing is checkpointed."""
    import ray  # noqa: PLC0415

    from components.families.rl.dqn.config import build_dqn_config  # noqa: PLC0415
    from components.families.rl.envs import env_config, register_envs  # noqa: PLC0415
    from components.runtime import ray_init  # noqa: PLC0415

    cfg = params.rl.algos.dqn.model_copy(update={"learning_starts": 2000})
    if device.type == "cpu":  # a dry run: sample in the driver, learn on CPU
        cfg = cfg.model_copy(update={"num_env_runners": 0, "num_gpus_per_learner": 0, "replay_capacity": 5000,
                                     "learning_starts": 500, "training_intensity": 1.0})
    started_ray = not ray.is_initialized()
    if started_ray:
        ray_init()
    register_envs()  # as the rl stage does: Breakout and the grid world, for RLlib's env creators
    _reset(device)
    algo = build_dqn_config(cfg, env_config("dqn", params), params.seed).build_algo()
    try:
        started, timed = time.perf_counter(), None
        while True:
            steps = int(algo.train().get("num_env_steps_sampled_lifetime", 0))
            now = time.perf_counter()
            if timed is None and steps > cfg.learning_starts:  # updating from here on: start the clock
                timed = (now, steps)
            elif timed is not None and now - started >= seconds and steps > timed[1]:
                break
            if now - started > 3 * seconds:
                raise RuntimeError(f"fewer than two iterations with updates in {3 * seconds:g} s ({steps} env steps)")
        rate = (steps - timed[1]) / (now - timed[0])
    finally:
        algo.stop()
        if started_ray:
            ray.shutdown()
    return {"env_steps_per_s": rate, "replayed_per_s": rate * (cfg.training_intensity or 1.0),
            "env_steps": steps, "gpu_peak_gib": _peak(device), "num_env_runners": cfg.num_env_runners}


def harness_run(family: str, model: str, params, trainer, epochs: int, device: torch.device) -> dict[str, Any]:
    """``fit()`` on the profile's trainer; per-epoch images/s, loss and peak memory from its history."""
    _reset(device)
    with tempfile.TemporaryDirectory() as storage:
        job = TrainJob(family=family, model=model, params=params, trainer=trainer, epochs=epochs,
                       run_name=f"gpu-profile-{family}-{model}", storage_path=storage, ray_log_level="WARNING")
        started = time.perf_counter()
        outcome = fit(job)
        wall = time.perf_counter() - started
    history = outcome.history
    losses = {key: [h[key] for h in history] for key in history[0] if key.startswith("train/loss")}
    return {
        "images_per_s": [h["throughput/train_samples_per_s"] for h in history],
        "gpu_peak_gib": max((h.get("memory/gpu_peak_gib", float("nan")) for h in history), default=float("nan")),
        "losses": losses,
        "metric": outcome.final_metrics.get(get_family(family).headline, float("nan")),
        "fit_wall_s": wall,
    }


def measure(name: str, params, args, device: torch.device, total_gib: float) -> dict[str, Any]:
    family, model = name.split("/")
    trainer = model_trainer(params, family, model).model_copy(update={"num_workers": args.workers})
    row: dict[str, Any] = {"batch_size": trainer.batch_size, "precision": trainer.precision}
    row["reference"] = reference_step(family, model, params, trainer, device, args.reference_steps)
    row["steps"] = row["reference"]["steps_per_epoch"] * args.epochs  # the harness's and the plain loop's
    if name in args.side_by_side:
        _reset(device)
        row["plain"] = plain_loop(family, model, params, trainer, args.epochs)
    row["harness"] = ours = harness_run(family, model, params, trainer, args.epochs, device)
    last = ours["images_per_s"][-1]
    row["harness_vs_reference"] = last / row["reference"]["images_per_s"]
    if "plain" in row:
        row["harness_vs_plain"] = last / row["plain"]["images_per_s"][-1]
    row["gpu_memory_fraction"] = ours["gpu_peak_gib"] / total_gib if total_gib else float("nan")
    loss = next(iter(ours["losses"].values()))
    row["loss_falls"] = loss[-1] < loss[0]
    return row


def _line(name: str, row: dict[str, Any]) -> str:
    if "error" in row:
        return f"| {name} | FAILED: {row['error']} |"
    ours, ref = row["harness"], row["reference"]
    plain = f"{row['plain']['images_per_s'][-1]:,.0f}" if "plain" in row else "-"
    vs_plain = f"{row['harness_vs_plain']:.3f}" if "harness_vs_plain" in row else "-"
    loss = " -> ".join(f"{v:.3f}" for v in next(iter(ours["losses"].values())))
    return (f"| {name} | {row['batch_size']} | {row['steps']} | {ref['images_per_s']:,.0f} | {plain} | "
            f"{ours['images_per_s'][-1]:,.0f} | {row['harness_vs_reference']:.3f} | {vs_plain} | "
            f"{ours['gpu_peak_gib']:.1f} ({100 * row['gpu_memory_fraction']:.0f}%) | {loss} | {ours['metric']:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--side-by-side", nargs="*", default=list(DEFAULT_SIDE_BY_SIDE))
    parser.add_argument("--steps", type=int, default=100, help="training steps per model (at least)")
    parser.add_argument("--epochs", type=int, default=2, help="the steps are split over this many epochs")
    parser.add_argument("--reference-steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=0,
                        help="0: Ray Train local mode; N >= 1: N Ray Train workers, one GPU each (DDP from 2)")
    parser.add_argument("--workdir", default=None, help="data/ and models/ of the run (default: a temp dir)")
    parser.add_argument("--deadline-s", type=float, default=None, help="start no model after this many seconds")
    parser.add_argument("--json", default=None, help="write every result here (rewritten after each model)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="64-px images, batch 2: a CPU dry run")
    parser.add_argument("--dqn-seconds", type=float, default=0, help="also run the profile's Breakout DQN this long")
    args = parser.parse_args()
    device = torch.device(args.device)
    bench.gpu_throughput.DEVICE = device  # its plain loop's device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench.gpu_profile needs a CUDA GPU (--device cpu --tiny for a dry run)")
    begun = time.perf_counter()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-profile-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    raw = profile_params(workdir / "data", args.steps, args.epochs, args.tiny, device, tuple(args.models))
    os.environ["COURSELAB_ROOT"] = str(workdir)  # models/evaluator and relative paths: the run's own
    prepare_s = prepare(raw, workdir)
    params = parse_params(raw, "params.yaml + params-gpu.yaml (bench)")
    if any(name.startswith("generative/") for name in args.models):
        prepare_s += quick_evaluator(params, device)
    if any(name.startswith("image_translation/") for name in args.models):
        untrained_scorer(params)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu"
    total_gib = torch.cuda.get_device_properties(0).total_memory / GIB if device.type == "cuda" else 0.0
    results: dict[str, Any] = {"device": name, "torch": torch.__version__, "total_gib": total_gib,
                               "prepare_s": prepare_s, "models": {}}
    print(f"{name} ({total_gib:.0f} GiB); torch {torch.__version__}; stand-ins prepared in {prepare_s:.0f} s",
          flush=True)
    if args.workers:
        from components.runtime import ray_init  # noqa: PLC0415

        ray_init()  # the worker path trains on a local Ray (the GPUs it sees)
    results["resnet50"] = yardstick = resnet50_reference(device, args.reference_steps, args.tiny)
    print(f"ResNet-50 224 px batch {yardstick['batch_size']} bf16 step: {yardstick['images_per_s']:,.0f} img/s, "
          f"{yardstick['gpu_peak_gib']:.1f} GiB", flush=True)
    print("| model | batch | steps | reference img/s | plain img/s | harness img/s | harness/reference | "
          "harness/plain | peak GiB (% of card) | train loss per epoch | val headline |", flush=True)
    for model_name in args.models:
        started = time.perf_counter()
        if args.deadline_s is not None and started - begun > args.deadline_s:
            print(f"| {model_name} | skipped: past --deadline-s {args.deadline_s:g} |", flush=True)
            continue
        try:
            row = measure(model_name, params, args, device, total_gib)
        except Exception as error:  # one model's failure must not hide the others' results
            row = {"error": f"{type(error).__name__}: {error}"[:300], "traceback": traceback.format_exc()}
        row["wall_s"] = time.perf_counter() - started
        results["models"][model_name] = row
        print(_line(model_name, row) + f"  ({row['wall_s']:.0f} s)", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.dqn_seconds:
        try:
            results["dqn"] = dqn = dqn_throughput(params, args.dqn_seconds, device)
            print(f"rl/dqn Breakout ({dqn['num_env_runners']} env runners): {dqn['env_steps_per_s']:,.0f} env steps/s, "
                  f"{dqn['replayed_per_s']:,.0f} replayed transitions/s, learner peak {dqn['gpu_peak_gib']:.2f} GiB",
                  flush=True)
        except Exception as error:  # after the image families: their results stay
            results["dqn"] = {"error": f"{type(error).__name__}: {error}"[:300], "traceback": traceback.format_exc()}
            print(f"rl/dqn FAILED: {results['dqn']['error']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
