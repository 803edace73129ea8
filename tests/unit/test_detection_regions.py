"""Detection before Faster R-CNN: selective-search proposals, RoI pooling, box-regression targets,
the sliding window, R-CNN's SVM/regressor fit and Fast R-CNN, with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import box_iou, roi_pool

from components.data.digits import to_uint8
from components.data.proposals import compute_proposals, read_proposals, selective_search, write_proposals
from components.data.scenes import generate_scenes
from components.errors import UserError
from components.families.detection.fast_rcnn import RoIPool
from components.families.detection.rcnn import UNIT_BOX_CODER, fit_region_heads
from components.families.detection.regions import label_regions, warp_regions, window_grid
from components.families.detection.task import DetectionDataset, build_detector
from tests.conftest import tiny_params_dict
from tests.detections import check_predictions

NUM_CLASSES, SIZE = 11, 64


def _arch(model: str) -> dict:
    from components.families.detection.task import TRAINING_KEYS

    section = tiny_params_dict()["detection"]["models"][model]
    return {k: v for k, v in section.items() if k not in TRAINING_KEYS}


# --- RoI pooling -----------------------------------------------------------------------------------


def test_roi_pool_of_a_known_map_is_the_hand_computed_maximum_per_bin():
    features = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)  # value = 6 * row + column
    box = torch.tensor([[0.0, 1.0, 3.0, 4.0]])  # columns 0..3, rows 1..4: a 4x4 region, 2x2 bins of 2x2 cells
    pooled = roi_pool(features, [box], output_size=2, spatial_scale=1.0)
    # bin (0, 0): rows 1-2, columns 0-1 -> max at row 2, column 1 = 13; the others 2 or 12 or 14 more
    assert pooled[0, 0].tolist() == [[13.0, 15.0], [25.0, 27.0]]
    adapter = RoIPool(output_size=2, spatial_scale=1.0)
    assert torch.equal(adapter({"0": features}, [box], [(6, 6)]), pooled)


def _roi_max_pool_reference(features: torch.Tensor, box: list[float], size: int, scale: float) -> torch.Tensor:
    """RoI max pooling as the Fast R-CNN paper (and its Caffe layer) defines it: the box rounded to
    the feature grid, split into size x size bins of floor/ceil boundaries, the maximum of each."""
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    out = torch.zeros(features.shape[0], size, size)
    for i in range(size):
        for j in range(size):
            ys = min(max(y1 + math.floor(i * h / size), 0), features.shape[1])
            ye = min(max(y1 + math.ceil((i + 1) * h / size), 0), features.shape[1])
            xs = min(max(x1 + math.floor(j * w / size), 0), features.shape[2])
            xe = min(max(x1 + math.ceil((j + 1) * w / size), 0), features.shape[2])
            if ye > ys and xe > xs:
                out[:, i, j] = features[:, ys:ye, xs:xe].amax(dim=(1, 2))
    return out


def test_torchvision_roi_pool_equals_the_papers_definition_on_random_maps_and_boxes():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 16, 16, generator=generator)
    boxes = torch.rand(20, 4, generator=generator) * 60
    boxes = torch.cat([boxes[:, :2].minimum(boxes[:, 2:]), boxes[:, :2].maximum(boxes[:, 2:])], dim=1)
    pooled = roi_pool(features[None], [boxes], output_size=7, spatial_scale=0.25)
    for box, mine in zip(boxes.tolist(), pooled, strict=True):
        assert torch.equal(mine, _roi_max_pool_reference(features, box, 7, 0.25))


# --- box regression ------------------------------------------------------------------------------


@pytest.mark.parametrize("coder", [UNIT_BOX_CODER, BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))])
def test_box_regression_targets_encode_and_decode_to_the_same_boxes(coder):
    proposals = torch.tensor([[10.0, 12.0, 30.0, 40.0], [0.0, 0.0, 64.0, 64.0], [5.0, 5.0, 9.0, 20.0]])
    boxes = torch.tensor([[12.0, 10.0, 28.0, 44.0], [8.0, 16.0, 40.0, 30.0], [4.0, 6.0, 12.0, 18.0]])
    deltas = coder.encode_single(boxes, proposals)
    assert torch.allclose(coder.decode_single(deltas, proposals), boxes, atol=1e-4)
    # R-CNN's parametrisation (unit weights): dx = (gx - px) / pw, dw = log(gw / pw)
    if coder is UNIT_BOX_CODER:
        assert deltas[0].tolist() == pytest.approx([0.0, (27.0 - 26.0) / 28.0, math.log(16 / 20), math.log(34 / 28)])


# --- proposals -----------------------------------------------------------------------------------


def _scenes(n: int = 120) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` training scenes of the default params: uint8 images (n, H, W, 1) as prepare writes them, and boxes."""
    data = tiny_params_dict()["data"]
    scenes = generate_scenes(
        seed=0, **{**data["scenes"], "num_train": n, "num_val": 1, "num_test": 1},
        val_fraction=data["digits"]["val_fraction"], test_fraction=data["digits"]["test_fraction"], placement_tries=100,
    )["train"]
    images = np.stack([to_uint8(s.image)[..., None] for s in scenes])
    return images, [s.boxes.astype(np.float32) for s in scenes]


