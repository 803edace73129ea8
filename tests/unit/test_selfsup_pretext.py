"""The self-supervised pretext tasks' labels and losses: known answers and round trips, and agreement
of the written-out NT-Xent with lightly's (the maintained library)."""

from __future__ import annotations

import math

import pytest
import torch

from components.families.selfsup import pretext


def test_info_nce_equals_its_closed_form_on_a_hand_example():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised inside: [1, 0], [0, 1]
    keys = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # [1, 0], [1, 1]/sqrt(2)
    t = 0.5
    s = 1 / math.sqrt(2)
    # query 0: positive cos 1, negative cos s; query 1: positive cos s, negative cos 0
    expected = -(math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(s / t)))
                 + math.log(math.exp(s / t) / (math.exp(s / t) + math.exp(0.0)))) / 2
    assert float(pretext.info_nce(queries, keys, t)) == pytest.approx(expected, rel=1e-6)
    queue = torch.tensor([[0.0, -1.0]])  # one more negative for every query (MoCo's queue)
    with_queue = -(math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(s / t) + 1.0))
                   + math.log(math.exp(s / t) / (math.exp(s / t) + 1.0 + math.exp(-1 / t)))) / 2
    assert float(pretext.info_nce(queries, keys, t, queue)) == pytest.approx(with_queue, rel=1e-6)


def test_info_nce_is_minimal_when_the_positives_coincide():
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(16, 8, generator=generator)
    coincide = float(pretext.info_nce(queries, queries, 0.2))
    for scale in (0.1, 0.5, 1.0):
        moved = queries + scale * torch.randn(16, 8, generator=generator)
        assert coincide < float(pretext.info_nce(queries, moved, 0.2))


def test_nt_xent_equals_lightly():
    lightly_loss = pytest.importorskip("lightly.loss")
    generator = torch.Generator().manual_seed(1)
    first, second = torch.randn(12, 16, generator=generator), torch.randn(12, 16, generator=generator)
    for t in (0.1, 0.5):
        ours = pretext.nt_xent(first, second, t)
        assert float(ours) == pytest.approx(float(lightly_loss.NTXentLoss(temperature=t)(first, second)), rel=1e-5)


def test_nt_xent_of_two_views_is_info_nce_both_ways_over_all_other_views():
    generator = torch.Generator().manual_seed(2)
    first, second = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    # with a single pair there are no negatives: the loss is 0
    assert float(pretext.nt_xent(first[:1], second[:1], 0.5)) == pytest.approx(0.0, abs=1e-6)
    assert float(pretext.nt_xent(first, second, 0.5)) > 0


