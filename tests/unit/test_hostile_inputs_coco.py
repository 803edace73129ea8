"""COCO crowd regions (``iscrowd=1``), ignored exactly as COCOeval ignores them (issue 21).

COCOeval: crowd ground truth is never a target (it counts for no recall), a detection matched to a
crowd region is neither a true nor a false positive, and the overlap with a crowd region is the
intersection over the *detection's* area. Each case is scored by our metric and by pycocotools'
and faster-coco-eval's COCOeval on the same data.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from components.config import parse_params
from components.data.coco import load_coco_instances
from components.data.schema import DENSE, crowd_flags, dense_columns, dense_row, read_meta, read_split, write_split
from components.families.detection.task import DetectionDataset, DetectionTask
from components.metrics.detection import DetectionEvaluator, voc_pr_curves
from tests.coco_masks import uncompressed_rle
from tests.conftest import tiny_params_dict

CLASSES = ["background", "person", "car"]
PERSON, CAR = 1, 2
SIZE = 20
NORMAL = [2, 2, 8, 8]  # x0, y0, x1, y1
CROWD = [10, 10, 18, 18]


# --- COCOeval on the same data ----------------------------------------------------------------------


def _xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def _coco_gt(targets: list[dict]) -> dict:
    """A COCO instances dict of torchvision targets (image id = position, category id = label)."""
    annotations = []
    for image_id, t in enumerate(targets):
        crowd = t.get("iscrowd", torch.zeros_like(t["labels"])).tolist()
        for box, label, flag in zip(t["boxes"].tolist(), t["labels"].tolist(), crowd, strict=True):
            x, y, w, h = _xywh(box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": label, "bbox": [x, y, w, h],
                "area": w * h, "iscrowd": flag,
            })
    return {
        "images": [{"id": i, "height": SIZE * 4, "width": SIZE * 4} for i in range(len(targets))],
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for i, n in enumerate(CLASSES) if i],
    }


def _coco_dets(preds: list[dict]) -> list[dict]:
    return [
        {"image_id": image_id, "category_id": label, "bbox": _xywh(box), "score": score}
        for image_id, p in enumerate(preds)
        for box, label, score in zip(p["boxes"].tolist(), p["labels"].tolist(), p["scores"].tolist(), strict=True)
    ]


def cocoeval_stats(gt: dict, dets: list[dict], library: str) -> np.ndarray:
    """COCOeval's 12 bbox summary numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ...)."""
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats)


LIBRARIES = ("pycocotools", "faster_coco_eval")


def _target(boxes, labels, iscrowd) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "iscrowd": torch.tensor(iscrowd, dtype=torch.int64),
    }


def _pred(boxes, labels, scores) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "scores": torch.tensor(scores, dtype=torch.float32),
    }


def _ours(preds, targets) -> dict[str, float]:
    evaluator = DetectionEvaluator(CLASSES)
    evaluator.update(preds, targets)
    return evaluator.compute()


# --- a tiny COCO folder: every image holds one person and one crowd of people ------------------------


def _block(x0, y0, x1, y1) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _instances(names: list[str]) -> dict:
    images, annotations = [], []
    for image_id, name in enumerate(names, start=1):
        images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
        x0, y0, x1, y1 = NORMAL
        annotations.append({
            "id": len(annotations) + 1, "image_id": image_id, "category_id": 5, "bbox": _xywh(NORMAL),
            "area": 36.0, "iscrowd": 0, "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
        })
        annotations.append({
            "id": len(annotations) + 1, "image_id": image_id, "category_id": 5, "bbox": _xywh(CROWD),
            "area": 64.0, "iscrowd": 1, "segmentation": uncompressed_rle(_block(*CROWD)),
        })
    return {"images": images, "annotations": annotations, "categories": [{"id": 5, "name": "person"}]}


