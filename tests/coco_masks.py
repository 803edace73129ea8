"""COCO mask encodings the COCO tests write into their tiny annotation files."""

from __future__ import annotations

import numpy as np


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Column-major run lengths, starting with a run of zeros (as COCO's crowd annotations are stored)."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}