def test_rotation_labels_round_trip():
    images = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
    turned, labels = pretext.rotations(images)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[:2], images)
    assert torch.equal(turned[2, 0], torch.tensor([[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]))  # 90 deg CCW
    assert torch.equal(pretext.unrotate(turned, labels), images.repeat(4, 1, 1, 1))


def test_context_pairs_cut_the_centre_and_the_labelled_neighbour():
    """Doersch et al.'s layout on a 12x12 image with 4-px patches, no gap or jitter: the centre patch is
    pixels 4..8 and label k's neighbour lies 4 px away along NEIGHBOURS[k] (sampled at 4x4, the bilinear
    grid falls on pixel centres, so the patches are the pixels themselves)."""
    images = torch.arange(16 * 144, dtype=torch.float32).reshape(16, 1, 12, 12)
    centres, neighbours, labels = pretext.context_pairs(images, 1 / 3, 0.0, 0.0, torch.Generator().manual_seed(0),
                                                        size=4)
    assert centres.shape == neighbours.shape == (16, 1, 4, 4) and set(labels.tolist()) <= set(range(8))
    assert len(set(labels.tolist())) > 4  # drawn, not fixed
    for image, centre, neighbour, label in zip(images, centres, neighbours, labels, strict=True):
        torch.testing.assert_close(centre, image[:, 4:8, 4:8])
        dy, dx = (4 + 4 * int(d) for d in pretext.NEIGHBOURS[label])
        torch.testing.assert_close(neighbour, image[:, dy:dy + 4, dx:dx + 4])
    # a gap moves the neighbours out by it; jitter moves each patch by at most its bound
    _, apart, labels = pretext.context_pairs(images, 1 / 6, 1 / 6, 0.0, torch.Generator().manual_seed(1), size=2)
    for image, neighbour, label in zip(images, apart, labels, strict=True):
        dy, dx = (5 + 4 * int(d) for d in pretext.NEIGHBOURS[label])
        torch.testing.assert_close(neighbour, image[:, dy:dy + 2, dx:dx + 2])
    jittered, _, _ = pretext.context_pairs(images, 1 / 3, 0.0, 1 / 24, torch.Generator().manual_seed(0), size=4)
    assert not torch.equal(jittered, centres) and (jittered - centres).abs().max() <= 0.5 * 13 + 1e-3


def test_jigsaw_permutations_are_far_apart_and_round_trip():
    generator = torch.Generator().manual_seed(0)
    permutations = pretext.hamming_permutations(9, 100, generator)
    assert permutations.shape == (100, 9) and len({tuple(p) for p in permutations.tolist()}) == 100
    distances = (permutations[:, None] != permutations[None]).sum(-1) + 9 * torch.eye(100, dtype=torch.long)
    assert int(distances.min()) >= 6  # the authors' 100 have a minimal distance of 6 or more
    assert torch.equal(pretext.hamming_permutations(9, 100, torch.Generator().manual_seed(0)), permutations)
    four = pretext.hamming_permutations(4, 24, generator)  # every permutation of 2x2 tiles
    assert len({tuple(p) for p in four.tolist()}) == 24
    with pytest.raises(ValueError, match="24"):
        pretext.hamming_permutations(4, 25, generator)

    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    tiles = pretext.to_tiles(images, 3)
    assert tiles.shape == (2, 9, 1, 2, 2) and torch.equal(tiles[0, 1, 0], images[0, 0, 0:2, 2:4])
    assert torch.equal(pretext.from_tiles(tiles), images)
    labels = torch.tensor([3, 57])
    shuffled = pretext.shuffle_tiles(tiles, permutations, labels)
    assert torch.equal(shuffled[1, 0], tiles[1, permutations[57, 0]])
    assert torch.equal(pretext.unshuffle_tiles(shuffled, permutations, labels), tiles)


def test_jigsaw_shuffles_of_a_view_are_distinct_permutations():
    labels = pretext.draw_shuffles(50, 12, 4, torch.Generator().manual_seed(0))
    assert labels.shape == (200,) and int(labels.min()) >= 0 and int(labels.max()) < 12
    per_view = labels.reshape(50, 4)  # view-major: view i's shuffles are labels[4i:4i+4]
    assert all(len(set(row)) == 4 for row in per_view.tolist())
    assert len({tuple(row) for row in per_view.tolist()}) > 40  # the subsets differ from view to view
    every = pretext.draw_shuffles(3, 12, 12, torch.Generator().manual_seed(1)).reshape(3, 12)
    assert all(sorted(row) == list(range(12)) for row in every.tolist())
    assert torch.equal(pretext.draw_shuffles(50, 12, 4, torch.Generator().manual_seed(0)), labels)


def test_a_jigsaw_step_shuffles_each_view_several_times(tmp_path):
    from components.data.schema import DatasetMeta
    from components.families.selfsup.config import AugmentConfig, EncoderConfig, JigsawConfig
    from components.families.selfsup.task import SelfSupTask

    config = JigsawConfig(epochs=1, lr=0.01, weight_decay=0.0, lr_schedule="constant", warmup_fraction=0.0,
                          init_seed=0, grid=2, permutations=6, encode="image", hidden=8, shuffles=3)
    augmentation = AugmentConfig(min_scale=1.0, brightness=0.0, noise=0.0, erase_p=0.0, erase_size=1)
    meta = DatasetMeta("digits", "classification", [str(d) for d in range(10)], 8, 8, 1)
    task = SelfSupTask("jigsaw", config, EncoderConfig(channels=[4, 4], feature_dim=None), augmentation, tmp_path,
                       meta, 0)
    task.setup(torch.device("cpu"), lambda module: module, steps_per_epoch=1)
    seen = []
    head = task.modules["head"]
    head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    loss, hits = task.pretext_loss(torch.rand(5, 1, 8, 8), torch.zeros(5, dtype=torch.long))
    assert seen == [torch.Size([15, 16])] and hits.shape == (15,) and torch.isfinite(loss)


def test_jigsaw_shuffles_beyond_its_permutations_are_refused():
    import yaml

    from components.config import PARAMS_FILE, parse_params
    from components.errors import UserError

    raw = yaml.safe_load(open(PARAMS_FILE))
    raw["selfsup"]["models"]["jigsaw"].update(permutations=6, shuffles=7)
    with pytest.raises(UserError, match=r"selfsup\.models\.jigsaw: shuffles = 7 .* shuffles must be 1\.\.6"):
        parse_params(raw)


def test_moco_loss_equals_its_closed_form():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[1.0, 1.0], [0.0, 2.0]])  # cos 1/sqrt(2) and 1 with their queries
    queue = torch.tensor([[-1.0, 0.0]])  # cos -1 and 0
    t, s = 0.5, 1 / math.sqrt(2)
    expected = -(math.log(math.exp(s / t) / (math.exp(s / t) + math.exp(-1 / t)))
                 + math.log(math.exp(1 / t) / (math.exp(1 / t) + 1.0))) / 2  # the batch's other key is not a negative
    assert float(pretext.moco_loss(queries, keys, queue, t)) == pytest.approx(expected, rel=1e-6)


