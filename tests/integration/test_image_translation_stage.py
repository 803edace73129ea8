"""The image-translation stages through the real entry point on the tiny params: the scorer
(segmentation's fcn) and the FID features (visualization's scene_cnn) first, then pix2pix in the
stage's process and CycleGAN on 2 DDP workers (its G runs twice before one backward)."""

from __future__ import annotations

import pytest
import torch
import yaml

from components.config import load_params
from components.metrics_files import read_stage_metrics

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

SCORES = ("fcn_pixel_accuracy", "fcn_class_accuracy", "fcn_miou")


def test_translation_needs_its_scorer_then_trains_and_scores(prepared, ray_session):
    from components.families.image_translation.task import evaluate_test
    from pipelines import train

    with pytest.raises(SystemExit):  # no scorer yet: one line naming the stage to run
        train.main(["image_translation", "pix2pix"])
    train.main(["segmentation", "fcn"])
    train.main(["visualization", "scene_cnn"])

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["image_translation"]["trainer"].update(num_workers=2, cpus_per_worker=1)
    params["image_translation"]["models"]["cyclegan"].update(pool_size=4)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["image_translation", "cyclegan"])
    params["image_translation"]["trainer"].update(num_workers=0)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["image_translation", "pix2pix"])

    real = None
    for model in ("cyclegan", "pix2pix"):
        metrics = read_stage_metrics(prepared, f"image_translation-{model}")
        for split in ("val", "test"):
            for key in SCORES:
                for suffix in ("", "_real", "_untrained"):
                    assert 0 <= metrics[f"{split}/{key}{suffix}"] <= 1, (model, split, key, suffix)
            assert metrics[f"{split}/fid_scenes"] >= 0 and metrics[f"{split}/fid_scenes_floor"] >= 0
        # the ceiling is the scorer on the real scenes: the same for every model
        real = real or {key: metrics[f"val/{key}_real"] for key in SCORES}
        assert real == {key: metrics[f"val/{key}_real"] for key in SCORES}
        figures = prepared / "figures" / f"image_translation-{model}"
        assert (figures / "translations.png").is_file()
    assert (prepared / "figures" / "image_translation-cyclegan" / "scenes_to_labels.png").is_file()

    # the exported generator alone scores the test split as the stage did
    export = torch.load(prepared / "models/image_translation/pix2pix/model.pt", weights_only=True)
    alone = evaluate_test(export, load_params(prepared / "params.yaml"))["metrics"]
    stage = read_stage_metrics(prepared, "image_translation-pix2pix")
    for key in ("test/fcn_miou", "test/fid_scenes", "test/l1"):
        assert alone[key] == pytest.approx(stage[key], rel=1e-6), key
