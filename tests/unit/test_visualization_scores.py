"""Scores for saliency maps and units: deletion/insertion (Petsiuk et al. 2018), the pointing game
(Zhang et al. 2016) and network dissection (Bau et al. 2017), on hand examples with known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from components.families.visualization import scores

H = W = 8


class Logistic(nn.Module):
    """Two logits (0, w.x + b): the probability of class 1 is sigmoid(w.x + b)."""

    def __init__(self, w: torch.Tensor, b: float = 0.0) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(score), score], dim=1)


class Recorder(nn.Module):
    """Remembers every image it sees, answers uniform logits."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(x.shape[0], 2)


def linear_problem(n: int = 16) -> tuple[Logistic, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    magnitudes = torch.logspace(-1, 0.5, H * W)[torch.randperm(H * W, generator=g)]  # 0.1 .. 3.2, shuffled
    w = torch.randn(H * W, generator=g) * magnitudes
    x = torch.rand(n, 1, H, W, generator=g)
    return Logistic(w), x, torch.ones(n, dtype=torch.long)


# ---------------------------------------------------------------------------------------------- auc


def test_auc_known_answers() -> None:
    assert torch.allclose(scores.auc(torch.full((3, 11), 0.7)), torch.full((3,), 0.7))
    assert torch.allclose(scores.auc(torch.linspace(0, 1, 17)[None]), torch.tensor([0.5]))
    # Trapezoids on [0, 1/2, 1]: (1 + 0)/2 * 1/2 + (0 + 0.5)/2 * 1/2 = 0.375.
    assert torch.allclose(scores.auc(torch.tensor([[1.0, 0.0, 0.5]])), torch.tensor([0.375]))
    with pytest.raises(ValueError):
        scores.auc(torch.ones(2, 1))


# ---------------------------------------------------------------------------------------------- causal curve


def test_causal_curve_switches_one_pixel_per_step_in_saliency_order() -> None:
    finish = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    start = torch.zeros_like(finish)
    saliency = torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])  # order: pixel 1, then the tie 2 before 3, then 0
    model = Recorder()
    curve = scores.causal_curve(model, finish, torch.tensor([0]), saliency, start, finish, steps=4, batch_size=3)
    assert curve.shape == (1, 5) and torch.allclose(curve, torch.full((1, 5), 0.5))
    assert [len(x) for x in model.seen] == [3, 2]  # 5 images in chunks of 3
    seen = torch.cat(model.seen).view(5, 4)
    expected = torch.tensor([[0, 0, 0, 0], [0, 2, 0, 0], [0, 2, 3, 0], [0, 2, 3, 4], [1, 2, 3, 4]], dtype=torch.float)
    assert torch.equal(seen, expected)


def test_causal_curve_uneven_steps_switch_ceil_pixels_per_step() -> None:
    finish = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    saliency = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    model = Recorder()
    scores.causal_curve(model, finish, torch.tensor([0]), saliency, torch.zeros_like(finish), finish, 3, 10)
    seen = torch.cat(model.seen).view(4, 4)  # ceil(4 / 3) = 2 pixels a step: 0, 2, 4, 4 switched
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 0, 0], [1, 2, 3, 4], [1, 2, 3, 4]], dtype=torch.float)
    assert torch.equal(seen, expected)


def test_causal_curve_ends_are_the_probabilities_of_start_and_finish() -> None:
    model, x, targets = linear_problem(5)
    start = scores.blur(x, 1.0)
    saliency = scores.random_saliency((5, H, W), torch.Generator().manual_seed(1))
    curve = scores.causal_curve(model, x, targets, saliency, start, x, steps=7, batch_size=4)
    assert curve.shape == (5, 8)
    assert torch.allclose(curve[:, 0], torch.softmax(model(start), 1)[:, 1], atol=1e-6)
    assert torch.allclose(curve[:, -1], torch.softmax(model(x), 1)[:, 1], atol=1e-6)
    # Deletion and insertion are causal_curve's AUC with their default start and finish.
    assert torch.allclose(scores.insertion_auc(model, x, targets, saliency, 7, 4), scores.auc(curve))
    deletion = scores.causal_curve(model, x, targets, saliency, x, torch.zeros_like(x), 7, 4)
    assert torch.allclose(scores.deletion_auc(model, x, targets, saliency, 7, 4), scores.auc(deletion))