@pytest.fixture
def prepared(tmp_path):
    """The tiny COCO folder prepared by the loader: one image in each of train, val and test."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split, names in (("train", ["a.png", "b.png"]), ("test", ["c.png"])):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(_instances(names)))
        (root / split).mkdir()
        for fill, name in enumerate(names):
            Image.new("RGB", (SIZE, SIZE), (50 * fill,) * 3).save(root / split / name)
    out = tmp_path / "out"
    load_coco_instances(root, out, train_set="train", test_set="test", image_size=SIZE, val_fraction=0.5, seed=0)
    return out


def _task(directory, model="faster_rcnn", augment="none") -> DetectionTask:
    params = parse_params(tiny_params_dict())
    config = getattr(params.detection.models, model).model_copy(update={"augment": augment})
    return DetectionTask(model, config, params.detection.trainer, directory, read_meta(directory))


# --- (1) the issue's known answer ----------------------------------------------------------------------


def test_issue_case_one_normal_one_crowd_one_detection_each_scores_one(prepared):
    """One person and one crowd, a detection on each (the crowd's ranked first): COCOeval says 1.0.
    Before issue 21 the loader dropped the crowd, so its detection was a false positive: 0.5."""
    val = _task(prepared).datasets()["val"]
    assert len(val) == 1
    images, targets = zip(*[val[0]], strict=True)
    preds = [_pred([CROWD, NORMAL], [PERSON, PERSON], [0.9, 0.8])]
    ours = _ours(preds, list(targets))

    gt = json.loads((prepared / "instances_val.json").read_text())
    theirs = {lib: cocoeval_stats(gt, _coco_dets(preds), lib) for lib in LIBRARIES}
    assert theirs["pycocotools"][0] == pytest.approx(1.0)
    assert theirs["faster_coco_eval"][0] == pytest.approx(1.0)
    assert ours["map"] == pytest.approx(1.0)
    assert ours["map50"] == pytest.approx(1.0) and ours["mar100"] == pytest.approx(1.0)
    assert ours["voc_map"] == pytest.approx(1.0)


def test_issue_case_with_the_targets_given_directly():
    targets = [_target([NORMAL, CROWD], [PERSON, PERSON], [0, 1])]
    preds = [_pred([CROWD, NORMAL], [PERSON, PERSON], [0.9, 0.8])]
    ours = _ours(preds, targets)
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0]) == pytest.approx(1.0)
        assert ours["mar100"] == pytest.approx(theirs[8]) == pytest.approx(1.0)
    # The same boxes without the crowd flag: two objects, both found.
    plain = [{k: v for k, v in targets[0].items() if k != "iscrowd"}]
    assert _ours(preds, plain)["map"] == pytest.approx(1.0)


# --- (2) a detection only on the crowd is no false positive ---------------------------------------------


def test_a_detection_only_on_a_crowd_is_no_false_positive():
    """Image 0 holds only a large crowd; its one detection (ranked first) is a small box inside it
    (IoU 0.06, but all of the detection lies in the crowd: COCO's overlap with a crowd is the
    intersection over the detection's area). Image 1: one person, found. AP 1.0, not 0.5."""
    targets = [_target([[0, 0, 40, 40]], [PERSON], [1]), _target([NORMAL], [PERSON], [0])]
    preds = [_pred([[5, 5, 15, 15]], [PERSON], [0.9]), _pred([NORMAL], [PERSON], [0.8])]
    ours = _ours(preds, targets)
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0]) == pytest.approx(1.0)
    assert ours["voc_map"] == pytest.approx(1.0)
    # A detection that is mostly outside the crowd (intersection over its area 0.25) stays a false positive.
    preds[0] = _pred([[35, 35, 45, 45]], [PERSON], [0.9])
    ours = _ours(preds, targets)
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0]) == pytest.approx(0.5)
    assert ours["voc_map"] == pytest.approx(0.5)


def test_a_crowd_of_another_class_does_not_hide_a_false_positive():
    targets = [_target([[0, 0, 40, 40], NORMAL], [CAR, PERSON], [1, 0])]
    preds = [_pred([[5, 5, 15, 15], NORMAL], [PERSON, PERSON], [0.9, 0.8])]
    ours = _ours(preds, targets)
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0], abs=1e-9)
    assert ours["ap/person"] == pytest.approx(0.5) and ours["voc_ap/person"] == pytest.approx(0.5)
    assert "ap/car" not in ours and "voc_ap/car" not in ours  # a crowd is no object to find


# --- (3) an undetected crowd costs no recall ------------------------------------------------------------


def test_a_crowd_without_a_detection_leaves_recall_unaffected():
    targets = [_target([NORMAL, CROWD], [PERSON, PERSON], [0, 1])]
    preds = [_pred([NORMAL], [PERSON], [0.8])]
    ours = _ours(preds, targets)
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0]) == pytest.approx(1.0)
        assert ours["mar100"] == pytest.approx(theirs[8]) == pytest.approx(1.0)
    assert ours["voc_map"] == pytest.approx(1.0)
    curve = voc_pr_curves(preds, targets, len(CLASSES))[PERSON]
    assert curve.recall.tolist() == [1.0]


# --- (4) the loader keeps crowds; training does not see them ------------------------------------------


def test_loader_keeps_crowds_and_training_targets_leave_them_out(prepared):
    for split in ("train", "val", "test"):
        table = read_split(prepared, split)
        assert table.column("boxes").to_pylist() == [[NORMAL, CROWD]]
        assert table.column("labels").to_pylist() == [[PERSON, PERSON]]
        assert table.column("iscrowd").to_pylist() == [[0, 1]]
        masks = [np.frombuffer(m, np.uint8).reshape(SIZE, SIZE) for m in table.column("instance_masks")[0].as_py()]
        np.testing.assert_array_equal(masks[1], _block(*CROWD))

    for model, augment in (("faster_rcnn", "none"), ("faster_rcnn", "affine"), ("mask_rcnn", "none")):
        datasets = _task(prepared, model, augment).datasets()
        _, train = datasets["train"][0]
        assert "iscrowd" not in train
        assert train["labels"].tolist() == [PERSON]
        if augment == "none":
            assert train["boxes"].tolist() == [NORMAL]
        if model == "mask_rcnn":
            assert train["masks"].shape == (1, SIZE, SIZE)
        _, val = datasets["val"][0]
        assert val["boxes"].tolist() == [NORMAL, CROWD]
        assert val["iscrowd"].tolist() == [0, 1]
        if model == "mask_rcnn":
            assert val["masks"].shape == (2, SIZE, SIZE)


