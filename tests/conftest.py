"""Shared fixtures: the real params.yaml, shrunk, and isolated tool state for each test."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_params_dict() -> dict:
    """The repository's params.yaml shrunk to seconds: same keys, small data, one or two epochs."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = copy.deepcopy(raw)
    params["data"]["scenes"].update(num_train=96, num_val=32, num_test=32)
    trainer = params["segmentation"]["trainer"]
    trainer.update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    for model in params["segmentation"]["models"].values():
        model.update(epochs=1, base_channels=8)
    detection = params["detection"]
    detection["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    for model in detection["models"].values():
        model["epochs"] = 1
        if "channels" in model:
            model["channels"] = [8, 16, 16, 16][: len(model["channels"])]
        if "fpn_channels" in model:
            model["fpn_channels"] = 16
    for name in ("fcos", "retinanet"):  # their heads' GroupNorm has 32 groups
        detection["models"][name]["fpn_channels"] = 32
    detection["models"]["yolo"]["base_channels"] = 8
    detection["models"]["detr"].update(base_channels=8, d_model=16, dim_feedforward=32, batch_size=16)
    generative = params["generative"]
    generative["evaluator"].update(epochs=2, channels=[8], feature_dim=16, min_test_accuracy=0.0)
    generative["fid"].update(num_generated=64)
    generative["backbone"].update(latent_dim=8, g_channels=8, d_channels=8)
    generative["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=64, figure_every=1)
    for model in generative["models"].values():
        model.update(epochs=1)
    params["data"]["grammar_en_de"].update(num_train=300, num_val=40, num_test=40, max_words=20, num_longer=10,
                                           longer_max_words=26)
    params["translation"]["length_buckets"] = [10]
    for family in ("translation", "captioning"):
        params[family]["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=32, eval_batch_size=64,
                                         figure_every=1)
        params[family]["decoding"]["beam_width"] = 2
        for model in params[family]["models"].values():
            model["epochs"] = 1
    for model in params["translation"]["models"].values():
        if "hidden_dim" in model:
            model.update(embed_dim=16, hidden_dim=32, attn_dim=16 if model["attn_dim"] else None)
        else:
            model.update(d_model=32, num_heads=2, ffn_dim=64)
    for model in params["captioning"]["models"].values():
        model.update(channels=[8, 8, 8], embed_dim=16, hidden_dim=32, attn_dim=16 if model["attn_dim"] else None)
    algos = params["rl"]["algos"]
    algos["value_iteration"].update(eval_episodes=50)
    algos["q_learning"].update(episodes=400, epsilon_decay_episodes=200, eval_episodes=50)
    algos["dqn"].update(max_env_steps=1500, learning_starts=500, hiddens=[16], replay_capacity=2000,
                        train_batch_size=32, epsilon_timesteps=1000, checkpoint_every=1, eval_episodes=2)
    algos["reinforce"].update(max_env_steps=600, episodes_per_batch=4, num_envs_per_env_runner=2, hiddens=[16],
                              checkpoint_every=1, eval_episodes=2)
    for family, sweep in params["tune"].items():  # the disabled ones too: a test may enable them
        if family != "rl":
            sweep.update(num_samples=2, trial_epochs=1)
    params["tune"]["rl"].update(
        num_samples=2, trial_env_steps=1000, asha={"grace_period": 500, "reduction_factor": 2},
        pbt={"perturbation_interval": 500, "quantile_fraction": 0.5, "resample_probability": 0.25},
    )
    # The e2e repro's sweep: two concurrent one-worker trials of 2 tiny epochs. Tiny data teaches
    # U-Net too little for val/miou to separate trials (ties go to the default), while the training
    # loss falls strictly faster with a larger learning rate: every lr above the default's wins, so
    # a new search range always yields new tuned values (tests/e2e checks which stages rerun).
    params["tune"]["segmentation"].update(
        trial_epochs=2, metric="train/loss",
        search_space={"lr": {"distribution": "loguniform", "low": 0.003, "high": 0.01}},
    )
    return params


@pytest.fixture(autouse=True)
def _isolated_tool_state(tmp_path_factory, monkeypatch):
    """Keep MLflow, DVC and matplotlib state out of the developer's repo during tests."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MPLCONFIGDIR", str(state / "mpl"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield


@pytest.fixture
def tiny_params() -> dict:
    return tiny_params_dict()


@pytest.fixture
def workdir(tmp_path, tiny_params, monkeypatch) -> Path:
    """A temporary repository root with the tiny params.yaml; stages run with it as cwd."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSELAB_ROOT", str(tmp_path))
    return tmp_path


def run_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COURSELAB_ROOT"] = str(root)
    return env
