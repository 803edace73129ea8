"""The class-conditional SAGAN and the conditional metrics: known answers of its blocks (conditional
batch norm, projection discriminator, self-attention, truncated noise), val/cond_accuracy and
val/class_variance (over ranks too), the attention side check and the export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import yaml
from torch import nn

from components.config import load_params, parse_params
from components.errors import UserError
from components.families.generative.base import class_variance, conditional_accuracy
from components.families.generative.sagan import (
    ConditionalBatchNorm2d,
    ConditionalGenerator,
    ProjectionDiscriminator,
    SelfAttention2d,
    refresh_spectral_norms,
    truncated_noise,
)
from components.families.generative.task import build_task, load_exported, serving_model
from components.runtime import with_absolute_paths
from tests.unit.test_generative_task import tiny_repo  # noqa: F401  (the module's fixture: tiny digits, evaluator)

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the blocks ---------------------------------------------------------------------------------


def test_conditional_batch_norm_applies_the_requested_classes_gain_and_bias():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(num_features=3, num_classes=4)
    assert torch.equal(cbn.gain.weight, torch.ones(4, 3)) and torch.equal(cbn.bias.weight, torch.zeros(4, 3))
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.arange(12.0).view(4, 3) + 1)
        cbn.bias.weight.copy_(-torch.arange(12.0).view(4, 3) * 10)
    x, labels = torch.randn(5, 3, 4, 4) * 3 + 1, torch.tensor([0, 3, 1, 2, 3])
    normalised = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / (x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
                                                              + cbn.norm.eps).sqrt()
    out = cbn(x, labels)
    for i, y in enumerate(labels):
        torch.testing.assert_close(out[i], normalised[i] * cbn.gain.weight[y][:, None, None]
                                   + cbn.bias.weight[y][:, None, None])
    changed = labels.clone()
    changed[2] = 0
    moved = cbn(x, changed)
    assert not torch.allclose(moved[2], out[2])
    torch.testing.assert_close(moved[torch.arange(5) != 2], out[torch.arange(5) != 2])  # only that sample


def test_the_class_reaches_the_generator_through_its_conditional_batch_norms_only():
    torch.manual_seed(0)
    g = ConditionalGenerator(latent_dim=6, num_classes=10, out_channels=1, image_size=8, channels=4, stages=1,
                             attention_side=8).eval()
    assert g.project.in_features == 6  # no one-hot in the code
    z = torch.randn(3, 6)
    with torch.no_grad():
        for cbn in (*g.norms, g.out_norm):
            cbn.gain.weight.normal_()
        assert g(z, torch.tensor([1, 2, 3])).shape == (3, 1, 8, 8)
        assert not torch.allclose(g(z, torch.tensor([1, 1, 1])), g(z, torch.tensor([2, 2, 2])))
        for cbn in (*g.norms, g.out_norm):  # every class the same parameters: the label no longer matters
            cbn.gain.weight.copy_(cbn.gain.weight[:1].expand_as(cbn.gain.weight))
            cbn.bias.weight.copy_(cbn.bias.weight[:1].expand_as(cbn.bias.weight))
        torch.testing.assert_close(g(z, torch.tensor([1, 1, 1])), g(z, torch.tensor([2, 2, 2])))


def test_projection_discriminator_scores_the_label_by_an_inner_product():
    torch.manual_seed(0)
    d = ProjectionDiscriminator(in_channels=1, image_size=8, channels=4, stages=1, leak=0.2, num_classes=10,
                                attention_side=4).eval()
    attention = [m for m in d.modules() if isinstance(m, SelfAttention2d)]
    assert len(attention) == 1 and attention[0].v.out_channels == 8  # at 4x4, after the halving to 8 channels
    with torch.no_grad():
        attention[0].gamma.fill_(0.5)
    spectral = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]
    assert all(hasattr(m, "parametrizations") for m in spectral)  # spectral norm on every layer
    image = torch.rand(1, 1, 8, 8).expand(2, -1, -1, -1)
    labels = torch.tensor([3, 7])
    with torch.no_grad():
        scores = d(image, labels)
        features = d.trunk(image)
        head = features @ d.head.weight.T + d.head.bias
        expected = head.squeeze(1) + (d.embed.weight[labels] * features).sum(1)
    assert scores[0] != scores[1]  # same image, two labels
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("side", [4, 8])
def test_self_attention_starts_as_the_identity_and_then_reaches_far_positions(side):
    torch.manual_seed(0)
    block = SelfAttention2d(channels=16)
    x = torch.randn(2, 16, side, side, requires_grad=True)
    assert block.gamma.item() == 0.0 and torch.equal(block(x), x)
    beta = block.attention(x)
    assert beta.shape == (2, side * side, side * side)
    torch.testing.assert_close(beta.sum(dim=1), torch.ones(2, side * side))  # softmax over the positions attended to
    with torch.no_grad():
        block.gamma.fill_(1.0)
    block(x)[0, :, 0, 0].sum().backward()  # one output position...
    far = x.grad[0, :, side - 1, side - 1]  # ...depends on the opposite corner
    assert far.abs().sum() > 0
    assert x.grad[1].abs().sum() == 0  # and not on another sample


def test_truncated_noise_stays_within_the_threshold_and_narrows_with_it():
    stds = []
    for threshold in (2.0, 1.0, 0.5, 0.04):
        z = truncated_noise(100, 100, threshold, torch.Generator().manual_seed(0))  # 10k entries
        assert z.shape == (100, 100) and z.abs().max() <= threshold
        stds.append(z.std().item())
    assert stds == sorted(stds, reverse=True) and stds[0] < 1.0
    # the standard deviation of N(0, 1) truncated to [-t, t]: 1 - 2 t phi(t) / (2 Phi(t) - 1)
    normal = torch.distributions.Normal(0.0, 1.0)
    t = torch.tensor(1.0)
    expected = (1 - 2 * t * normal.log_prob(t).exp() / (2 * normal.cdf(t) - 1)).sqrt()
    assert stds[1] == pytest.approx(expected.item(), abs=0.01)


def test_refreshing_an_averaged_spectral_norm_restores_the_unit_largest_singular_value():
    """An EMA averages the power iteration's vectors with the weights (buffers): shorter vectors
    underestimate sigma; the refresh makes the normalised weight's largest singular value 1 again."""
    torch.manual_seed(0)
    layer = nn.utils.parametrizations.spectral_norm(nn.Linear(12, 7)).eval()
    parametrization = layer.parametrizations.weight[0]
    with torch.no_grad():
        parametrization._u.mul_(0.8)  # what averaging unit vectors that turned does
        parametrization._v.mul_(0.8)
        assert torch.linalg.matrix_norm(layer.weight, ord=2) > 1.2
        refresh_spectral_norms(layer, iterations=20)
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=1e-4)


