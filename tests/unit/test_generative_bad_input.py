"""Generative-family mistakes end in one clear line and exit 2, before Ray starts."""

from __future__ import annotations

import yaml

from tests.unit.test_bad_input import _one_error_line, _run


def test_missing_inception_weights_names_the_path_and_the_fallback(workdir, tiny_params, prepare_data):
    prepare_data(workdir)
    missing = workdir / "weights" / "inception_v3.pth"
    tiny_params["generative"]["fid"]["inception_weights"] = str(missing)
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    line = _one_error_line(_run(workdir, "pipelines.train", "generative", "dcgan"))
    assert str(missing) in line and "set it to null" in line
    assert not (workdir / "models").exists() and not (workdir / "metrics").exists()


def test_missing_evaluator_says_which_stage_to_run(workdir, prepare_data):
    prepare_data(workdir)
    line = _one_error_line(_run(workdir, "pipelines.train", "generative", "vae"))
    assert str(workdir / "models" / "evaluator" / "evaluator.pt") in line and "dvc repro evaluator" in line


def test_unknown_generative_key_is_named(workdir, tiny_params):
    tiny_params["generative"]["models"]["wgan_gp"]["gp_weigth"] = 10.0
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    line = _one_error_line(_run(workdir, "pipelines.evaluator"))
    assert "generative.models.wgan_gp.gp_weigth: unknown key" in line and "gp_weight" in line
