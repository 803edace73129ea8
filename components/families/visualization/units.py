"""What a unit responds to: activations by layer, max-activating patches, nearest neighbours in a
network's feature space, t-SNE of the features, and class models by gradient ascent on the input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE, trustworthiness
from sklearn.neighbors import KNeighborsClassifier
from torch import Tensor, nn

from components.families.visualization.config import ClassModelConfig
from components.families.visualization.scores import blur


@torch.no_grad()
def batched(function: Callable[[Tensor], Tensor | dict[str, Tensor]], images: Tensor, batch_size: int = 250):
    """``function`` over ``images`` in batches, concatenated (tensors, or dicts of tensors by key)."""
    parts = [function(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)


def max_activating_patches(images: Tensor, activation: Tensor, unit: int, count: int) -> Tensor:
    """The ``count`` images where ``unit`` fires most (its maximum over positions), each cropped to a
    window of 4 strides around that position (zero-padded at the border): (count, C, w, w)."""
    size = images.shape[-1]
    stride = size // activation.shape[-1]
    window = min(size, 4 * stride)
    maps = activation[:, unit].flatten(1)
    best, where = maps.max(1)
    top = best.argsort(descending=True)[:count]
    padded = F.pad(images, (window, window, window, window))
    patches = []
    for i in top.tolist():
        y, x = divmod(int(where[i]), activation.shape[-1])
        cy, cx = y * stride + stride // 2 + window, x * stride + stride // 2 + window
        patches.append(padded[i, :, cy - window // 2:cy - window // 2 + window,
                              cx - window // 2:cx - window // 2 + window])
    return torch.stack(patches)


def knn_accuracy(train: Tensor, train_labels: Tensor, test: Tensor, test_labels: Tensor, k: int) -> float:
    """Test accuracy of a ``k``-nearest-neighbour vote (Euclidean) among the training vectors."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(train.flatten(1).numpy(), train_labels.numpy())
    return float(knn.score(test.flatten(1).numpy(), test_labels.numpy()))


def nearest(train: Tensor, queries: Tensor, k: int) -> Tensor:
    """Indices (Q, k) of each query's ``k`` nearest training vectors (Euclidean)."""
    return torch.cdist(queries.flatten(1), train.flatten(1)).topk(k, largest=False).indices


def tsne(features: Tensor, perplexity: float, seed: int, neighbours: int) -> tuple[np.ndarray, float]:
    """scikit-learn's t-SNE of ``features`` (PCA-initialised, seeded) and its trustworthiness (how
    well each point's ``neighbours`` nearest are kept; 1 = all)."""
    data = features.numpy().astype(np.float64)
    perplexity = min(perplexity, (len(data) - 1) / 3)
    points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(data)
    return points, float(trustworthiness(data, points, n_neighbors=neighbours))


def class_model(net: nn.Module, target: int, start: Tensor, config: ClassModelConfig) -> Tensor:
    """Simonyan et al. (2014): the image maximising the class score S_c(I) - l2 ||I||^2, found by
    gradient ascent (Adam) from ``start`` (C, H, W): their zero image is the mean image of mean-subtracted
    inputs, so the stage starts from the training set's mean image (a black image would stall an untrained
    network: no bias before its first ReLU, every gradient 0). Yosinski et al.'s (2015) regularisers: a
    Gaussian blur every ``blur_every`` steps and clipping to [0, 1] after each. Optimised at ``upsample``
    times the input size and average-pooled back before the network sees it. Returns (1, C, H, W)."""
    image = F.interpolate(start[None], scale_factor=config.upsample, mode="nearest") if config.upsample > 1 \
        else start[None].clone()
    image.requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=config.lr)
    for step in range(config.steps):
        seen = F.avg_pool2d(image, config.upsample) if config.upsample > 1 else image
        objective = net(seen)[0, target] - config.l2 * image.pow(2).sum()
        optimizer.zero_grad()
        (-objective).backward()
        optimizer.step()
        with torch.no_grad():
            if config.blur_sigma and (step + 1) % config.blur_every == 0:
                image.copy_(blur(image, config.blur_sigma))
            image.clamp_(0.0, 1.0)
    with torch.no_grad():
        return F.avg_pool2d(image, config.upsample) if config.upsample > 1 else image.detach().clone()
