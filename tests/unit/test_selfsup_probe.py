"""The self-supervised family's probe and encoder pieces: BatchNorm statistics re-estimated from images
alone, the linear probe's known answers, the few-label draws, the seeded augmentations."""

from __future__ import annotations

import inspect

import numpy as np
import torch

from components.families.selfsup.augment import augment, random_crop_resize, random_erase
from components.families.selfsup.config import AugmentConfig
from components.families.selfsup.models import build_encoder, build_head, probe_features, reestimate_batch_norm
from components.families.selfsup.probe import Split, few_labels, probe, probe_all


def test_the_probe_reestimates_batch_norm_statistics_from_images_alone():
    assert list(inspect.signature(reestimate_batch_norm).parameters) == ["encoder", "images", "batch_size"]  # no labels
    torch.manual_seed(0)
    encoder = build_encoder({"channels": [4, 4], "feature_dim": 8}, 1, 8).eval()
    first_bn = encoder.trunk[0][0][1]
    first_bn.running_mean.fill_(5.0)  # stale statistics of other inputs (the pretext's views)
    first_bn.running_var.fill_(9.0)
    images = torch.rand(300, 1, 8, 8)
    reestimate_batch_norm(encoder, images)  # one batch: the statistics of all 300 images
    with torch.no_grad():
        pre = encoder.trunk[0][0][0](images)  # the first convolution's output: what the first BN normalises
    assert torch.allclose(first_bn.running_mean, pre.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_bn.running_var, pre.var((0, 2, 3), unbiased=True), rtol=1e-3)
    assert not encoder.training and first_bn.momentum == 0.1  # back to eval, its momentum restored
    shapes = {suffix: tuple(f.shape) for suffix, f in probe_features(encoder, images[:2]).items()}
    assert shapes == {"": (2, 8), "_conv": (2, 4 * 2 * 2), "_mid": (2, 4 * 4 * 4)}


def test_without_a_feature_layer_the_final_features_are_the_last_stages_pooled_maps():
    torch.manual_seed(0)
    with_layer = build_encoder({"channels": [4, 6], "feature_dim": 8}, 1, 8)
    torch.manual_seed(0)
    encoder = build_encoder({"channels": [4, 6], "feature_dim": None}, 1, 8).eval()
    assert encoder.num_features == 6 * 2 * 2 and not any(isinstance(m, torch.nn.Linear) for m in encoder.modules())
    conv = {k: v for k, v in with_layer.state_dict().items() if k in encoder.state_dict()}
    assert conv.keys() == encoder.state_dict().keys()  # the same seed, the same conv weights
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in conv.items())
    features = probe_features(encoder, torch.rand(3, 1, 8, 8))
    assert features[""].shape == (3, 24) and torch.equal(features[""], features["_conv"])
    for method in ("rotation", "jigsaw", "context", "inpainting", "simclr", "deepcluster"):  # every head fits them
        config = {"grid": 2, "permutations": 6, "encode": "image", "hidden": 16, "projection_dim": 4, "clusters": 5}
        head = build_head(method, config, encoder.num_features, 10, 8)
        inputs = features[""].repeat(1, 2) if method == "context" else features[""]
        assert head(inputs).shape[0] == 3, method


def test_probe_known_answers():
    separable = Split(np.array([[0.0], [0.1], [1.0], [1.1]]), np.array([0, 0, 1, 1]))
    accuracy, _ = probe(separable, separable, separable, [1.0], 100)
    assert accuracy == 1.0
    flipped = Split(separable.features, 1 - separable.labels)  # the test labels disagree everywhere
    assert probe(separable, separable, flipped, [1.0], 100)[0] == 0.0
    # C is chosen on val: a C so small the model predicts one class loses to a usable one
    generator = np.random.default_rng(0)
    x = generator.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    data = Split(x, y)
    assert probe(data, data, data, [1e-6, 1.0], 500)[1] == 1.0


def test_few_labels_draws_per_class_and_is_seeded():
    labels = np.repeat(np.arange(3), [20, 20, 5])
    index = few_labels(labels, 10, torch.Generator().manual_seed(0))
    assert np.bincount(labels[index]).tolist() == [10, 10, 5]
    assert np.array_equal(index, few_labels(labels, 10, torch.Generator().manual_seed(0)))
    assert not np.array_equal(index, few_labels(labels, 10, torch.Generator().manual_seed(1)))
    x = np.eye(3)[labels] + 0.01 * np.arange(len(labels))[:, None]
    scores = probe_all(Split(x, labels), Split(x, labels), Split(x, labels), [1.0], 200, 2, 3,
                       torch.Generator().manual_seed(0))
    assert scores["accuracy"] == 1.0 and scores["few"] == 1.0 and scores["few_std"] == 0.0


def test_augmentations_are_seeded_and_keep_the_range():
    images = torch.rand(16, 1, 8, 8)
    config = AugmentConfig(min_scale=0.7, brightness=0.2, noise=0.05, erase_p=0.5, erase_size=3)
    first = augment(images, config, torch.Generator().manual_seed(3))
    assert torch.equal(first, augment(images, config, torch.Generator().manual_seed(3)))
    assert first.shape == images.shape and 0.0 <= float(first.min()) and float(first.max()) <= 1.0
    assert not torch.equal(first, images)
    # a crop of scale 1 is the identity; an erase of probability 1 zeroes 1..size pixels per image
    assert torch.allclose(random_crop_resize(images, 1.0, torch.Generator().manual_seed(0)), images, atol=1e-6)
    erased = random_erase(torch.ones(50, 1, 8, 8), 1.0, 3, torch.Generator().manual_seed(0))
    zeros = (erased == 0).flatten(1).sum(1)
    assert set(zeros.tolist()) <= {1, 4, 9} and len(set(zeros.tolist())) > 1


