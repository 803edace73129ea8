"""The generative tasks without Ray: every model steps, scores and draws on tiny data."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch.utils.data import DataLoader

from components.config import load_params
from components.families import FAMILIES
from components.families.generative.task import build_task, load_exported
from components.runtime import with_absolute_paths


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory, prepare_data):
    """Tiny digits and a tiny evaluator, written by the real prepare and evaluator stages."""
    import os

    import yaml

    from pipelines import evaluator
    from tests.conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("generative")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    old = os.getcwd(), os.environ.get("COURSELAB_ROOT")
    os.chdir(root)
    os.environ["COURSELAB_ROOT"] = str(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    try:
        prepare_data(root)
        evaluator.main([])
        yield root
    finally:
        os.chdir(old[0])
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if old[1] is None:
            os.environ.pop("COURSELAB_ROOT", None)
        else:
            os.environ["COURSELAB_ROOT"] = old[1]


def _task(root, model, monkeypatch):
    monkeypatch.chdir(root)
    monkeypatch.setenv("COURSELAB_ROOT", str(root))
    params = with_absolute_paths(load_params(root / "params.yaml"))
    torch.manual_seed(0)
    task = build_task(model, params)
    train = DataLoader(task.datasets()["train"], batch_size=params.generative.trainer.batch_size, shuffle=True)
    val = DataLoader(task.datasets()["val"], batch_size=params.generative.trainer.eval_batch_size)
    task.setup(torch.device("cpu"), wrap=lambda net, **_: net, steps_per_epoch=len(train))
    return task, train, val


def test_before_training_the_model_scores_like_the_untrained_reference(tiny_repo, monkeypatch):
    """Same network, same noise, same real images: FID and IS equal the untrained generator's."""
    task, _, val = _task(tiny_repo, "vae", monkeypatch)
    scores = task.evaluate(val)
    assert scores["fid_evaluator"] == pytest.approx(scores["fid_evaluator_untrained"], rel=1e-6)
    assert scores["is_evaluator"] == pytest.approx(scores["is_evaluator_untrained"], rel=1e-6)
    assert 0 < scores["fid_evaluator_floor"] < scores["fid_evaluator_untrained"]
    assert scores["fid_num_real"] == len(task.datasets()["val"]) and scores["fid_num_generated"] == 64


@pytest.mark.parametrize("model", FAMILIES["generative"].models)
def test_every_model_steps_scores_draws_and_exports(tiny_repo, monkeypatch, model):
    task, train, val = _task(tiny_repo, model, monkeypatch)
    before = {k: v.clone() for k, v in task.export()["state_dict"].items()}
    for batch in train:
        losses = task.train_step(batch)
    assert all(math.isfinite(float(v)) for v in losses.values())
    expected = {"vae": {"loss", "recon", "kl"}, "cvae": {"loss", "recon", "kl"}, "autoencoder": {"loss", "recon_mse"},
                "vqvae": {"loss", "recon_mse", "codebook", "commitment", "prior_nll"}}.get(model, {"loss_d", "loss_g"})
    assert expected <= set(losses)
    scores = task.evaluate(val)
    assert all(math.isfinite(v) for v in scores.values())
    figures = task.figures(next(iter(val)))
    assert "samples" in figures
    assert ("interpolation" in figures) == (model != "vqvae") == ("codebook_usage" not in figures)
    assert ("reconstructions" in figures) == (model in ("vae", "cvae", "autoencoder", "vqvae"))
    assert ("saturation" in figures) == (model == "dcgan") == ("saturation_grad_ratio" in scores)
    for figure in figures.values():  # the harness closes them once logged; so does this test
        plt.close(figure)
    export = task.export()
    assert any(not torch.equal(before[k], v) for k, v in export["state_dict"].items())  # it trained
    net = load_exported(export)
    assert net.training is False