def test_crowd_masks_are_ignored_in_mask_ap_too(prepared):
    val = _task(prepared, "mask_rcnn").datasets()["val"]
    _, target = val[0]
    preds = [{**_pred([CROWD, NORMAL], [PERSON, PERSON], [0.9, 0.8]), "masks": target["masks"][[1, 0]].clone()}]
    evaluator = DetectionEvaluator(CLASSES, masks=True)
    evaluator.update(preds, [target])
    result = evaluator.compute()
    assert result["map"] == pytest.approx(1.0) and result["mask_map"] == pytest.approx(1.0)


# --- (5) VOC AP ignores crowds as it ignores VOC's "difficult" objects ----------------------------------


def test_voc_ap_ignores_crowds():
    targets = [_target([NORMAL, CROWD], [PERSON, PERSON], [0, 1])]
    preds = [_pred([CROWD, NORMAL], [PERSON, PERSON], [0.9, 0.8])]
    curve = voc_pr_curves(preds, targets, len(CLASSES))[PERSON]
    assert curve.ap == pytest.approx(1.0)
    assert curve.recall.tolist() == [1.0] and curve.precision.tolist() == [1.0]  # the crowd's detection: no point
    # Without the flag the crowd is an object: 2 of 2 found.
    plain = [{k: v for k, v in targets[0].items() if k != "iscrowd"}]
    assert voc_pr_curves(preds, plain, len(CLASSES))[PERSON].recall.tolist() == [0.5, 1.0]
    # A second detection of the person that lies inside the crowd is ignored, not a duplicate.
    crowd_around = [_target([NORMAL, [0, 0, 20, 20]], [PERSON, PERSON], [0, 1])]
    twice = [_pred([NORMAL, [2.5, 2, 8.5, 8]], [PERSON, PERSON], [0.9, 0.8])]
    assert voc_pr_curves(twice, crowd_around, len(CLASSES))[PERSON].precision.tolist() == [1.0]
    # ... while without a crowd around it the duplicate is a false positive, as before.
    dup = voc_pr_curves(twice, [_target([NORMAL], [PERSON], [0])], len(CLASSES))[PERSON]
    assert dup.precision.tolist() == [1.0, 0.5]


def test_a_table_without_the_column_has_no_crowds(tmp_path):
    """The embedded scenes write plain ``DENSE`` (no ``iscrowd`` column): every box is an object."""
    mask = _block(*NORMAL)
    row = dense_row(0, np.zeros((SIZE, SIZE, 1), np.uint8), mask, [NORMAL], [PERSON], [mask], [])
    write_split(dense_columns([row]), DENSE, tmp_path / "val.parquet")
    table = read_split(tmp_path, "val")
    assert "iscrowd" not in table.column_names and crowd_flags(table) == [[0]]
    _, target = DetectionDataset(tmp_path, "val", masks=True, crowds=True)[0]
    assert target["boxes"].tolist() == [NORMAL] and target["iscrowd"].tolist() == [0]
    _, target = DetectionDataset(tmp_path, "val", masks=True)[0]
    assert target["boxes"].tolist() == [NORMAL] and "iscrowd" not in target


def test_random_scenes_with_crowds_agree_with_cocoeval():
    """Jittered, duplicated and stray detections over images with objects and crowds of two classes."""
    rng = np.random.default_rng(21)
    targets, preds = [], []
    for _ in range(30):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 30, (n, 2))], axis=1)
        labels = rng.integers(1, 3, n)
        targets.append(_target(boxes.tolist(), labels.tolist(), (rng.random(n) < 0.3).astype(int).tolist()))
        det = []  # (box, label): 0-2 jittered copies of each box (a crowd's too), then 0-2 strays
        for box, label in zip(boxes, labels, strict=True):
            det += [(box + rng.normal(0, 1.5, 4), label) for _ in range(int(rng.integers(0, 3)))]
        for p in rng.uniform(0, 60, (int(rng.integers(0, 3)), 2)):
            det.append((np.concatenate([p, p + rng.uniform(3, 10, 2)]), int(rng.integers(1, 3))))
        m = len(det)
        preds.append(_pred([d.tolist() for d, _ in det], [y for _, y in det], rng.random(m).tolist()))
    ours = _ours(preds, targets)
    assert 0.05 < ours["map"] < 0.95
    plain = [{k: v for k, v in t.items() if k != "iscrowd"} for t in targets]
    assert ours["map"] != pytest.approx(_ours(preds, plain)["map"], abs=1e-3)  # the crowds matter here
    for lib in LIBRARIES:
        theirs = cocoeval_stats(_coco_gt(targets), _coco_dets(preds), lib)
        assert ours["map"] == pytest.approx(theirs[0], abs=1e-6)
        assert ours["map50"] == pytest.approx(theirs[1], abs=1e-6)
        assert ours["mar100"] == pytest.approx(theirs[8], abs=1e-6)