def test_a_moco_step_trains_the_query_encoder_and_moves_the_key_encoder_by_momentum(tmp_path):
    from components.data.schema import DatasetMeta
    from components.families.selfsup.config import EncoderConfig, MoCoConfig
    from components.families.selfsup.task import SelfSupTask
    from components.train.task import unwrap

    config = MoCoConfig(epochs=1, lr=0.01, weight_decay=0.0, lr_schedule="constant", warmup_fraction=0.0, init_seed=0,
                        temperature=0.2, projection_dim=8, queue_size=16, momentum=0.9)
    augmentation = AugmentConfig(min_scale=0.8, brightness=0.1, noise=0.05, erase_p=0.0, erase_size=1)
    meta = DatasetMeta("digits", "classification", [str(d) for d in range(10)], 8, 8, 1)
    task = SelfSupTask("moco", config, EncoderConfig(channels=[4, 4], feature_dim=8), augmentation, tmp_path, meta, 0)
    task.setup(torch.device("cpu"), lambda module: module, steps_per_epoch=1)
    key = task.modules["key"]
    query = torch.nn.Sequential(unwrap(task.modules["encoder"]), unwrap(task.modules["head"]))
    assert all(torch.equal(k, q) for k, q in zip(key.parameters(), query.parameters(), strict=True))  # a copy at first
    key_before = [p.clone() for p in key.parameters()]
    query_before = [p.clone() for p in query.parameters()]
    images = torch.rand(6, 1, 8, 8)
    task.train_step((images, torch.zeros(6, dtype=torch.long)))
    assert not all(torch.equal(q, old) for q, old in zip(query.parameters(), query_before, strict=True))
    for k, old, q in zip(key.parameters(), key_before, query.parameters(), strict=True):
        assert torch.allclose(k, 0.9 * old + 0.1 * q, atol=1e-7)
    assert int(task.modules["queue"].pointer) == 6  # the batch's keys joined the queue


def test_deepcluster_clusters_separable_features_into_their_classes():
    from components.families.selfsup.deepcluster import balancing_weights, cluster, nmi

    generator = np.random.default_rng(0)
    centres = generator.normal(size=(3, 6)) * 10
    classes = np.repeat(np.arange(3), 40)
    features = centres[classes] + generator.normal(size=(120, 6))
    clustering = cluster(features, clusters=3, pca_dim=4, seed=0)
    assert nmi(clustering.labels, classes) == 1.0
    assert np.array_equal(clustering.assign(features), clustering.labels)
    # weights: N / (k x size), 0 for an empty cluster; each cluster's weights then sum to N / k
    weights = balancing_weights(np.array([0, 0, 0, 1]), clusters=3)
    assert weights.tolist() == [4 / 9, 4 / 3, 0.0]


def test_the_random_encoders_row_is_the_mean_over_its_initialisations():
    from pipelines.selfsup_probe import mean_over_inits

    rows = [{f"test/probe_accuracy{layer}{tail}": value for layer in ("", "_conv", "_mid")
             for tail, value in (("", 0.9 + i / 100), ("_few", 0.8 + i / 10), ("_few_std", 0.01 * (i + 1)))}
            for i in range(2)]
    row = mean_over_inits(rows)
    assert np.isclose(row["test/probe_accuracy"], 0.905) and np.isclose(row["test/probe_accuracy_mid_few"], 0.85)
    assert np.isclose(row["test/probe_accuracy_few_std"], 0.015)  # still the spread over label draws
    assert np.isclose(row["test/probe_accuracy_conv_few_init_std"], 0.05)  # the spread over initialisations


def test_the_random_encoders_are_the_weights_each_init_seed_starts_from(tmp_path):
    import unittest.mock

    import yaml

    from components.config import PARAMS_FILE, parse_params
    from components.data.schema import DatasetMeta
    from components.families.selfsup import encoders
    from components.families.selfsup.task import SelfSupTask

    params = parse_params(yaml.safe_load(open(PARAMS_FILE)))
    meta = DatasetMeta("digits", "classification", [str(d) for d in range(10)], 8, 8, 1)
    section = params.selfsup
    nets = []
    for offset in (0, 1):
        config = section.models.rotation.model_copy(update={"init_seed": offset})
        task = SelfSupTask("rotation", config, section.encoder, section.augment, tmp_path, meta, params.seed)
        task.setup(torch.device("cpu"), lambda module: module, steps_per_epoch=1)
        nets.append(task.modules["encoder"].evaluator.state_dict())
    with unittest.mock.patch.object(encoders, "read_meta", lambda directory: meta):
        for offset, start in enumerate(nets):
            random = encoders.untrained(params, offset).state_dict()
            assert all(torch.equal(random[key], start[key]) for key in start)
    assert not torch.equal(nets[0]["trunk.0.0.0.weight"], nets[1]["trunk.0.0.0.weight"])  # two seeds, two encoders

