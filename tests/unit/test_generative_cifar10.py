"""The generative family on CIFAR-10-sized data: every network at 3 channels, 32x32 and 64x64;
the image size against the stages in params; the stages on the CIFAR-10 stand-in."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from components.config import parse_params
from components.errors import UserError
from components.families import FAMILIES
from components.families.generative.models import VAE, Discriminator, Generator
from components.metrics_files import read_stage_metrics
from tests.conftest import REPO
from tools.profile import merged, profile_overrides


@pytest.mark.parametrize(("size", "stages"), [(32, 3), (64, 4)])
def test_every_network_takes_rgb_at_cifar_sizes(size, stages):
    images, labels = torch.rand(2, 3, size, size), torch.tensor([1, 7])
    for classes in (0, 10):  # unconditional, and cGAN / CVAE
        g = Generator(8 + classes, 3, size, 4, stages)
        assert g.start == 4 and g(torch.randn(2, 8 + classes)).shape == (2, 3, size, size)
        for spectral_norm in (False, True):  # sngan's D
            d = Discriminator(3, size, 4, stages, 0.2, spectral_norm, num_classes=classes)
            assert d(images, labels if classes else None).shape == (2,)
        logits, mu, logvar = VAE(3, size, 8, classes, 4, 4, stages, 0.2)(images, labels if classes else None)
        assert logits.shape == images.shape and mu.shape == logvar.shape == (2, 8)


def _profile(**extra) -> dict:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    return merged(base, {**profile_overrides("gpu", synthetic=True), **extra})


def test_the_profile_and_its_documented_variants_validate():
    assert parse_params(_profile()).generative.backbone.stages == 3
    p64 = parse_params(_profile(**{"data.cifar10.image_size": 64, "generative.backbone.stages": 4}))
    assert p64.data.cifar10.image_size == 64
    mnist = _profile(**{"generative.dataset": "mnist", "generative.backbone.stages": 2, "data.mnist.synthetic": True,
                        "data.cifar10.synthetic": False,
                        "generative.models.sagan.attention_resolution": 14})  # 7, 14 or 28 px at 2 stages
    assert parse_params(mnist).generative.dataset == "mnist"


@pytest.mark.parametrize(("extra", "message"), [
    ({"data.cifar10.image_size": 64, "generative.backbone.stages": 7},
     "generative.backbone.stages: 7 halvings of the 64-px cifar10 images need a side divisible by 128; set it to 4 "
     "(G starts at 4x4), or change data.cifar10.image_size"),
    ({"generative.dataset": "mnist"},  # the profile's 3 stages left in place
     "generative.backbone.stages: 3 halvings of the 28-px mnist images need a side divisible by 8; set it to 2 "
     "(G starts at 7x7), or change generative.dataset"),
    ({"generative.evaluator.channels": [8, 8, 8, 8, 8, 8]},
     "generative.evaluator.channels: 6 widths max-pool the 32-px cifar10 images 6 times, which needs a side "
     "divisible by 64; list fewer widths, or change data.cifar10.image_size"),
])
def test_image_size_and_stages_that_cannot_work_are_one_line_naming_the_keys(extra, message):
    with pytest.raises(UserError) as info:
        parse_params(_profile(**extra))
    assert str(info.value) == f"params.yaml: {message}"


def test_stages_train_and_score_on_the_cifar10_stand_in(workdir, tiny_params, monkeypatch):
    """prepare, evaluator and two train stages (a GAN, a conditional VAE) at 32 px, 3 stages."""
    from components.data.schema import read_meta
    from pipelines import evaluator, prepare, train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    tiny_params["data"]["cifar10"].update(synthetic=True, synthetic_fraction=0.003)
    tiny_params["generative"].update(dataset="cifar10")
    tiny_params["generative"]["backbone"]["stages"] = 3
    tiny_params["generative"]["fid"].update(num_generated=20, reference_split="val")
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    prepare.main([])
    assert read_meta(workdir / "data" / "cifar10").channels == 3
    evaluator.main([])
    assert (workdir / "metrics" / "evaluator-cifar10.json").is_file()
    for model in ("dcgan", "cvae"):
        assert model in FAMILIES["generative"].models
        train.main(["generative", model])
        export = torch.load(workdir / "models" / "generative" / model / "model.pt", weights_only=False)
        assert (export["channels"], export["image_size"]) == (3, 32)
        metrics = read_stage_metrics(workdir, f"generative-{model}")
        assert math.isfinite(metrics["val/fid_evaluator"])