def test_gan_state_round_trip_keeps_ema_and_step_count(tiny_repo, monkeypatch):
    task, train, _ = _task(tiny_repo, "wgan_gp", monkeypatch)
    for batch in train:
        task.train_step(batch)
    state = task.state_dict()
    fresh, _, _ = _task(tiny_repo, "wgan_gp", monkeypatch)
    fresh.load_state_dict(state)
    assert fresh.d_steps == task.d_steps > 0
    for key, value in task.ema.state_dict().items():
        torch.testing.assert_close(fresh.ema.state_dict()[key], value)


def test_dcgan_trains_its_generator_with_the_loss_it_is_given(tiny_repo, monkeypatch):
    """`loss: saturating` makes G minimise log(1 - D(G(z))): the task's generator loss is -softplus(s)."""
    import yaml

    raw = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    scores = torch.tensor([-2.0, 0.5, 3.0])
    for loss, expected in (("non_saturating", torch.nn.functional.softplus(-scores).mean()),
                           ("saturating", -torch.nn.functional.softplus(scores).mean())):
        raw["generative"]["models"]["dcgan"]["loss"] = loss
        (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        task, _, _ = _task(tiny_repo, "dcgan", monkeypatch)
        torch.testing.assert_close(task.loss.generator(scores), expected)
    raw["generative"]["models"]["dcgan"]["loss"] = "non_saturating"
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_autoencoder_samples_from_the_gaussian_of_its_codes(tiny_repo, monkeypatch):
    """The fitted mean and Cholesky factor are the training codes' (L L^T = their covariance), a
    standard-normal code of 0 decodes the mean code, and the export keeps the fit."""
    task, train, val = _task(tiny_repo, "autoencoder", monkeypatch)
    for batch in train:
        task.train_step(batch)
    task.evaluate(val)
    net = task._sampling_net()
    images = task.datasets()["train"].tensors[0]
    net.eval()
    with torch.no_grad():
        codes = net.encode(images).double()
    torch.testing.assert_close(net.code_mean.double(), codes.mean(0), atol=1e-5, rtol=1e-4)
    chol = net.code_chol.double()
    torch.testing.assert_close(chol @ chol.T, torch.cov(codes.T) + 1e-5 * torch.eye(len(chol), dtype=chol.dtype),
                               atol=1e-4, rtol=1e-3)
    zero = torch.zeros(1, len(chol))
    torch.testing.assert_close(net.decode_noise(zero), net.decoder(net.code_mean[None]))
    exported = load_exported(task.export())
    torch.testing.assert_close(exported.code_chol, net.code_chol)


@pytest.mark.parametrize(("loss", "loss_name", "penalties"), [("non_saturating", "nonsaturating", {"r1"}),
                                                            ("wgan_gp", "wasserstein", {"gradient_penalty", "drift"})])
def test_stylegan_trains_with_the_loss_it_is_given(tiny_repo, monkeypatch, loss, loss_name, penalties):
    import yaml

    from components.families.generative.losses import LOSSES

    raw = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    raw["generative"]["models"]["stylegan"]["loss"] = loss
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        task, train, _ = _task(tiny_repo, "stylegan", monkeypatch)
        assert task.loss is LOSSES[loss_name]
        assert penalties <= set(task.train_step(next(iter(train))))
    finally:
        raw["generative"]["models"]["stylegan"]["loss"] = "non_saturating"
        (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_progan_refuses_a_schedule_that_never_reaches_the_top_resolution(tiny_repo, monkeypatch):
    import yaml

    from components.errors import UserError

    raw = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    progan = raw["generative"]["models"]["progan"]
    saved = dict(progan)
    progan.update(epochs=3, level_epochs=2, fade_epochs=1)
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        with pytest.raises(UserError, match=r"generative.models.progan.epochs: 3 leaves no epoch .* = 3; raise it"):
            _task(tiny_repo, "progan", monkeypatch)
    finally:
        progan.clear()
        progan.update(saved)
        (tiny_repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
