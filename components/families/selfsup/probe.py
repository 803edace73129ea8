"""The linear probe of the course's self-supervised tables: a logistic regression (scikit-learn) on
frozen, standardised features, its regularisation chosen on val; with every training label, and with
``labels_per_class`` of them over seeded draws."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (N, D)
    labels: np.ndarray  # (N,)


def probe(train: Split, val: Split, test: Split, c_grid: list[float], max_iter: int) -> tuple[float, float]:
    """(test accuracy, the C chosen): for each C, standardise on ``train`` and fit; keep the C of the best
    val accuracy (the first of equals, smaller C: more regularised)."""
    best: tuple[float, float, object] | None = None
    for c in c_grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
            model.fit(train.features, train.labels)
        score = model.score(val.features, val.labels)
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    return float(model.score(test.features, test.labels)), c


def few_labels(labels: np.ndarray, per_class: int, generator: torch.Generator) -> np.ndarray:
    """Indices of ``per_class`` seeded draws of each class (all of a class that has fewer), sorted."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = torch.randperm(len(members), generator=generator).numpy()
        chosen.append(members[order[:per_class]])
    return np.sort(np.concatenate(chosen))


def probe_all(train: Split, val: Split, test: Split, c_grid: list[float], max_iter: int, per_class: int,
              draws: int, generator: torch.Generator) -> dict[str, float]:
    """``accuracy`` (every label), ``few`` and ``few_std`` (mean and std over ``draws`` of ``per_class``
    labels per class)."""
    full, _ = probe(train, val, test, c_grid, max_iter)
    scores = []
    for _ in range(draws):
        index = few_labels(train.labels, per_class, generator)
        scores.append(probe(Split(train.features[index], train.labels[index]), val, test, c_grid, max_iter)[0])
    return {"accuracy": full, "few": float(np.mean(scores)), "few_std": float(np.std(scores))}
