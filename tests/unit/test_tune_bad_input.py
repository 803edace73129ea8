"""Mistakes in ``tune.<family>`` end in one line naming the full key and what is allowed, exit 2,
before Ray starts and with nothing written."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.test_bad_input import _one_error_line, _run


def _sweep_error(workdir, tiny_params, family: str = "segmentation", **changes) -> str:
    tiny_params["tune"][family].update(changes)
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    line = _one_error_line(_run(workdir, "pipelines.tune", family))
    assert not (workdir / "tuned").exists() and not (workdir / "metrics").exists()
    return line


def _space(**keys) -> dict:
    return {"search_space": keys}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (_space(lr={"distribution": "normal", "low": 0.001, "high": 0.01}),
         ["tune.segmentation.search_space.lr.distribution:", "'loguniform'", "'uniform'", "'choice'", "'randint'",
          "'quniform'", "'qloguniform'", "'normal'"]),
        (_space(lr={"distribution": "loguniform", "low": 0.01, "high": 0.001}),
         ["tune.segmentation.search_space.lr.high: must be > low (0.01)", "0.001"]),
        (_space(lr={"distribution": "uniform", "low": 0.01, "high": 0.01}),
         ["tune.segmentation.search_space.lr.high: must be > low (0.01)"]),
        (_space(weight_decay={"distribution": "loguniform", "low": 0.0, "high": 0.01}),
         ["tune.segmentation.search_space.weight_decay.low: must be > 0 for loguniform"]),
        (_space(lrr={"distribution": "loguniform", "low": 0.001, "high": 0.01}),
         ["tune.segmentation.search_space.lrr: unknown key (not a field of segmentation.models.unet)",
          "allowed: lr, weight_decay, lr_schedule, warmup_fraction, base_channels, depth or trainer.<key>"]),
        (_space(**{"trainer.batch_sise": {"distribution": "choice", "values": [8, 16]}}),
         ["tune.segmentation.search_space.trainer.batch_sise: unknown key (not a field of segmentation.trainer)",
          "batch_size"]),
        (_space(base_channels={"distribution": "uniform", "low": 8, "high": 12}),
         ["tune.segmentation.search_space.base_channels.distribution:", "is an integer", "randint, choice"]),
        (_space(base_channels={"distribution": "choice", "values": [8, -4]}),
         ["tune.segmentation.search_space.base_channels.values: -4 is not a valid segmentation.models.unet."
          "base_channels", "greater than 0"]),
        (_space(lr={"distribution": "choice", "low": 0.1, "values": [0.1]}),
         ["tune.segmentation.search_space.lr: choice takes values: [...] (and no low, high or q)"]),
        (_space(lr={"distribution": "quniform", "low": 0.001, "high": 0.01}),
         ["tune.segmentation.search_space.lr: quniform needs q"]),
        (_space(epochs={"distribution": "randint", "low": 1, "high": 4}),
         ["tune.segmentation.search_space.epochs: epochs is not searched", "tune.segmentation.trial_epochs"]),
        ({"scheduler": "hyperband"},
         ["tune.segmentation.scheduler:", "'asha'", "'pbt'", "'fifo'", "'hyperband'"]),
        ({"metric": "val/mioU"},
         ["tune.segmentation.metric: no known direction for 'val/mioU'", "miou"]),
        ({"model": "deeplab"},
         ["tune.segmentation.model: unknown segmentation model 'deeplab'; known: fcn, unet, segnet, dilated"]),
        ({"trial_trainer": {"cpus_per_workers": 1}},
         ["tune.segmentation.trial_trainer.cpus_per_workers: unknown key; allowed: num_workers", "cpus_per_worker"]),
    ],
    ids=["unknown-distribution", "inverted-bounds", "equal-bounds", "loguniform-zero", "unknown-key",
         "unknown-trainer-key", "float-for-integer", "invalid-choice", "choice-with-bounds", "quniform-without-q",
         "epochs", "unknown-scheduler", "unknown-metric", "unknown-model", "unknown-trial-trainer-key"],
)
def test_bad_sweep_is_one_line_naming_the_key(workdir, tiny_params, changes, expected):
    line = _sweep_error(workdir, tiny_params, **changes)
    for part in expected:
        assert part in line, line


def test_disabled_family_is_still_checked(workdir, tiny_params):
    """A disabled sweep must work when enabled (dvc exp run -S ...enabled=true): checked anyway."""
    assert tiny_params["tune"]["translation"]["enabled"] is False
    line = _sweep_error(workdir, tiny_params, "translation",
                        search_space={"hidden_dimm": {"distribution": "choice", "values": [32]}})
    assert "tune.translation.search_space.hidden_dimm: unknown key (not a field of translation.models." in line


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (_space(lrr={"distribution": "loguniform", "low": 0.001, "high": 0.01}),
         ["tune.rl.search_space.lrr: unknown key (not a field of rl.algos.reinforce); allowed: num_env_runners",
          "lr", "episodes_per_batch", "baseline"]),
        (_space(max_env_steps={"distribution": "choice", "values": [1000, 2000]}),
         ["tune.rl.search_space.max_env_steps: max_env_steps is not searched", "tune.rl.trial_env_steps"]),
        (_space(env={"distribution": "choice", "values": ["CartPole-v1"]}),
         ["tune.rl.search_space.env: env is not searched"]),
        (_space(episodes_per_batch={"distribution": "choice", "values": [8, 0]}),
         ["tune.rl.search_space.episodes_per_batch.values: 0 is not a valid rl.algos.reinforce.episodes_per_batch",
          "greater than 0"]),
        (_space(baseline={"distribution": "choice", "values": ["normalize", "critic"]}),
         ["tune.rl.search_space.baseline.values: 'critic' is not a valid rl.algos.reinforce.baseline"]),
        (_space(episodes_per_batch={"distribution": "loguniform", "low": 4, "high": 32}),
         ["tune.rl.search_space.episodes_per_batch.distribution:", "is an integer"]),
        (_space(gamma={"distribution": "uniform", "low": 0.9, "high": 1.5}),
         ["tune.rl.search_space.gamma.high: 1.5 is not a valid rl.algos.reinforce.gamma"]),
        ({"algo": "ppo"}, ["tune.rl.algo:", "'dqn'", "'reinforce'", "'ppo'"]),
        ({"metric": "val/miou"}, ["tune.rl.metric:", "'rl/episode_return_mean'"]),
        ({"trial_epochs": 2}, ["tune.rl.trial_epochs: unknown key; allowed:", "trial_env_steps"]),
    ],
    ids=["unknown-key", "stop-rule", "env", "invalid-choice", "invalid-literal", "float-for-integer",
         "gamma-above-1", "unknown-algo", "non-rl-metric", "epochs-instead-of-env-steps"],
)
def test_bad_rl_sweep_is_one_line_naming_the_key(workdir, tiny_params, changes, expected):
    line = _sweep_error(workdir, tiny_params, "rl", **changes)
    for part in expected:
        assert part in line, line


def test_dqn_sweep_keys_are_checked_against_dqn(workdir, tiny_params):
    line = _sweep_error(workdir, tiny_params, "rl", algo="dqn")  # reinforce's episodes_per_batch is no DQN key
    assert "tune.rl.search_space.episodes_per_batch: unknown key (not a field of rl.algos.dqn)" in line, line


def test_unknown_family(workdir):
    line = _one_error_line(_run(workdir, "pipelines.tune", "vision"))
    assert "unknown family 'vision'" in line
    known = "segmentation, detection, generative, image_translation, translation, captioning, language"
    assert known in line


def test_missing_data_fails_before_ray(workdir):
    line = _one_error_line(_run(workdir, "pipelines.tune", "segmentation"))
    assert str(workdir / "data" / "scenes" / "meta.json") in line and "dvc repro prepare" in line
    assert not (workdir / "metrics").exists()