def _default_search() -> dict:
    return {k: v for k, v in tiny_params_dict()["data"]["proposals"].items() if k != "datasets"}


@pytest.mark.parametrize("search", [_default_search(), {"strategy": "fast", "upscale": 2}], ids=["default", "fast"])
def test_selective_search_covers_90_percent_of_the_scenes_boxes_at_iou_half(search):
    images, gt_boxes = _scenes()
    proposals, seconds = compute_proposals(images, search, workers=1)
    hits = total = 0
    for gt, boxes in zip(gt_boxes, proposals, strict=True):
        gt = torch.from_numpy(gt)
        iou = box_iou(gt, torch.from_numpy(boxes))
        hits += int((iou.max(dim=1).values >= 0.5).sum())
        total += len(gt)
    recall = hits / total
    print(f"selective search {search}: recall {recall:.3f} of {total} boxes at IoU 0.5, "
          f"{np.mean([len(p) for p in proposals]):.1f} proposals per image, {1000 * seconds:.1f} ms per image")
    assert recall >= 0.90
    for boxes in proposals:  # xyxy inside the image, distinct
        assert (boxes[:, 2:] > boxes[:, :2]).all() and boxes.min() >= 0 and boxes.max() <= SIZE
        assert len(np.unique(boxes, axis=0)) == len(boxes)


def test_selective_search_is_the_same_in_one_process_or_two():
    images, _ = _scenes(8)
    one, _ = compute_proposals(images, _default_search(), workers=1)
    two, _ = compute_proposals(images, _default_search(), workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert np.array_equal(one[0], selective_search(images[0], **_default_search()))


def test_cached_proposals_round_trip_and_a_missing_cache_names_the_path_and_key(tmp_path):
    from tests.unit.test_detection_task import _write_scenes

    _write_scenes(tmp_path)
    (tmp_path / "meta.json").write_text(
        '{"name": "scenes", "task": "dense", "class_names": ["background", "a"], "height": 64, "width": 64, '
        '"channels": 1, "sizes": {"train": 6}}')
    with pytest.raises(UserError, match=r"proposals/train.npz.*data.proposals.datasets"):
        DetectionDataset(tmp_path, "train", proposals=True)
    write_proposals(tmp_path, _default_search(), workers=1)
    boxes, seconds = read_proposals(tmp_path, "train")
    assert len(boxes) == 6 and seconds > 0
    _, target = DetectionDataset(tmp_path, "train", proposals=True)[2]
    assert torch.equal(target["proposals"], torch.from_numpy(boxes[2]))


# --- regions and windows -------------------------------------------------------------------------


def test_window_grid_tiles_the_image_at_each_size_and_aspect_ratio():
    windows = window_grid(64, sizes=[16, 32], aspect_ratios=[1.0, 4.0], stride=16)
    sides = windows[:, 2:] - windows[:, :2]
    assert (windows >= 0).all() and (windows <= 64).all()
    # 16x16: 4x4 positions; 8x32: 7 columns x 3 rows... (64 - 8) / 16 + 1 = 4 by (64 - 32) / 16 + 1 = 3
    assert (sides == torch.tensor([16.0, 16.0])).all(dim=1).sum() == 16
    assert (sides == torch.tensor([8.0, 32.0])).all(dim=1).sum() == 4 * 3
    assert (sides == torch.tensor([32.0, 32.0])).all(dim=1).sum() == 9
    assert (sides == torch.tensor([16.0, 64.0])).all(dim=1).sum() == 4
    with pytest.raises(ValueError, match="no window"):
        window_grid(16, sizes=[32], aspect_ratios=[1.0], stride=4)


def test_regions_are_labelled_foreground_background_or_ignored_by_iou():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    regions = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 14.0], [0.0, 0.0, 10.0, 25.0],
                            [30.0, 30.0, 40.0, 40.0]])  # IoU 1, 0.71, 0.4, 0
    labels, matched = label_regions(regions, gt, torch.tensor([7]), fg_iou=0.5, bg_iou=0.3)
    assert labels.tolist() == [7, 7, -1, 0] and matched.tolist() == [0, 0, 0, 0]


