"""The GPU profile (params-gpu.yaml) at tiny scale on the synthetic stand-ins, through the real
stage entry points, so the profile cannot rot; and bench/gpu_profile.py's CPU dry run. CI has no
GPU: CPU, fp32, local mode, 64-px images, a few images per split, DCGAN's saturation figure from 10
discriminator steps; every other value (datasets, paper-size models) is the profile's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from components.metrics_files import read_stage_metrics
from tests.conftest import REPO
from tools.profile import merged, profile_overrides

pytestmark = pytest.mark.slow

STAGES = (("segmentation", "fcn"), ("segmentation", "dilated"), ("image_translation", "pix2pix"),
          ("detection", "faster_rcnn"), ("detection", "mask_rcnn"), ("generative", "dcgan"),
          ("translation", "transformer"), ("captioning", "show_attend_tell"))


def _tiny_profile(root) -> dict:
    raw = merged(yaml.safe_load((root / "params.yaml").read_text()), profile_overrides("gpu", synthetic=True))
    raw["trainer"].update(num_workers=0, use_gpu=False, cpus_per_worker=1)
    for family in ("segmentation", "detection", "generative", "translation", "captioning", "image_translation"):
        raw[family]["trainer"].update(use_gpu=False, precision="fp32", batch_size=4, eval_batch_size=8, figure_every=1)
        for model in raw[family]["models"].values():
            model["epochs"] = 1
            if "batch_size" in model:
                model["batch_size"] = None
    raw["data"]["voc"].update(image_size=64, synthetic_fraction=0.01)  # 15 train ids: 13 train, 2 val; 14 test
    raw["data"]["coco"].update(image_size=64, max_train_images=6, max_test_images=2)  # 5 train, 1 val, 2 test
    raw["data"]["cifar10"]["synthetic_fraction"] = 0.0015  # 81 train, 10 val, 15 test: 32x32 RGB
    raw["data"]["parallel"]["synthetic_fraction"] = 0.001  # 29 train pairs, 1 val, 1 test
    raw["captioning"]["image_size"] = 32  # data/coco's 64 px resized as the profile's 640 -> 224: a 2x2 grid
    for model in raw["captioning"]["models"].values():  # the profile's encoder; a tenth of its LSTM (1800: 50 s)
        model.update(embed_dim=48, hidden_dim=180, attn_dim=48 if model["attn_dim"] else None)
    raw["image_translation"].update(image_size=32)  # VOC's 64 px halved as the stage loads it, as 512 -> 256
    raw["image_translation"]["generator"].update(channels=4, depth=5)  # the profile's 64 wide, 8 deep at 256 px
    raw["image_translation"]["discriminator"]["channels"] = 4  # its 70x70 PatchGAN's 3 layers kept
    raw["generative"]["evaluator"].update(epochs=1, min_test_accuracy=0.0)
    raw["generative"]["models"]["dcgan"]["saturation_steps"] = 10  # DCGAN's loss figure: 60 D steps at 32x32 took 11 s
    raw["generative"]["fid"].update(num_generated=20, reference_split="val")
    return raw


def test_gpu_profile_stages_run_on_the_stand_ins(workdir):
    from pipelines import evaluator, prepare, train

    (workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_profile(workdir), sort_keys=False))
    prepare.main([])
    for name, classes in (("voc", 21), ("coco", 81), ("cifar10", 10)):
        meta = json.loads((workdir / "data" / name / "meta.json").read_text())
        assert len(meta["class_names"]) == classes, name
    assert (workdir / "data" / "parallel" / "train.parquet").is_file()
    evaluator.main([])
    for family, model in STAGES:
        train.main([family, model])
        metrics = read_stage_metrics(workdir, f"{family}-{model}")
        headline = metrics["headline_metric"]
        assert headline in metrics and torch.isfinite(torch.tensor(metrics[headline])), (family, model)
        export = torch.load(workdir / "models" / family / model / "model.pt", weights_only=False)
        if family in ("segmentation", "detection"):  # the paper-size torchvision networks, not the embedded ones
            assert export["arch"]["backbone"] in ("resnet50", "resnet50_fpn"), (family, model)
            assert sum(v.numel() for k, v in export["state_dict"].items() if "layer4" in k) > 10**7
        if family == "image_translation":  # VOC's label maps -> photos, scored by the VOC FCN-ResNet50 above
            assert (export["dataset"], export["image_size"], len(export["class_names"])) == ("voc", 32, 21)
            assert metrics["test/fcn_miou_real"] > 0 and "val/fid_scenes" not in metrics
        if family == "captioning":  # Show, Attend and Tell's encoder on the stand-in's generated captions
            assert export["arch"]["channels"] == [64, 128, 256, 512] and export["image_size"] == 32, export["arch"]
            assert metrics["test/bleu_signature"].startswith("nrefs:5")
        if family == "generative":  # CIFAR-10's 32x32 RGB, G from DCGAN's 4x4
            assert (export["channels"], export["image_size"], export["backbone"]["stages"]) == (3, 32, 3)


def test_gpu_bench_dry_run_prepares_and_measures_on_cpu(tmp_path):
    """bench/gpu_profile.py's own path (its shrunk stand-ins, prepare, the reference step, the plain
    loop and fit) on CPU: a lent GPU's minutes must not go to a bench that no longer prepares."""
    out, model = tmp_path / "bench.json", "image_translation/pix2pix"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gpu_profile", "--device", "cpu", "--tiny", "--models", model, "--side-by-side",
         model, "--steps", "4", "--epochs", "2", "--reference-steps", "2", "--workdir", str(tmp_path / "work"),
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = json.loads(out.read_text())["models"][model]
    assert "error" not in row, row.get("traceback")
    assert row["steps"] >= 4 and len(row["harness"]["images_per_s"]) == 2 and row["plain"]["images_per_s"]
    assert all(torch.isfinite(torch.tensor(values)).all() for values in row["harness"]["losses"].values())