def test_oracle_saliency_beats_random_on_a_linear_model() -> None:
    """On a linear score, switching pixel i from start s to finish f changes the score by w_i (f_i - s_i): that
    contribution is the ideal order. For deletion to black it is w_i x_i (the pixel's contribution to the target's
    score); for insertion from the blur b it is w_i (x_i - b_i) (w_i x_i alone is barely better than random there:
    the blur already holds about half of each pixel's value)."""
    model, x, targets = linear_problem(16)
    w = model.w.view(1, H, W)
    black = torch.zeros_like(x)
    deletion = scores.deletion_auc(model, x, targets, w * x[:, 0], steps=16, batch_size=64)
    insertion_blur = scores.insertion_auc(model, x, targets, w * (x - scores.blur(x, 1.0))[:, 0], 16, 64)
    insertion_black = scores.insertion_auc(model, x, targets, w * x[:, 0], 16, 64, substrate=black)
    random_deletion, random_insertion_blur, random_insertion_black = [], [], []
    for seed in range(5):
        saliency = scores.random_saliency((16, H, W), torch.Generator().manual_seed(seed))
        random_deletion.append(scores.deletion_auc(model, x, targets, saliency, 16, 64))
        random_insertion_blur.append(scores.insertion_auc(model, x, targets, saliency, 16, 64))
        random_insertion_black.append(scores.insertion_auc(model, x, targets, saliency, 16, 64, substrate=black))
    random_deletion_mean = torch.stack(random_deletion).mean(0)
    random_insertion_blur_mean = torch.stack(random_insertion_blur).mean(0)
    random_insertion_black_mean = torch.stack(random_insertion_black).mean(0)
    assert deletion.mean() < random_deletion_mean.mean() - 0.2  # about 0.03 against 0.47
    assert insertion_blur.mean() > random_insertion_blur_mean.mean() + 0.2  # about 0.96 against 0.65
    assert insertion_black.mean() > random_insertion_black_mean.mean() + 0.2  # about 0.97 against 0.62
    assert (deletion < random_deletion_mean).all()
    assert (insertion_blur > random_insertion_blur_mean).all() and (insertion_black > random_insertion_black_mean).all()


def test_baseline_saliencies() -> None:
    images = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(scores.intensity_saliency(images), images[:, 0] + images[:, 1] + images[:, 2])
    a = scores.random_saliency((2, 4, 5), torch.Generator().manual_seed(3))
    b = scores.random_saliency((2, 4, 5), torch.Generator().manual_seed(3))
    assert a.shape == (2, 4, 5) and torch.equal(a, b) and 0 <= a.min() and a.max() < 1


# ---------------------------------------------------------------------------------------------- blur


def test_blur_preserves_constants_and_interior_sums() -> None:
    constant = torch.full((2, 3, 5, 6), 0.3)
    assert torch.allclose(scores.blur(constant, 2.0), constant, atol=1e-6)  # radius 6 > the image: repeated reflection
    image = torch.zeros(1, 1, 20, 20)
    image[0, 0, 7:13, 6:14] = torch.rand(6, 8, generator=torch.Generator().manual_seed(0))
    blurred = scores.blur(image, 1.0)  # radius 3: the mass stays off the border
    assert torch.allclose(blurred.sum(), image.sum(), rtol=1e-5)
    assert blurred.max() < image.max() and (blurred[0, 0, 4:16, 3:17] > 0).all()
    assert torch.equal(scores.blur(image, 0.0), image)


def test_blur_matches_scipy_mirror_gaussian() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    images = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for sigma in (1.0, 2.0):  # scipy's radius int(3 sigma + 0.5) equals ceil(3 sigma) here
        expected = ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=3.0)
        assert torch.allclose(scores.blur(images, sigma), torch.from_numpy(expected), atol=1e-10)


# ---------------------------------------------------------------------------------------------- pointing game


def test_pointing_hits_and_tolerance() -> None:
    masks = torch.zeros(3, 5, 5, dtype=torch.bool)
    masks[:, 1:3, 1:3] = True
    saliency = torch.zeros(3, 5, 5)
    saliency[0, 2, 2] = 1.0  # inside
    saliency[1, 2, 3] = 1.0  # right next to the mask
    saliency[2, 4, 4] = 1.0  # two pixels away (diagonally)
    assert pointing_list(saliency, masks, 0) == [True, False, False]
    assert pointing_list(saliency, masks, 1) == [True, True, False]
    assert pointing_list(saliency, masks, 2) == [True, True, True]
    # Ties: the first maximum in flattened order counts.
    tie = torch.zeros(1, 5, 5)
    tie[0, 0, 0] = tie[0, 1, 1] = 1.0
    assert pointing_list(tie, masks[:1], 0) == [False]
    tie[0, 0, 0] = 0.5
    assert pointing_list(tie, masks[:1], 0) == [True]


def pointing_list(saliency: torch.Tensor, masks: torch.Tensor, tolerance: int) -> list[bool]:
    hits = scores.pointing_hits(saliency, masks, tolerance)
    assert hits.dtype == torch.bool
    return hits.tolist()


