"""The self-supervised family's transfer to segmentation: the FCN on the pretrained stages, its label subsets,
fine-tuning (it learns, it is seeded, it leaves the caller's encoder alone) and the mIoU's known answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.families.generative.evaluator import Evaluator
from components.families.selfsup.models import build_encoder
from components.families.selfsup.transfer import SegmentationTransfer, evaluate, fine_tune, label_subset

CLASSES = 3  # background, bright squares, dim squares


def tiny_encoder(seed: int = 0) -> Evaluator:
    torch.manual_seed(seed)
    return build_encoder({"channels": [8, 8], "feature_dim": 16}, 1, 8)


def squares(count: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes with a bright square of class 1 and a dim one of class 2 (drawn over it where they overlap),
    each side a quarter to two fifths of the scene's, on background 0."""
    images = torch.zeros(count, 1, size, size)
    masks = torch.zeros(count, size, size, dtype=torch.long)
    for i in range(count):
        for label, value in ((1, 1.0), (2, 0.5)):
            side = int(torch.randint(size // 4, 2 * size // 5 + 1, (1,), generator=generator))
            row, col = torch.randint(0, size - side + 1, (2,), generator=generator).tolist()
            images[i, 0, row:row + side, col:col + side] = value
            masks[i, row:row + side, col:col + side] = label
    return images, masks


def test_forward_keeps_the_input_size_and_fine_tuning_leaves_the_callers_encoder_alone():
    encoder = tiny_encoder()
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    images, masks = squares(4, 16, torch.Generator().manual_seed(0))
    for downscale in (1, 2):
        net = SegmentationTransfer(encoder, CLASSES, downscale)
        assert net(images).shape == (4, CLASSES, 16, 16)
        fine_tune(net, images, masks, 3, 2, 1e-2, 0.0, torch.Generator().manual_seed(0))
        assert not net.training  # left in eval mode
    after = encoder.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # weights and BatchNorm statistics


def test_the_transfer_net_starts_from_the_pretrained_stage_weights():
    encoder = tiny_encoder().requires_grad_(False)  # a frozen, loaded encoder: fine-tuning still trains its copy
    net = SegmentationTransfer(encoder, CLASSES, 2)
    assert len(net.stages) == 2
    for i, stage in enumerate(net.stages):
        conv_block = encoder.trunk[2 * i].state_dict()  # each trunk stage is a double_conv and a max-pool
        copied = stage[0].state_dict()
        assert copied.keys() == conv_block.keys()
        assert all(torch.equal(copied[name], conv_block[name]) for name in conv_block)
    assert all(p.requires_grad for p in net.parameters())
    own = {p.data_ptr() for p in net.parameters()}
    assert not own & {p.data_ptr() for p in encoder.parameters()}  # a copy, no shared storage
    # the decoder is the only thing drawn at construction, from the global seed
    torch.manual_seed(1)
    first = SegmentationTransfer(encoder, CLASSES, 2).state_dict()
    torch.manual_seed(1)
    second = SegmentationTransfer(encoder, CLASSES, 2).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_label_subset_is_sorted_unique_seeded_and_never_empty():
    index = label_subset(1000, 0.012, torch.Generator().manual_seed(0))
    assert len(index) == 12 and len(index.unique()) == 12
    assert torch.equal(index, index.sort().values) and int(index.min()) >= 0 and int(index.max()) < 1000
    assert torch.equal(index, label_subset(1000, 0.012, torch.Generator().manual_seed(0)))
    assert not torch.equal(index, label_subset(1000, 0.012, torch.Generator().manual_seed(1)))
    assert len(label_subset(100, 0.1, torch.Generator().manual_seed(0))) == 10
    assert len(label_subset(50, 0.001, torch.Generator().manual_seed(0))) == 1  # at least one scene
    assert torch.equal(label_subset(7, 1.0, torch.Generator().manual_seed(0)), torch.arange(7))


def test_fine_tuning_learns_the_squares():
    """Over 40 seeds the untrained net scores <= 0.31 held-out mIoU and the fine-tuned one >= 0.77."""
    generator = torch.Generator().manual_seed(0)
    train, test = squares(16, 32, generator), squares(16, 32, generator)
    net = SegmentationTransfer(tiny_encoder(), CLASSES, 2)
    untrained = evaluate(net, *test, CLASSES)["miou"]
    losses = fine_tune(net, *train, 150, 8, 1e-2, 0.0, torch.Generator().manual_seed(0))
    trained = evaluate(net, *test, CLASSES)
    assert len(losses) == 150
    assert sum(losses[-10:]) < 0.3 * sum(losses[:10])
    assert trained["miou"] > 0.7 and trained["miou"] > untrained + 0.4
    assert trained["pixel_accuracy"] > 0.9


def test_evaluate_scores_perfect_logits_as_miou_one(monkeypatch):
    _, masks = squares(10, 16, torch.Generator().manual_seed(0))
    images = masks[:, None].float()  # each image carries its mask, so the patched forward can return it
    net = SegmentationTransfer(tiny_encoder(), CLASSES, 1)
    monkeypatch.setattr(net, "forward", lambda x: F.one_hot(x[:, 0].long(), CLASSES).permute(0, 3, 1, 2).float())
    assert evaluate(net, images, masks, CLASSES, batch_size=3) == {"miou": 1.0, "pixel_accuracy": 1.0}
    # every pixel called background: IoU_0 = background share, IoU_1 = IoU_2 = 0
    monkeypatch.setattr(net, "forward", lambda x: F.one_hot(torch.zeros_like(x[:, 0]).long(), CLASSES)
                        .permute(0, 3, 1, 2).float())
    background = float((masks == 0).double().mean())
    scores = evaluate(net, images, masks, CLASSES, batch_size=4)
    assert abs(scores["miou"] - background / 3) < 1e-12 and abs(scores["pixel_accuracy"] - background) < 1e-12


def test_fine_tuning_is_deterministic():
    images, masks = squares(8, 16, torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = SegmentationTransfer(tiny_encoder(), CLASSES, 2)
        runs.append((fine_tune(net, images, masks, 10, 4, 1e-2, 1e-4, torch.Generator().manual_seed(0)),
                     net.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][name], runs[1][1][name]) for name in runs[0][1])
