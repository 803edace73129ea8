"""The DETR-style detector: Hungarian matching, set loss, the torchvision-style interface, a tiny overfit."""

from __future__ import annotations

import itertools

import pytest
import torch

from components.families.detection.detr import DETRDetector, hungarian_match, match_costs

NUM_CLASSES = 4  # background + 3
SMALL = {"base_channels": 8, "d_model": 32, "nhead": 2, "dim_feedforward": 64, "num_encoder_layers": 1}


def small_model(**overrides) -> DETRDetector:
    torch.manual_seed(0)
    return DETRDetector(NUM_CLASSES, in_channels=1, image_size=32, **{**SMALL, "num_decoder_layers": 2, **overrides})


def scenes(n: int = 2, size: int = 32) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """n images with bright rectangles (class 1) and dimmer ones (class 2); the last has a third box."""
    images, targets = torch.zeros(n, 1, size, size), []
    for i in range(n):
        boxes = [[2.0 + i, 3.0, 12.0 + i, 15.0], [16.0, 14.0 + i, 30.0, 28.0]] + (
            [[4.0, 20.0, 10.0, 30.0]] * (i == n - 1)
        )
        labels = [1, 2, 3][: len(boxes)]
        for (x0, y0, x1, y1), label in zip(boxes, labels, strict=True):
            images[i, 0, int(y0) : int(y1), int(x0) : int(x1)] = 1.0 / label
        targets.append({"boxes": torch.tensor(boxes), "labels": torch.tensor(labels)})
    return images, targets


def total_cost(cost: torch.Tensor, rows, cols) -> float:
    return float(sum(cost[r, c] for r, c in zip(rows, cols, strict=True)))


def brute_force_min(cost: torch.Tensor) -> float:
    """Minimum total cost over every injective target -> query assignment."""
    q, k = cost.shape
    return min(total_cost(cost, rows, range(k)) for rows in itertools.permutations(range(q), k))


def test_hungarian_beats_greedy_on_a_hand_example():
    # p(target class) per query (rows) and target (columns); the rest of each row is "no object" (class 0)
    probs = torch.tensor([[0.5, 0.45, 0.0], [0.45, 0.0, 0.05], [0.0, 0.05, 0.4]])
    full = torch.cat((1 - probs.sum(1, keepdim=True), probs), dim=1)  # (3 queries, 4 classes)
    outputs = {"logits": full.clamp_min(1e-12).log()[None], "boxes": torch.full((1, 3, 4), 0.5)}
    targets = [{"labels": torch.tensor([1, 2, 3]), "boxes": torch.full((3, 4), 0.5)}]
    weights = {"cost_class": 1.0, "cost_bbox": 0.0, "cost_giou": 0.0}
    cost = match_costs(outputs, targets, **weights)[0]
    torch.testing.assert_close(cost, -probs)
    greedy, taken = [], set()  # row by row, the cheapest column still free
    for row in range(3):
        col = min((c for c in range(3) if c not in taken), key=lambda c: cost[row, c].item())
        greedy.append(col)
        taken.add(col)
    (rows, cols) = hungarian_match(outputs, targets, **weights)[0]
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    assert total_cost(cost, rows, cols) == pytest.approx(brute_force_min(cost)) == pytest.approx(-1.3)
    assert total_cost(cost, range(3), greedy) > brute_force_min(cost) + 0.5  # greedy is far from optimal here


def test_hungarian_is_optimal_with_all_cost_terms_and_fewer_targets_than_queries():
    torch.manual_seed(1)
    outputs = {"logits": torch.randn(2, 6, NUM_CLASSES), "boxes": torch.rand(2, 6, 4) * 0.5 + 0.25}
    targets = [
        {"labels": torch.tensor([1, 3, 2]), "boxes": torch.rand(3, 4) * 0.5 + 0.25},
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3]])},
    ]
    costs = match_costs(outputs, targets)
    for (rows, cols), cost, target in zip(hungarian_match(outputs, targets), costs, targets, strict=True):
        assert cost.shape == (6, len(target["labels"]))
        assert rows.dtype == cols.dtype == torch.int64
        assert len(rows) == len(target["labels"]) and len(set(rows.tolist())) == len(rows)
        assert sorted(cols.tolist()) == list(range(len(target["labels"])))
        assert total_cost(cost, rows, cols) == pytest.approx(brute_force_min(cost), abs=1e-5)


@pytest.mark.parametrize("two_stage", [True, False])
def test_train_mode_returns_finite_weighted_losses_with_gradients(two_stage):
    model = small_model(two_stage=two_stage).train()
    images, targets = scenes()
    losses = model(list(images), targets)
    expected = {"loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_bbox_0", "loss_giou_0"}
    assert expected <= set(losses) and (("loss_ce_enc" in losses) == two_stage)
    for value in losses.values():
        assert value.dim() == 0 and torch.isfinite(value)
    sum(losses.values()).backward()
    for name in ("backbone.0.0.0.weight", "queries.weight", "class_head.weight", "box_head.0.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_image_without_targets_only_learns_no_object():
    model = small_model().train()
    images = torch.rand(1, 1, 32, 32)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    outputs = {"logits": torch.randn(1, 5, NUM_CLASSES), "boxes": torch.rand(1, 5, 4)}
    ((rows, cols),) = hungarian_match(outputs, empty)
    assert len(rows) == len(cols) == 0
    losses = model(images, empty)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_ce"] > 0 and losses["loss_bbox"] == 0 and losses["loss_giou"] == 0
    sum(losses.values()).backward()
    assert model.class_head.weight.grad.abs().sum() > 0


def test_mixed_batch_with_an_empty_image():
    model = small_model().train()
    images, targets = scenes()
    targets[0] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    assert all(torch.isfinite(v) for v in model(images, targets).values())


@pytest.mark.parametrize("two_stage", [True, False])
def test_eval_output_format_and_boxes_inside_the_image(two_stage):
    model = small_model(two_stage=two_stage, detections_per_img=5).eval()
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        for batch in (images, list(images)):
            detections = model(batch)
            assert len(detections) == 3
            for det in detections:
                assert set(det) == {"boxes", "scores", "labels"}
                assert det["boxes"].shape == (5, 4) and det["scores"].shape == (5,) and det["labels"].shape == (5,)
                assert det["labels"].dtype == torch.int64
                assert det["labels"].min() >= 1 and det["labels"].max() <= NUM_CLASSES - 1
                assert (det["scores"] >= 0).all() and (det["scores"] <= 1).all()
                assert (det["scores"][:-1] >= det["scores"][1:]).all()  # sorted by score
                assert det["boxes"].min() >= 0 and det["boxes"].max() <= 32
                assert (det["boxes"][:, 2:] >= det["boxes"][:, :2]).all()


def test_other_image_sizes_work():
    model = small_model().eval()
    with torch.no_grad():
        (det,) = model(torch.rand(1, 1, 48, 64))
    assert det["boxes"][:, 0::2].max() <= 64 and det["boxes"][:, 1::2].max() <= 48


def test_overfits_two_images():
    torch.set_num_threads(1)
    model = small_model().train()
    images, targets = scenes()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(150):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append(loss.item())
    assert sum(history[-10:]) / 10 < 0.25 * sum(history[:10]) / 10


def test_two_stage_rejects_more_queries_than_encoder_tokens():
    with pytest.raises(ValueError, match="num_queries"):
        DETRDetector(NUM_CLASSES, image_size=16, num_queries=12)  # 2x2 grid = 4 tokens
    assert DETRDetector(NUM_CLASSES, image_size=16, num_queries=12, two_stage=False).detections_per_img == 12