def test_pointing_chance_is_the_dilated_area_fraction() -> None:
    masks = torch.zeros(2, 5, 5, dtype=torch.bool)
    masks[0, 1:3, 1:3] = True
    masks[1, 0, 0] = True
    assert torch.allclose(scores.pointing_chance(masks), torch.tensor([4 / 25, 1 / 25]))
    assert torch.allclose(scores.pointing_chance(masks, tolerance=1), torch.tensor([16 / 25, 4 / 25]))


# ---------------------------------------------------------------------------------------------- dissection


def box_masks(n: int, size: int, box: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i, (r, c) in enumerate(torch.randint(0, size - box + 1, (n, 2), generator=g).tolist()):
        masks[i, r:r + box, c:c + box] = True
    return masks


def test_dissection_finds_the_exact_unit_and_scores_noise_near_chance() -> None:
    n, size = 64, 16
    box = box_masks(n, size, 5, seed=0)  # area fraction 25/256
    concepts = torch.stack([box, ~box], dim=1)  # two disjoint concepts
    q = float(box.float().mean())
    noise = torch.rand(n, size, size, generator=torch.Generator().manual_seed(1))
    activations = torch.stack([box.float(), noise], dim=1)
    result = scores.dissect(activations, concepts, quantile=q)
    # Unit 0 is 1 on the box, 0 elsewhere: the linear-interpolated top-q level lies strictly between 0 and 1.
    assert 0 < result.thresholds[0] < 1
    assert result.iou[0].tolist() == [1.0, 0.0]
    assert result.best_concept[0] == 0 and result.best_iou[0] == 1.0
    # Unit 1 fires on a random q of the pixels: IoU with a concept of area a is about qa / (q + a - qa).
    for concept, a in ((0, q), (1, 1 - q)):
        chance = q * a / (q + a - q * a)
        assert abs(float(result.iou[1, concept]) - chance) < 0.02
    assert result.best_concept[1] == 1 and result.best_iou[1] < 0.15
    assert result.iou.shape == (2, 2) and result.thresholds.shape == (2,)
    assert [k for k, _, _ in result.detectors(0.5)] == [0] and result.count(0.5) == 1


def brute_force_iou(activations: torch.Tensor, concepts: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    up = torch.nn.functional.interpolate(activations, size=concepts.shape[-2:], mode="bilinear", align_corners=False)
    iou = torch.zeros(activations.shape[1], concepts.shape[1], dtype=torch.float64)
    for k in range(activations.shape[1]):
        unit = up[:, k] > thresholds[k]
        for c in range(concepts.shape[1]):
            union = (unit | concepts[:, c]).sum()
            iou[k, c] = (unit & concepts[:, c]).sum() / union if union else 0.0
    return iou


def test_dissection_upsampled_chunked_equals_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    activations = torch.randn(10, 3, 4, 4, generator=g)
    concepts = torch.rand(10, 4, 16, 16, generator=g) < torch.tensor([0.02, 0.1, 0.3, 0.6]).view(1, 4, 1, 1)
    concepts[:, 0] = False  # an absent concept: IoU 0, not nan
    quantile = 0.05
    whole = scores.dissect(activations, concepts, quantile=quantile, chunk_size=10)
    per_unit = activations.transpose(0, 1).reshape(3, -1)
    # The threshold is taken on the low-resolution activations: a fraction `quantile` of them lie above it.
    assert torch.allclose(whole.thresholds, torch.quantile(per_unit.double(), 1 - quantile, dim=1))
    above = (per_unit > whole.thresholds[:, None].float()).float().mean(1)
    assert torch.allclose(above, torch.full((3,), quantile), atol=1 / per_unit.shape[1])
    assert torch.allclose(whole.iou, brute_force_iou(activations, concepts, whole.thresholds.float()), atol=1e-12)
    assert (whole.iou[:, 0] == 0).all()
    for chunk in (1, 3, None):
        assert torch.equal(scores.dissect(activations, concepts, quantile=quantile, chunk_size=chunk).iou, whole.iou)


def test_detectors_and_count_respect_min_iou() -> None:
    iou = torch.tensor([[0.5, 0.1], [0.03, 0.02], [0.2, 0.7], [0.05, 0.04]], dtype=torch.float64)
    best_iou, best_concept = iou.max(1)
    result = scores.DissectionResult(iou=iou, thresholds=torch.zeros(4), best_concept=best_concept, best_iou=best_iou)
    assert result.detectors() == [(2, 1, 0.7), (0, 0, 0.5), (3, 0, 0.05)]
    assert result.count() == 3
    assert result.count(0.5) == 1 and result.detectors(0.5) == [(2, 1, 0.7)]  # strictly above min_iou
    assert result.count(0.8) == 0 and result.detectors(0.8) == []
