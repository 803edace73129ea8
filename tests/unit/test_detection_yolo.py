"""YOLO-style detector: target encoding round trip, the torchvision-like interface, a tiny overfit."""

from __future__ import annotations

import pytest
import torch

from components.families.detection.yolo import YOLODetector, decode_grid, encode_targets

# Boxes in different cells, touching every image edge, one tiny and one nearly image-sized.
BOXES = torch.tensor(
    [
        [0.0, 0.0, 14.0, 20.0],  # top-left corner
        [50.0, 44.0, 64.0, 64.0],  # bottom-right corner (x1, y1 exclusive = image size)
        [20.5, 30.25, 41.0, 52.0],  # fractional coordinates
        [0.0, 40.0, 6.0, 64.0],  # left edge, narrow
        [40.0, 0.0, 64.0, 12.0],  # top/right edge
    ]
)
LABELS = torch.tensor([1, 10, 3, 7, 5])


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine an oversubscribed OpenMP pool is ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _round_trip(anchors: torch.Tensor | None) -> None:
    grid = encode_targets(BOXES, LABELS, num_classes=11, image_size=64, grid_size=8, anchors=anchors)
    assert grid.shape == (8, 8, 1 if anchors is None else len(anchors), 5 + 10)
    boxes, conf, probs = decode_grid(grid, image_size=64)
    keep = conf > 0.5
    assert int(keep.sum()) == len(BOXES)
    got_boxes, got_labels = boxes[keep], probs[keep].argmax(-1) + 1
    order = torch.cdist(BOXES, got_boxes).argmin(1)  # match each GT to its decoded box
    torch.testing.assert_close(got_boxes[order], BOXES, atol=1e-4, rtol=0)
    assert torch.equal(got_labels[order], LABELS)


def test_encode_decode_round_trip_v1() -> None:
    _round_trip(anchors=None)


def test_encode_decode_round_trip_v2_anchors() -> None:
    _round_trip(anchors=torch.tensor([[10.0, 16.0], [14.0, 21.0], [18.0, 26.0]]) / 64)


def test_encode_assigns_centre_cell_and_best_anchor() -> None:
    anchors = torch.tensor([[0.1, 0.1], [0.4, 0.4]])
    grid = encode_targets(torch.tensor([[30.0, 10.0, 50.0, 30.0]]), torch.tensor([2]), 11, 64, 8, anchors)
    row, col, slot = (grid[..., 4] > 0).nonzero()[0].tolist()
    assert (row, col, slot) == (2, 5, 1)  # centre (40, 20) -> cell (20 // 8, 40 // 8); 20x20 px = 0.31 -> 0.4 anchor
    assert encode_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 11, 64, 8).abs().sum() == 0


def _batch(n: int = 2) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images = [torch.rand(1, 64, 64) for _ in range(n)]
    targets = [{"boxes": BOXES[: i + 2].clone(), "labels": LABELS[: i + 2].clone()} for i in range(n - 1)]
    targets.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})  # an empty image
    return images, targets


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_train_mode_returns_finite_scalar_losses_with_gradients(variant: str) -> None:
    torch.manual_seed(0)
    model = YOLODetector(num_classes=11, in_channels=1, image_size=64, variant=variant).train()
    images, targets = _batch(3)
    losses = model(images, targets)
    assert set(losses) == {"loss_box", "loss_obj", "loss_noobj", "loss_cls"}
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
        assert value.item() > 0, name
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_eval_mode_returns_clipped_detections(variant: str) -> None:
    torch.manual_seed(0)
    model = YOLODetector(
        num_classes=11, in_channels=1, image_size=64, variant=variant, score_thresh=0.0, detections_per_img=30
    )
    with torch.no_grad():  # confident, oversized boxes so that clipping matters
        model.head.bias.fill_(3.0)
    model.eval()
    images, _ = _batch(2)
    for out in (model(images), model(torch.stack(images))):
        assert isinstance(out, list) and len(out) == 2
        for det in out:
            assert set(det) == {"boxes", "scores", "labels"}
            m = len(det["scores"])
            assert 0 < m <= 30
            assert det["boxes"].shape == (m, 4) and det["labels"].shape == (m,)
            assert det["labels"].dtype == torch.int64
            assert det["labels"].min() >= 1 and det["labels"].max() <= 10
            assert (det["boxes"] >= 0).all() and (det["boxes"] <= 64).all()
            assert (det["boxes"][:, 2:] > det["boxes"][:, :2]).all()
            assert (det["scores"][:-1] >= det["scores"][1:]).all()  # sorted by score


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="variant"):
        YOLODetector(num_classes=11, in_channels=1, image_size=64, variant="v3")
    with pytest.raises(ValueError, match="power of 2"):
        YOLODetector(num_classes=11, in_channels=1, image_size=64, grid_size=6)
    model = YOLODetector(num_classes=11, in_channels=1, image_size=64).train()
    with pytest.raises(ValueError, match="targets"):
        model([torch.rand(1, 64, 64)])
    with pytest.raises(ValueError, match="64x64"):
        model([torch.rand(1, 32, 32)], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])


def _squares() -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Four black images with white squares; the label is 1 + (side > 16)."""
    specs = [[(4, 6, 14)], [(30, 20, 24), (8, 40, 12)], [(40, 40, 20)], [(10, 10, 20), (44, 8, 12)]]
    images = torch.zeros(len(specs), 1, 64, 64)
    targets = []
    for i, spec in enumerate(specs):
        boxes = []
        for x, y, side in spec:
            images[i, 0, y : y + side, x : x + side] = 1.0
            boxes.append([x, y, x + side, y + side])
        labels = torch.tensor([1 + (side > 16) for _, _, side in spec])
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": labels})
    return images, targets


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_tiny_overfit_loss_falls(variant: str) -> None:
    torch.manual_seed(0)
    images, targets = _squares()
    model = YOLODetector(num_classes=3, in_channels=1, image_size=64, variant=variant, base_channels=8).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(100):
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert sum(history[-5:]) / 5 < 0.2 * sum(history[:5]) / 5
    model.eval()
    det = model(images[:1])[0]
    best = det["boxes"][det["scores"].argmax()]
    assert torch.allclose(best, targets[0]["boxes"][0], atol=4.0)