def test_the_moco_key_encoder_is_the_momentum_average_of_the_query_encoder():
    torch.manual_seed(0)
    query, key = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in key.parameters()]
    pretext.momentum_update(key, query, 0.9)
    for k, old, q in zip(key.parameters(), before, query.parameters(), strict=True):
        assert torch.allclose(k, 0.9 * old + 0.1 * q)
    pretext.momentum_update(key, query, 0.0)  # momentum 0: a copy
    assert all(torch.equal(k, q) for k, q in zip(key.parameters(), query.parameters(), strict=True))


def test_the_key_queue_is_a_ring_of_the_newest_keys():
    from components.families.selfsup.models import KeyQueue

    queue = KeyQueue(4, 2, torch.Generator().manual_seed(0))
    queue.push(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]))
    assert int(queue.pointer) == 3 and torch.allclose(queue.keys[1], torch.tensor([0.0, 1.0]))
    queue.push(torch.tensor([[0.0, -1.0], [-5.0, 0.0]]))  # wraps: slot 3, then slot 0
    assert int(queue.pointer) == 1
    assert torch.allclose(queue.keys[3], torch.tensor([0.0, -1.0])) and torch.allclose(queue.keys[0],
                                                                                       torch.tensor([-1.0, 0.0]))


def test_inpainting_holes_are_squares_of_the_given_side_set_to_zero():
    images = torch.ones(20, 1, 8, 8)
    holed, masks = pretext.cut_holes(images, 4, torch.Generator().manual_seed(0))
    assert masks.shape == (20, 1, 8, 8) and masks.flatten(1).sum(1).tolist() == [16] * 20
    assert torch.equal(holed, images.masked_fill(masks, 0.0)) and int((holed == 0).sum()) == 20 * 16
    for mask in masks[:, 0]:  # one contiguous 4x4 square
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert len(rows) == len(cols) == 4 and int(rows[-1] - rows[0]) == int(cols[-1] - cols[0]) == 3


def test_context_layout_with_every_neighbour_outside_the_image_is_refused():
    import yaml

    from components.config import PARAMS_FILE, parse_params
    from components.errors import UserError

    raw = yaml.safe_load(open(PARAMS_FILE))
    raw["selfsup"]["models"]["context"].update(patch=0.6, gap=0.25)
    with pytest.raises(UserError, match=r"selfsup\.models\.context: patch / 2 \+ gap = 0\.55"):
        parse_params(raw)
