"""The GPU profile (params-gpu.yaml) and tools/profile.py, which applies it through `dvc exp run -S`."""

from __future__ import annotations

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from components.config import flatten, parse_params
from components.schema import TrainerConfig
from tests.conftest import REPO
from tools.profile import _hydra_value, main, merged, profile_overrides, set_param_args

BASE = yaml.safe_load((REPO / "params.yaml").read_text())
FAMILY_TRAINER = {f"{name}.trainer" for name, section in BASE.items()
                  if isinstance(section, dict) and "trainer" in section}


def test_every_profile_key_is_a_params_key():
    """A typo in the profile must not silently add a key: each is in params.yaml or a trainer field."""
    present = set(flatten(BASE))
    for key in profile_overrides("gpu"):
        parent, leaf = key.rsplit(".", 1)
        assert key in present or (parent in FAMILY_TRAINER and leaf in TrainerConfig.model_fields), key


def test_gpu_profile_validates_and_sets_the_paper_sizes():
    params = parse_params(merged(BASE, profile_overrides("gpu", gpus=4, storage="s3://bucket/runs", synthetic=True)))
    assert params.trainer.num_workers == 4 and params.runtime.storage_path == "s3://bucket/runs"
    assert params.segmentation.dataset == "voc" and params.data.voc.synthetic
    assert params.detection.dataset == "coco" and params.data.coco.synthetic
    assert params.generative.dataset == "cifar10" and params.data.cifar10.synthetic
    assert (params.data.cifar10.image_size, params.generative.backbone.stages) == (32, 3)  # DCGAN's 4x4 start
    assert params.translation.dataset == "parallel" and params.data.parallel.synthetic
    assert params.translation.models.transformer.d_model == 512
    assert params.segmentation.models.fcn.backbone == "resnet50"
    assert params.detection.models.faster_rcnn.backbone == "resnet50_fpn"
    assert params.segmentation.trainer.precision == "bf16" and params.segmentation.trainer.use_gpu
    assert params.captioning.dataset == "coco" and params.captioning.image_size == 224  # a 14x14 grid:
    assert len(params.captioning.models.show_attend_tell.channels) == 4 and 224 // 2**4 == 14  # 4 halvings
    assert params.captioning.models.show_attend_tell.hidden_dim == 1800 and params.captioning.trainer.use_gpu
    # pix2pix's labels -> photo at 256 px, scored by the profile's VOC segmenter (params validation checks the pair)
    section = params.image_translation
    assert (section.dataset, section.image_size, section.generator.depth, section.discriminator.layers) == (
        "voc", 256, 8, 3) and 256 // 2**8 == 1


def test_dvc_applies_the_printed_overrides_exactly(tmp_path):
    """The -S arguments, applied by DVC's own Hydra code (what `dvc exp run -S` does), give the
    same params as merging the profile directly: values, lists, nulls, added keys, a URI."""
    overrides = profile_overrides("gpu", gpus=2, storage="s3://bucket/my runs", synthetic=True)
    args = set_param_args(BASE, overrides)
    assert "++segmentation.trainer.use_gpu=true" in args  # not in params.yaml: added
    assert "segmentation.dataset=voc" in args  # in params.yaml: overridden
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    apply_overrides(path, args[1::2])
    assert yaml.safe_load(path.read_text()) == merged(BASE, overrides)


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (0.0002, "0.0002"), ([16, 32], "[16,32]"), ("voc", "voc"),
    ("s3://b/x y", "'s3://b/x y'"), ({"a": 1}, "{a:1}"),
])
def test_hydra_values(value, text):
    assert _hydra_value(value) == text


def test_bad_profile_name_and_write(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"no profile 'nope': .*params-nope.yaml does not exist \(profiles: gpu\)"):
        profile_overrides("nope")
    out = tmp_path / "merged.yaml"
    main(["gpu", "--synthetic", "--write", str(out)])
    assert yaml.safe_load(out.read_text())["data"]["voc"]["synthetic"] is True