def test_warping_resizes_each_region_to_the_crop_whatever_its_shape():
    image = torch.zeros(1, 1, 64, 64)
    image[0, 0, 10:20, 30:60] = 1.0  # a 30x10 bright bar
    crops = warp_regions(image, [torch.tensor([[30.0, 10.0, 60.0, 20.0], [0.0, 40.0, 8.0, 64.0]])], 16, 0.0)
    assert crops.shape == (2, 1, 16, 16)
    assert crops[0].mean() > 0.95 and crops[1].max() == 0.0  # the bar fills its crop; the empty corner stays empty
    padded = warp_regions(image, [torch.tensor([[30.0, 10.0, 60.0, 20.0]])], 16, 0.25)
    assert padded[0, 0, 8, 8] > 0.95 and padded[0, 0, 0, 0] < 0.05  # context around the bar is dark


# --- the models ----------------------------------------------------------------------------------


def _batch():
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, SIZE, SIZE, generator=generator) for _ in range(2)]
    boxes = [torch.tensor([[4.0, 6.0, 24.0, 30.0], [30.0, 30.0, 52.0, 50.0]]), torch.tensor([[10.0, 10.0, 40.0, 36.0]])]
    targets = [{"boxes": b, "labels": torch.arange(1, len(b) + 1)} for b in boxes]
    proposals = [torch.cat([b + 2.0, torch.tensor([[0.0, 0.0, 16.0, 16.0], [40.0, 2.0, 60.0, 20.0]])]) for b in boxes]
    return images, targets, proposals


@pytest.mark.parametrize("model", ["sliding_window", "rcnn", "fast_rcnn"])
def test_region_detectors_train_and_predict(model):
    torch.manual_seed(0)
    net = build_detector(model, NUM_CLASSES, 1, SIZE, _arch(model))
    images, targets, proposals = _batch()
    inputs = (images,) if model == "sliding_window" else (images, proposals)
    losses = net(*inputs, targets)
    assert "loss_classifier" in losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    net.eval()
    with torch.no_grad():
        check_predictions(net(*inputs), 2, SIZE, NUM_CLASSES)


def test_rcnn_svms_and_regressors_separate_their_training_regions():
    """After the fit every ground-truth box outscores every background proposal under its class's
    SVM (features of a random CNN separate 2 images' few regions), and the regressors move the
    near-miss proposals towards their boxes."""
    torch.manual_seed(0)
    net = build_detector("rcnn", NUM_CLASSES, 1, SIZE, _arch("rcnn"))
    images, targets, proposals = _batch()
    batches = [(images, [{**t, "proposals": p} for t, p in zip(targets, proposals, strict=True)])]
    assert not net.fitted
    stats = fit_region_heads(net, batches, svm_c=10.0, svm_neg_iou=0.3, initial_negatives=2, mining_rounds=2,
                             regression_iou=0.6, ridge_alpha=1e-3, seed=0)
    assert bool(net.fitted) and stats["box_regression_samples"] >= 1
    net.eval()
    with torch.no_grad():
        regions = [torch.cat([t["boxes"], p]) for t, p in zip(targets, proposals, strict=True)]
        scores, boxes = net.score(torch.stack(images), regions)
    offset = 0
    for target, region in zip(targets, regions, strict=True):
        for i, label in enumerate(target["labels"].tolist()):
            background = scores[offset + len(target["boxes"]) + 2: offset + len(region), label - 1]
            assert scores[offset + i, label - 1] > background.max()
            shifted = offset + len(target["boxes"]) + i  # the proposal 2 px off the box
            before = box_iou(region[len(target["boxes"]) + i][None], target["boxes"][i][None]).item()
            after = box_iou(boxes[shifted, label - 1][None], target["boxes"][i][None]).item()
            assert after > before
        offset += len(region)


def test_proposal_models_refuse_augmentation_that_would_leave_the_proposals_behind():
    from components.config import parse_params

    params = tiny_params_dict()
    params["detection"]["models"]["fast_rcnn"]["augment"] = "affine"
    with pytest.raises(UserError, match=r"detection.models.fast_rcnn.augment"):
        parse_params(params)
