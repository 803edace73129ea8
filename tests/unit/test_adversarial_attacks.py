"""The adversarial family's attacks: the course's linear example, the norms each attack promises, and
agreement with torchattacks (the maintained library) on the same model and images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from components.families.adversarial import attacks
from components.families.adversarial.models import build_classifier

torchattacks = pytest.importorskip("torchattacks")


class Logistic(nn.Module):
    """p(y=1|x) = sigmoid(w.x) as two logits (0, w.x): cross-entropy is the logistic loss."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1) @ self.w
        return torch.stack([torch.zeros_like(score), score], dim=1)


def linear_toy() -> tuple[Logistic, torch.Tensor]:
    """The course's example: w.x = -3 (p = 0.047); ||w||_1 = 10, so FGSM's 0.5 * sign(w) adds 5."""
    w = torch.tensor([1.0] * 5 + [-1.0] * 5, dtype=torch.float64)
    x = torch.tensor([0.2] * 5 + [0.8] * 5, dtype=torch.float64)  # inside [0, 1] before and after the step
    return Logistic(w), x[None]


def test_linear_toy_fgsm_moves_the_score_from_minus_3_to_2():
    model, x = linear_toy()
    assert float(x @ model.w) == pytest.approx(-3.0)
    p_before = torch.softmax(model(x), 1)[0, 1]
    assert float(p_before) == pytest.approx(1 / (1 + math.exp(3)), abs=1e-12)
    assert round(float(p_before), 3) == 0.047
    adversarial = attacks.fgsm(model, x, torch.tensor([0]), epsilon=0.5)  # the model says 0: push it away
    assert torch.allclose(adversarial - x, 0.5 * model.w.sign()[None])
    assert float(adversarial @ model.w) == pytest.approx(2.0)
    p_after = torch.softmax(model(adversarial), 1)[0, 1]
    assert round(float(p_after), 2) == 0.88


def test_deepfool_on_the_linear_model_is_the_distance_to_its_boundary():
    model, x = linear_toy()
    step = attacks.deepfool(model, x[0], num_classes=2, overshoot=0.02)
    # the boundary w.x = 0 is 3 / ||w||_2 away along w, crossed by the overshoot in one step
    assert float(step.norm()) == pytest.approx(1.02 * 3 / float(model.w.norm()))
    assert int(model(x + step).argmax()) == 1
    linf = attacks.deepfool(model, x[0], num_classes=2, overshoot=0.02, norm="linf")
    assert float(linf.abs().max()) == pytest.approx(1.02 * 3 / float(model.w.abs().sum()))  # 3 / ||w||_1 = 0.3


