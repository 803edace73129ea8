"""The visualization family's own pieces besides the attribution methods and scores: the scene
classifier's labels and metric, and the unit-level tools (patches, neighbours, t-SNE, class models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from components.families.visualization import units
from components.families.visualization.config import ClassModelConfig
from components.families.visualization.models import SceneCNN
from components.families.visualization.task import mean_average_precision, multi_hot


def test_multi_hot_marks_each_digit_a_scene_holds_once():
    # box labels are digit + 1: a scene with two 3s and a 0, an empty scene, a scene with a 9
    out = multi_hot([[4, 4, 1], [], [10]], num_classes=10)
    assert out.tolist()[0] == [1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert out[1].sum() == 0 and out[2, 9] == 1 and out.sum() == 3


def test_mean_average_precision_known_answers():
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    assert mean_average_precision(targets.astype(float), targets) == 1.0  # perfect scores
    scores = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.8, 0.7]])  # every positive ranked last
    # class 0: positives at ranks 3 and 4 of 4 -> AP = (1/3 + 2/4) / 2; class 1: rank 4 -> 1/4
    assert mean_average_precision(scores, targets) == pytest.approx(((1 / 3 + 2 / 4) / 2 + 1 / 4) / 2)
    absent = np.array([[1, 0], [0, 0]])  # class 1 has no positive: left out, not a 0
    assert mean_average_precision(np.array([[0.9, 0.1], [0.2, 0.3]]), absent) == 1.0


def test_scene_cnn_stages_keep_the_resolution_the_docs_state():
    net = SceneCNN(1, 10, [4, 4, 4, 4], convs_per_stage=1).eval()
    features = net.features(torch.zeros(2, 1, 64, 64))
    assert {k: tuple(v.shape[-2:]) for k, v in features.items()} == {
        "conv1": (64, 64), "conv2": (32, 32), "conv3": (16, 16), "conv4": (8, 8)}
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 10)
    assert net.last_conv is net.stages[-1]


def test_max_activating_patches_crop_around_the_strongest_position():
    images = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    activation = torch.zeros(2, 1, 4, 4)  # stride 4: window 16, centred on (y*4 + 2, x*4 + 2)
    activation[0, 0, 1, 2] = 1.0
    activation[1, 0, 3, 0] = 5.0  # image 1 fires most: first
    patches = units.max_activating_patches(images, activation, unit=0, count=2)
    assert patches.shape == (2, 1, 16, 16)
    centre = patches.shape[-1] // 2  # the patch's centre pixel is the strongest position's centre
    assert patches[0, 0, centre, centre] == images[1, 0, 3 * 4 + 2, 0 * 4 + 2]
    assert patches[1, 0, centre, centre] == images[0, 0, 1 * 4 + 2, 2 * 4 + 2]
    assert patches[0, 0, -1, 0] == 0  # beyond the border: zero padding


def test_knn_and_nearest_on_separable_points():
    train = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    test = torch.tensor([[0.05, 0.1], [4.9, 5.2]])
    assert units.knn_accuracy(train, labels, test, torch.tensor([0, 1]), k=1) == 1.0
    assert units.knn_accuracy(train, labels, test, torch.tensor([1, 0]), k=1) == 0.0
    assert units.nearest(train, test, 2).sort(1).values.tolist() == [[0, 1], [2, 3]]


def test_tsne_of_separated_clusters_is_trustworthy():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(8) * 20
    features = torch.cat([centres[i] + torch.randn(15, 8, generator=generator) for i in range(3)])
    points, trust = units.tsne(features, perplexity=10, seed=0, neighbours=5)
    assert points.shape == (45, 2) and trust > 0.9


def test_class_model_of_a_linear_model_finds_its_optimum():
    """Score w.x - l2 ||x||^2 over [0, 1]: the optimum is 1 where w > 2 l2 and 0 elsewhere."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval().requires_grad_(False)
    plain = ClassModelConfig(steps=200, lr=0.05, l2=0.001, blur_every=1, blur_sigma=0.0, upsample=1)
    image = units.class_model(net, 2, torch.zeros(1, 4, 4), plain)
    optimum = (net[1].weight[2] > 2 * plain.l2).float().reshape(1, 1, 4, 4)
    assert torch.allclose(image, optimum, atol=0.05)
    regularised = ClassModelConfig(steps=100, lr=0.05, l2=0.001, blur_every=5, blur_sigma=0.5, upsample=2)
    image = units.class_model(net, 2, torch.full((1, 4, 4), 0.5), regularised)
    assert image.shape == (1, 1, 4, 4) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    logit = lambda x: float(net(x)[0, 2])  # noqa: E731
    assert logit(torch.zeros(1, 1, 4, 4)) < logit(image) <= logit(optimum) + 1e-6
