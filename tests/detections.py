"""What every detector's eval-mode output must look like (shared by the detection tests)."""

from __future__ import annotations


def check_predictions(preds: list[dict], images: int, size: int, num_classes: int) -> None:
    """One dict per image: at most 100 boxes inside the image, a score and a foreground label each."""
    assert len(preds) == images
    for p in preds:
        assert p["boxes"].shape[1:] == (4,) and len(p["boxes"]) == len(p["scores"]) == len(p["labels"]) <= 100
        assert (p["boxes"] >= 0).all() and (p["boxes"] <= size).all()
        assert ((p["labels"] >= 1) & (p["labels"] < num_classes)).all()
