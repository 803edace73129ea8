"""The pretext tasks' labels and losses, written out as the course derives them: rotation (Gidaris et
al. 2018), jigsaw (Noroozi & Favaro 2016), context prediction (Doersch et al. 2015) and the InfoNCE /
NT-Xent loss of contrastive learning (van den Oord et al. 2018; Chen et al. 2020, SimCLR)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor


def rotations(images: Tensor) -> tuple[Tensor, Tensor]:
    """All four rotations of every image in one batch (Gidaris et al.): images (N, C, H, W) with H = W
    -> (4N, C, H, W) and labels (4N,) in {0, 1, 2, 3} = k quarter turns counter-clockwise; the first N
    are the images as given."""
    turned = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(len(images))
    return turned, labels


def unrotate(images: Tensor, labels: Tensor) -> Tensor:
    """The inverse of :func:`rotations` per image: each turned back by its label's quarter turns."""
    return torch.stack([torch.rot90(image, -int(k), dims=(1, 2)) for image, k in zip(images, labels, strict=True)])


def hamming_permutations(tiles: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` permutations of ``tiles`` tiles chosen greedily for large minimal Hamming distance
    (Noroozi & Favaro's Algorithm 1: start from a random one, then repeatedly add the permutation whose
    smallest distance to those chosen is largest): (count, tiles). The course's 100 of 9! = 362,880."""
    every = torch.tensor(list(itertools.permutations(range(tiles))))
    if count > len(every):
        raise ValueError(f"jigsaw: {count} permutations asked of {tiles} tiles, which have {len(every)}")
    chosen = [int(torch.randint(len(every), (1,), generator=generator))]
    distance = (every != every[chosen[0]]).sum(1)
    for _ in range(count - 1):
        best = int(distance.argmax())  # the first of the farthest: deterministic
        chosen.append(best)
        distance = torch.minimum(distance, (every != every[best]).sum(1))
    return every[chosen]


# Context prediction's eight classes: where the second patch lies relative to the first, (row, column)
# steps in row-major order (Doersch et al.'s figure 2: 1 2 3 / 4 _ 5 / 6 7 8).
NEIGHBOURS = torch.tensor([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def context_pairs(images: Tensor, patch: float, gap: float, jitter: float, generator: torch.Generator,
                  size: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Doersch et al.'s pairs: per image a patch at the centre and one of its eight neighbours in a 3x3
    layout (label = the neighbour's index in :data:`NEIGHBOURS`), the neighbour ``patch + gap`` away along
    each axis it moves on. Lengths are fractions of the image side: a square patch of side ``patch``, a
    ``gap`` between neighbours and each patch moved by up to ``jitter`` in x and y (the gap and jitter keep
    the network from matching edges and lines across the border, the authors' trivial shortcuts). Patches
    are cut at sub-pixel places and resampled bilinearly to ``size`` x ``size`` (default: the image's).
    Returns (centres, neighbours, labels): (N, C, size, size) twice and (N,)."""
    n, c, h, w = images.shape
    size = size or h
    labels = torch.randint(len(NEIGHBOURS), (n,), generator=generator)
    step = 2.0 * (patch + gap)  # normalised coordinates span 2 per side

    def cut(offsets: Tensor) -> Tensor:
        moved = offsets * step + (2 * torch.rand(n, 2, generator=generator) - 1) * 2 * jitter
        zero = torch.zeros(n)
        scale = torch.full((n,), patch)
        theta = torch.stack([torch.stack([scale, zero, moved[:, 1]], 1), torch.stack([zero, scale, moved[:, 0]], 1)], 1)
        grid = F.affine_grid(theta.to(images.device, images.dtype), [n, c, size, size], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    centres = cut(torch.zeros(n, 2))
    neighbours = cut(NEIGHBOURS[labels].float())
    return centres, neighbours, labels


def to_tiles(images: Tensor, grid: int) -> Tensor:
    """(N, C, H, W) -> (N, grid * grid, C, H / grid, W / grid), tiles in row-major order."""
    n, c, h, w = images.shape
    if h % grid or w % grid:
        raise ValueError(f"jigsaw: a {h}x{w} image does not split into {grid}x{grid} tiles")
    tiles = images.reshape(n, c, grid, h // grid, grid, w // grid)
    return tiles.permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, h // grid, w // grid)


def from_tiles(tiles: Tensor) -> Tensor:
    """The inverse of :func:`to_tiles`: (N, grid * grid, C, h, w) -> (N, C, grid * h, grid * w)."""
    n, t, c, h, w = tiles.shape
    grid = int(round(t ** 0.5))
    return tiles.reshape(n, grid, grid, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(n, c, grid * h, grid * w)


def draw_shuffles(views: int, permutations: int, shuffles: int, generator: torch.Generator) -> Tensor:
    """The permutation labels of ``shuffles`` shuffles of each of ``views`` views: per view, ``shuffles``
    distinct indices of ``permutations`` in random order, view-major ((views * shuffles,), as
    ``repeat_interleave(shuffles)`` lays out the views)."""
    return torch.rand(views, permutations, generator=generator).argsort(1)[:, :shuffles].flatten()


def shuffle_tiles(tiles: Tensor, permutations: Tensor, labels: Tensor) -> Tensor:
    """Tile ``i`` of the output is tile ``permutations[label][i]`` of the input: (N, T, ...) -> (N, T, ...)."""
    order = permutations[labels]  # (N, T)
    index = order.reshape(*order.shape, *([1] * (tiles.dim() - 2))).expand_as(tiles)
    return tiles.gather(1, index)


def unshuffle_tiles(tiles: Tensor, permutations: Tensor, labels: Tensor) -> Tensor:
    """The inverse of :func:`shuffle_tiles`."""
    inverse = permutations.argsort(1)
    return shuffle_tiles(tiles, inverse, labels)


def cut_holes(images: Tensor, hole: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A ``hole`` x ``hole`` square at a random place of each image set to 0 (context encoders): the
    images with their holes, and the holes' masks (N, 1, H, W) bool."""
    n, _, h, w = images.shape
    ys = torch.randint(0, h - hole + 1, (n,), generator=generator)
    xs = torch.randint(0, w - hole + 1, (n,), generator=generator)
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    masks = ((rows >= ys[:, None, None]) & (rows < (ys + hole)[:, None, None])
             & (cols >= xs[:, None, None]) & (cols < (xs + hole)[:, None, None]))[:, None].to(images.device)
    return images.masked_fill(masks, 0.0), masks


def info_nce(queries: Tensor, keys: Tensor, temperature: float, negatives: Tensor | None = None) -> Tensor:
    """InfoNCE (van den Oord et al.): for each query q_i, the cross-entropy of picking its positive
    key k_i among the candidates, with logits = cosine similarity / temperature,

        L = -1/N sum_i log( exp(q_i.k_i / t) / sum_j exp(q_i.c_j / t) ).

    Candidates: every key of the batch (the others are negatives), then ``negatives`` (M, D) when given
    (MoCo's queue). Queries, keys and negatives are L2-normalised here."""
    queries, keys = F.normalize(queries, dim=1), F.normalize(keys, dim=1)
    candidates = keys if negatives is None else torch.cat([keys, F.normalize(negatives, dim=1)])
    logits = queries @ candidates.T / temperature
    return F.cross_entropy(logits, torch.arange(len(queries), device=queries.device))


def moco_loss(queries: Tensor, keys: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo's InfoNCE (He et al. 2020): each query's candidates are its own key (the positive) and the
    queue's keys (the negatives; the batch's other keys are not among them), logits = cosine / temperature:

        L = -1/N sum_i log( exp(q_i.k_i / t) / (exp(q_i.k_i / t) + sum_j exp(q_i.n_j / t)) )."""
    queries, keys, queue = F.normalize(queries, dim=1), F.normalize(keys, dim=1), F.normalize(queue, dim=1)
    logits = torch.cat([(queries * keys).sum(1, keepdim=True), queries @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))


@torch.no_grad()
def momentum_update(key: torch.nn.Module, query: torch.nn.Module, momentum: float) -> None:
    """MoCo's key encoder: every parameter theta_k <- m theta_k + (1 - m) theta_q (buffers, such as
    BatchNorm's running statistics, copied)."""
    for k, q in zip(key.parameters(), query.parameters(), strict=True):
        k.mul_(momentum).add_(q.detach(), alpha=1.0 - momentum)
    for k, q in zip(key.buffers(), query.buffers(), strict=True):
        k.copy_(q)


def nt_xent(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """SimCLR's NT-Xent: 2N views, (first[i], second[i]) positive pairs; for each view the other 2N - 2
    views are its negatives (itself excluded), logits = cosine similarity / temperature, averaged over
    all 2N views."""
    views = F.normalize(torch.cat([first, second]), dim=1)
    n = len(first)
    logits = views @ views.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=views.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(views.device)
    return F.cross_entropy(logits, positives)