# --- the conditional metrics --------------------------------------------------------------------


class FirstPixels(nn.Module):
    """A classifier whose logits are the first K pixels: an image with pixel k brightest is class k."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, images):
        return images.flatten(1)[:, : self.num_classes]


def _coded_images(labels):
    return F.one_hot(labels, 64).float().view(-1, 1, 8, 8)


def test_conditional_accuracy_and_class_variance_known_answers():
    labels = torch.arange(2000) % 10
    assert conditional_accuracy(FirstPixels(10), _coded_images(labels), labels, 300) == 1.0
    drawn = torch.randint(0, 10, (2000,), generator=torch.Generator().manual_seed(0))
    assert conditional_accuracy(FirstPixels(10), _coded_images(drawn), labels, 300) == pytest.approx(0.1, abs=0.02)
    assert class_variance(_coded_images(labels), labels, 10) == 0.0  # one image per class
    images = torch.rand(3000, 1, 2, 2)
    spread = torch.arange(3000) % 3
    expected = torch.stack([images[spread == k].flatten(1).var(0).mean() for k in range(3)]).mean()
    assert class_variance(images, spread, 3) == pytest.approx(expected.item(), rel=1e-5)


def _metrics_on_rank(rank: int, world_size: int, directory: Path) -> None:
    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{directory / 'init'}", rank=rank, world_size=world_size)
    try:
        images, labels, asked = torch.load(directory / "data.pt")
        mine = slice(rank, None, world_size)
        torch.save((conditional_accuracy(FirstPixels(10), images[mine], asked[mine], 7),
                    class_variance(images[mine], labels[mine], 10)), directory / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_conditional_metrics_are_the_whole_samples_under_ddp(tmp_path):
    """Two gloo ranks, each with a strided share, both report the numbers of all the samples."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (61,), generator=generator)
    asked = torch.where(torch.rand(61, generator=generator) < 0.7, labels, (labels + 1) % 10)
    images = _coded_images(labels) + 0.1 * torch.rand(61, 1, 8, 8, generator=generator)
    torch.save((images, labels, asked), tmp_path / "data.pt")
    mp.start_processes(_metrics_on_rank, args=(2, tmp_path), nprocs=2, start_method="fork")
    expected = (conditional_accuracy(FirstPixels(10), images, asked, 7), class_variance(images, labels, 10))
    assert expected[0] == int((asked == labels).sum()) / 61
    for rank in range(2):
        accuracy, variance = torch.load(tmp_path / f"rank{rank}.pt")
        assert accuracy == expected[0] and variance == pytest.approx(expected[1], rel=1e-9)


# --- the task -----------------------------------------------------------------------------------


def _task(root, monkeypatch, model="sagan", num_generated=None):
    monkeypatch.chdir(root)
    monkeypatch.setenv("COURSELAB_ROOT", str(root))
    params = with_absolute_paths(load_params(root / "params.yaml"))
    if num_generated is not None:
        section = params.generative
        fid = section.fid.model_copy(update={"num_generated": num_generated})
        params = params.model_copy(update={"generative": section.model_copy(update={"fid": fid})})
    torch.manual_seed(0)
    task = build_task(model, params)
    steps = len(task.datasets()["train"]) // params.generative.trainer.batch_size
    task.setup(torch.device("cpu"), wrap=lambda net, **_: net, steps_per_epoch=steps)
    return task, params


