"""Region proposals by selective search (OpenCV's ximgproc, from opencv-contrib), cached per split.

R-CNN and Fast R-CNN classify regions someone else proposed; the course's proposer is selective
search (Uijlings et al.): Felzenszwalb graph segmentations, then hierarchical grouping of
neighbouring regions by colour, texture, size and fill similarity, every group's bounding box a
proposal. OpenCV implements it; ``strategy`` picks the diversification:

- ``fast`` / ``quality``: OpenCV's presets (``fast``: the HSV and Lab colour spaces x 2
  segmentation scales x 2 similarity mixes; ``quality``: more of each);
- ``lab``: one colour space (Lab), the segmentation scales ``scales`` (Felzenszwalb's k, with
  ``sigma``), ``fast``'s two similarity mixes. For grey images the presets' second colour space
  repeats the first; spending that time on finer scales instead gave the 64-px scenes 42
  proposals per image at 98 % recall (IoU 0.5) in 23 ms, against ``fast``'s 23 at 95 % in 34 ms.

The segmentation's scales are in pixels, tuned for photos: on 64-px scenes it merges a digit into
the background, so the image is enlarged ``upscale`` times first (``fast`` at 1x: 76 % recall).

The prepare stage writes ``<dataset>/proposals/<split>.npz`` (``boxes`` (total, 4) xyxy pixels of
the dataset's images, ``counts`` per image, ``seconds_per_image``) for each dataset in
``data.proposals.datasets``; :func:`read_proposals` reads them back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from components.data.schema import decode_images, read_meta, read_split
from components.errors import UserError
from components.io import atomic_write_bytes

PROPOSALS_DIR = "proposals"


def selective_search(image: np.ndarray, strategy: str = "lab", upscale: int = 2,
                     scales: Sequence[int] = (25, 50, 100, 200), sigma: float = 0.8, min_size: int = 2) -> np.ndarray:
    """Proposals of one ``(H, W, C)`` uint8 image (see the module's docstring for the settings):
    ``(N, 4)`` float32 ``x1, y1, x2, y2`` in the image's pixels, sorted, without duplicates or boxes
    with a side under ``min_size`` pixels."""
    import cv2

    cv2.setNumThreads(1)
    if image.ndim == 2:
        image = image[..., None]
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else np.ascontiguousarray(image[..., :3])
    if upscale > 1:
        rgb = cv2.resize(rgb, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    segmentation = cv2.ximgproc.segmentation
    search = segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(rgb)
    if strategy == "lab":
        search.addImage(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab))
        for k in scales:
            search.addGraphSegmentation(segmentation.createGraphSegmentation(sigma, float(k)))
        texture, size, fill = (segmentation.createSelectiveSearchSegmentationStrategyTexture(),
                               segmentation.createSelectiveSearchSegmentationStrategySize(),
                               segmentation.createSelectiveSearchSegmentationStrategyFill())
        search.addStrategy(segmentation.createSelectiveSearchSegmentationStrategyMultiple(
            segmentation.createSelectiveSearchSegmentationStrategyColor(), texture, size, fill))
        search.addStrategy(segmentation.createSelectiveSearchSegmentationStrategyMultiple(texture, size, fill))
    else:
        {"fast": search.switchToSelectiveSearchFast, "quality": search.switchToSelectiveSearchQuality}[strategy]()
    rects = search.process().astype(np.float32).reshape(-1, 4) / upscale  # x, y, w, h
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    boxes = boxes[(rects[:, 2] >= min_size) & (rects[:, 3] >= min_size)]
    return np.unique(boxes, axis=0)  # sorted: OpenCV ranks them with a random factor (every one is used here)


def _search_all(images: np.ndarray, search: dict[str, Any]) -> tuple[list[np.ndarray], float]:
    started = time.perf_counter()
    boxes = [selective_search(image, **search) for image in images]
    return boxes, time.perf_counter() - started


def compute_proposals(images: np.ndarray, search: dict[str, Any], workers: int = 2) -> tuple[list[np.ndarray], float]:
    """:func:`selective_search` (keyword arguments ``search``) of every image in ``images``
    (N, H, W, C), in ``workers`` processes (the same boxes whatever their number: each image is
    searched alone), and the seconds one process spent per image."""
    if workers <= 1 or len(images) < 2 * workers:
        parts = [_search_all(images, search)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_search_all, np.array_split(images, workers), [search] * workers))
    boxes = [b for part, _ in parts for b in part]
    return boxes, sum(seconds for _, seconds in parts) / max(len(images), 1)


def write_proposals(directory: Path, search: dict[str, Any], workers: int = 2) -> dict[str, float]:
    """Selective search (:func:`selective_search`'s keyword arguments ``search``) over every split
    of the dataset in ``directory`` into ``directory/proposals/<split>.npz``; returns ``{split: mean
    proposals per image}``."""
    out, mean = directory / PROPOSALS_DIR, {}
    out.mkdir(exist_ok=True)
    for split in read_meta(directory).sizes:
        images = decode_images(read_split(directory, split, columns=["image", "height", "width", "channels"]))
        boxes, seconds = compute_proposals(images, search, workers)
        counts = np.array([len(b) for b in boxes], dtype=np.int64)
        buffer = _npz(boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32), counts=counts,
                      seconds_per_image=np.float64(seconds))
        atomic_write_bytes(out / f"{split}.npz", buffer)
        mean[split] = float(counts.mean()) if len(counts) else 0.0
    return mean


def _npz(**arrays: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def proposals_path(directory: Path, split: str) -> Path:
    return directory / PROPOSALS_DIR / f"{split}.npz"


def read_proposals(directory: Path, split: str) -> tuple[list[np.ndarray], float]:
    """The cached proposals of ``split``, one ``(N_i, 4)`` float32 array per image, and the selective
    search's seconds per image (one process) when they were computed."""
    path = proposals_path(directory, split)
    if not path.is_file():
        raise UserError(f"{path}: no cached region proposals; add {directory.name!r} to data.proposals.datasets "
                        f"in params.yaml and run `dvc repro prepare`")
    with np.load(path) as cached:
        boxes, counts, seconds = cached["boxes"], cached["counts"], float(cached["seconds_per_image"])
    return list(np.split(boxes, np.cumsum(counts)[:-1])) if len(counts) else [], seconds