def test_deepfool_equals_torchattacks(trained_cnn):
    net, images = trained_cnn
    predicted = net(images).argmax(1)  # torchattacks starts from the given label; ours from the prediction
    theirs = torchattacks.DeepFool(net, steps=50, overshoot=0.02)(images, predicted)
    ours = torch.stack([image + attacks.deepfool(net, image, 10, overshoot=0.02) for image in images])
    # a path to compare: every image moved, and most now sit across a boundary. DeepFool stops 2% past
    # the linearised boundary, so an image can end on a near-tie whose argmax the batch's kernels round
    # either way (an Intel Xeon gave logits 7.4972 and 7.4972 for one of the 8; an AMD EPYC none)
    assert bool(((ours - images).flatten(1).abs().amax(1) > 0).all())
    assert int((net(ours).argmax(1) != predicted).sum()) >= 6
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.fixture(scope="module")
def trained_cnn():
    """The CNN trained for 150 steps on scikit-learn's digits (~98% train accuracy) and 8 of its
    images: an untrained network's BatchNorm in eval mode answers one class everywhere, and DeepFool
    then stalls at the valid range's edge, where a rounding difference picks another clipped path."""
    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    labels = torch.tensor(digits.target)
    net = build_classifier({"channels": [8, 16], "feature_dim": 16, "dropout": 0.0}, 1, 10, 8)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(150):
        batch = torch.randint(0, len(images), (64,))
        loss = F.cross_entropy(net(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval(), images[:8]


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    net = build_classifier({"channels": [8, 16], "feature_dim": 16, "dropout": 0.0}, 1, 10, 8).eval()
    images = torch.rand(8, 1, 8, 8)  # 8 images: the mean over them (torchattacks) vs the sum (ours) scales exactly
    labels = torch.randint(0, 10, (8,))
    return net, images, labels


def test_fgsm_step_has_infinity_norm_exactly_epsilon_before_clipping(cnn):
    net, images, labels = cnn
    step = attacks.fgsm_perturbation(net, images, labels, 0.1)
    assert float(step.abs().max()) == pytest.approx(0.1)
    assert torch.all((step == 0) | torch.isclose(step.abs(), torch.tensor(0.1)))
    assert (step != 0).float().mean() > 0.9  # zero only where the gradient is exactly zero
    adversarial = attacks.fgsm(net, images, labels, 0.1)
    assert adversarial.min() >= 0 and adversarial.max() <= 1


class Recorder(nn.Module):
    """A model that records every input it is called with."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.inputs = net, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


def test_pgd_iterates_stay_in_the_ball_and_the_valid_range(cnn):
    net, images, labels = cnn
    recorder = Recorder(net)
    attacks.pgd(recorder, images, labels, 0.1, steps=5, step_size=0.05, restarts=2,
                generator=torch.Generator().manual_seed(0))
    assert len(recorder.inputs) >= 6
    for x in recorder.inputs:
        assert float((x - images).abs().max()) <= 0.1 + 1e-6
        assert x.min() >= 0 and x.max() <= 1


def test_random_start_and_random_sign_keep_their_bounds(cnn):
    _, images, _ = cnn
    start = attacks.random_start(images, 0.2, torch.Generator().manual_seed(0))
    assert float((start - images).abs().max()) <= 0.2 + 1e-6 and start.min() >= 0 and start.max() <= 1
    noisy = attacks.random_sign(images, 0.2, torch.Generator().manual_seed(0))
    inside = (images > 0.2) & (images < 0.8)  # unclipped pixels move by exactly 0.2
    assert torch.allclose((noisy - images)[inside].abs(), torch.tensor(0.2))


def test_universal_perturbation_respects_its_bound(cnn):
    net, images, _ = cnn
    result = attacks.universal_perturbation(net, torch.rand(32, 1, 8, 8), 10, xi=0.1, max_passes=2,
                                            generator=torch.Generator().manual_seed(0))
    assert result.perturbation.shape == images.shape[1:]
    assert float(result.perturbation.abs().max()) <= 0.1 + 1e-7
    assert 0 <= result.train_fooling_rate <= 1
    assert result.train_fooling_rate >= max(result.history)  # the best v, checked within passes too


def test_fgsm_equals_torchattacks(cnn):
    net, images, labels = cnn
    ours = attacks.fgsm(net, images, labels, 0.1)
    theirs = torchattacks.FGSM(net, eps=0.1)(images, labels)
    assert torch.equal(ours, theirs)


def test_pgd_equals_torchattacks_without_random_start(cnn):
    net, images, labels = cnn
    ours = attacks.pgd(net, images, labels, 0.1, steps=7, step_size=0.025, random_init=False)
    theirs = torchattacks.PGD(net, eps=0.1, alpha=0.025, steps=7, random_start=False)(images, labels)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_least_likely_equals_torchattacks_least_likely_mode(cnn):
    net, images, labels = cnn
    one_step, targets = attacks.least_likely(net, images, 0.1, steps=1)
    fgsm = torchattacks.FGSM(net, eps=0.1)
    fgsm.set_mode_targeted_least_likely(kth_min=1)
    assert torch.equal(one_step, fgsm(images, labels))
    iterative, _ = attacks.least_likely(net, images, 0.1, steps=5, step_size=0.04)
    pgd = torchattacks.PGD(net, eps=0.1, alpha=0.04, steps=5, random_start=False)
    pgd.set_mode_targeted_least_likely(kth_min=1)
    assert torch.allclose(iterative, pgd(images, labels), atol=1e-6)
    assert torch.equal(targets, net(images).argmin(1))


def test_attacked_accuracy_counts_correct_predictions(cnn):
    net, images, _ = cnn
    predicted = net(images).argmax(1)
    assert attacks.attacked_accuracy(net, images, predicted, None) == 1.0
    assert attacks.attacked_accuracy(net, images, (predicted + 1) % 10, None) == 0.0