class NearestTrainImage(nn.Module):
    """A perfect classifier of the training images: logits are minus the distance to each class's
    nearest one; its features (for the FID) are the pixels."""

    def __init__(self, images, labels, num_classes: int) -> None:
        super().__init__()
        self.images, self.labels, self.num_classes = images.flatten(1), labels, num_classes
        self.num_features = self.images.shape[1]

    def embed(self, images):
        return images.flatten(1)

    def forward(self, images):
        distances = torch.cdist(images.flatten(1), self.images)
        return torch.stack([-distances[:, self.labels == k].min(1).values for k in range(self.num_classes)], dim=1)


@pytest.mark.parametrize("model", ["sagan", "cgan", "cvae"])
def test_cond_accuracy_is_one_for_real_images_of_the_asked_class_and_chance_for_random_ones(
        tiny_repo, monkeypatch, model):  # noqa: F811
    task, params = _task(tiny_repo, monkeypatch, model, num_generated=1000)
    images, labels = task.datasets()["train"].tensors
    task.evaluator = NearestTrainImage(images, labels, 10)
    by_class = [images[labels == k] for k in range(10)]
    pick = torch.Generator().manual_seed(0)

    def real_images_of(classes):
        return torch.stack([by_class[k][torch.randint(len(by_class[k]), (), generator=pick)] for k in classes.tolist()])

    val = torch.utils.data.DataLoader(task.datasets()["val"], batch_size=params.generative.trainer.eval_batch_size)
    monkeypatch.setattr(task, "_decode", lambda net, codes, asked: real_images_of(asked))
    scores = task.evaluate(val)
    assert scores["cond_accuracy"] == 1.0
    if model == "sagan":
        assert all(scores[f"truncation/t{t}/cond_accuracy"] == 1.0 for t in ("2", "1", "0.5", "0.04"))
    monkeypatch.setattr(task, "_decode", lambda net, codes, asked: real_images_of(
        torch.randint(0, 10, asked.shape, generator=pick)))
    assert task.evaluate(val)["cond_accuracy"] == pytest.approx(0.1, abs=0.04)


def test_unconditional_models_log_no_cond_accuracy(tiny_repo, monkeypatch):  # noqa: F811
    task, params = _task(tiny_repo, monkeypatch, "dcgan")
    val = torch.utils.data.DataLoader(task.datasets()["val"], batch_size=params.generative.trainer.eval_batch_size)
    assert "cond_accuracy" not in task.evaluate(val)


def test_sagan_trains_logs_truncation_and_its_export_round_trips(tiny_repo, monkeypatch, tmp_path):  # noqa: F811
    task, params = _task(tiny_repo, monkeypatch)
    train = torch.utils.data.DataLoader(task.datasets()["train"], batch_size=params.generative.trainer.batch_size,
                                        shuffle=True)
    for _, batch in zip(range(3), train, strict=False):
        task.train_step(batch)
    val = torch.utils.data.DataLoader(task.datasets()["val"], batch_size=params.generative.trainer.eval_batch_size)
    scores = task.evaluate(val)
    thresholds = params.generative.models.sagan.truncation
    assert thresholds == [2.0, 1.0, 0.5, 0.04]
    names = ("fid_evaluator", "cond_accuracy", "class_variance")
    for t in ("t2", "t1", "t0.5", "t0.04"):
        assert {f"truncation/{t}/{name}" for name in names} <= set(scores)
    assert {"cond_accuracy", "class_variance"} <= set(scores)
    assert "truncation" in task.figures(next(iter(val)))

    torch.save(task.export(), tmp_path / "model.pt")
    export = torch.load(tmp_path / "model.pt", weights_only=True)  # as the stage writes and MLflow reads it
    assert export["kind"] == "sagan" and export["conditional"]
    net = load_exported(export)
    assert isinstance(net, ConditionalGenerator) and not net.training
    codes, labels = torch.randn(20, params.generative.backbone.latent_dim), torch.arange(20) % 10
    expected = task.sample(codes, labels)
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(net(codes, labels)), expected)
        served = serving_model(export)
        torch.testing.assert_close(served.module(torch.cat([codes, F.one_hot(labels, 10).float()], 1)), expected)
        assert served.module(served.example).shape == (2, 1, 8, 8)


# --- params -------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [2, 16])
def test_an_attention_side_the_networks_never_pass_through_is_one_line_naming_the_key(tiny_params, side):
    tiny_params["generative"]["models"]["sagan"]["attention_resolution"] = side
    with pytest.raises(UserError) as info:
        parse_params(tiny_params)
    message = str(info.value)
    assert "generative.models.sagan.attention_resolution" in message and "allowed: 4, 8 or null" in message
    assert "\n" not in message


@pytest.mark.parametrize("side", [4, 8, None])
def test_every_side_the_networks_pass_through_is_accepted(tiny_params, side):
    tiny_params["generative"]["models"]["sagan"]["attention_resolution"] = side
    params = parse_params(yaml.safe_load(yaml.safe_dump(tiny_params)))
    assert params.generative.models.sagan.attention_resolution == side
