"""params.yaml validation: unknown keys, wrong types and out-of-range values name the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from components.config import flatten, load_params, params_hash, parse_params
from components.errors import UserError
from tests.conftest import REPO


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.segmentation.dataset == "scenes"
    assert set(params.segmentation.models.model_dump()) == {"fcn", "unet", "segnet", "dilated"}


def _error(raw: dict) -> str:
    with pytest.raises(UserError) as info:
        parse_params(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_key_names_path_and_allowed_keys(tiny_params):
    tiny_params["segmentation"]["models"]["unet"]["lrr"] = 0.1
    message = _error(tiny_params)
    assert "segmentation.models.unet.lrr: unknown key" in message
    assert "allowed: base_channels, depth, epochs, lr, lr_schedule, warmup_fraction, weight_decay" in message


def test_unknown_top_level_key(tiny_params):
    tiny_params["segmentaton"] = {}
    message = _error(tiny_params)
    assert "segmentaton: unknown key" in message and "segmentation" in message


def test_wrong_type_names_key_and_value(tiny_params):
    tiny_params["segmentation"]["trainer"]["batch_size"] = "big"
    message = _error(tiny_params)
    assert "segmentation.trainer.batch_size" in message and "'big'" in message


def test_out_of_range_names_bound(tiny_params):
    tiny_params["segmentation"]["models"]["fcn"]["lr"] = -0.1
    message = _error(tiny_params)
    assert "segmentation.models.fcn.lr" in message and "greater than 0" in message and "-0.1" in message


def test_invalid_choice_lists_allowed_values(tiny_params):
    tiny_params["segmentation"]["dataset"] = "cityscapes"
    message = _error(tiny_params)
    assert "segmentation.dataset" in message and "'scenes'" in message and "'voc'" in message


def test_missing_key(tiny_params):
    del tiny_params["segmentation"]["models"]["unet"]["depth"]
    assert "segmentation.models.unet.depth: missing required key" in _error(tiny_params)


def test_cross_field_rule(tiny_params):
    tiny_params["data"]["scenes"].update(min_digits=5, max_digits=2)
    message = _error(tiny_params)
    assert "data.scenes" in message and "min_digits (5) must be <= max_digits (2)" in message


def test_cli_exits_nonzero_with_one_line(workdir, tiny_params):
    tiny_params["segmentation"]["models"]["unet"]["lrr"] = 0.1
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "segmentation", "unet"], capture_output=True, text=True, cwd=workdir
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: params.yaml: segmentation.models.unet.lrr: unknown key")


def test_flatten_and_hash_are_stable(tiny_params):
    params = parse_params(tiny_params)
    flat = flatten(params.segmentation)
    assert flat["models.unet.depth"] == 3
    assert params_hash(params.segmentation) == params_hash(parse_params(tiny_params).segmentation)
    tiny_params["segmentation"]["models"]["unet"]["lr"] = 0.5
    assert params_hash(params.segmentation) != params_hash(parse_params(tiny_params).segmentation)


def test_a_family_trainer_is_the_defaults_under_its_own_keys(tiny_params):
    tiny_params["trainer"]["eval_every"] = 3
    tiny_params["captioning"]["trainer"] = {"batch_size": 7}
    params = parse_params(tiny_params)
    assert params.captioning.trainer.batch_size == 7  # its own key
    assert params.captioning.trainer.eval_every == 3  # the default, which it does not list
    assert params.segmentation.trainer.batch_size == tiny_params["segmentation"]["trainer"]["batch_size"]


def test_an_unknown_family_trainer_key_names_the_family(tiny_params):
    tiny_params["detection"]["trainer"]["num_workerz"] = 2
    message = _error(tiny_params)
    assert "detection.trainer.num_workerz: unknown key" in message and "num_workers" in message


def test_the_repository_states_each_trainer_default_once():
    """A family's trainer lists only what differs from the top-level defaults."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, section in raw.items():
        if isinstance(section, dict) and isinstance(section.get("trainer"), dict):
            same = {k for k, v in section["trainer"].items() if raw["trainer"].get(k) == v}
            assert not same, f"{name}.trainer repeats the defaults of {sorted(same)}"


@pytest.mark.parametrize(("family", "listed", "message"), [
    ("detection", ["faster_rcnn", "mask"], "pipeline.detection: unknown detection model 'mask'; known: faster_rcnn,"),
    ("detection", [], "pipeline.detection: empty; list at least one of faster_rcnn,"),
    ("rl", ["dqn", "dqn"], "pipeline.rl: 'dqn' is listed twice"),
    # another family's stage reads the model
    ("adversarial", ["cnn_b", "mlp"], "pipeline.adversarial: cnn must be listed: stage visualization_attribution "
                                      "reads models/adversarial/cnn"),
    ("segmentation", ["unet"], "pipeline.segmentation: fcn must be listed: stage train_image_translation reads "
                               "models/segmentation/fcn"),  # image_translation.scorer, resolved
    ("text_classification", ["lstm", "bert"], "pipeline.language: bert_mlm must be listed: "
                                              "pipeline.text_classification lists bert"),
    ("generative", ["wgan", "lsgan"], "pipeline.generative: stage generative_latents needs one of vae,"),
    ("adversarial", ["cnn"], "pipeline.adversarial: stage adversarial_transfer needs two models"),
])
def test_the_pipeline_lists_are_checked_against_the_stages_that_read_them(tiny_params, family, listed, message):
    tiny_params["pipeline"][family] = listed
    assert message in _error(tiny_params)


def test_every_model_may_be_listed(tiny_params):
    from components.families import FAMILIES

    tiny_params["pipeline"] = {name: list(family.models) for name, family in FAMILIES.items()}
    parse_params(tiny_params)
