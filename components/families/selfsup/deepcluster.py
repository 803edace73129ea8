"""DeepCluster's pseudo-labels (Caron et al. 2018): the encoder's features of every training image,
PCA-whitened and L2-normalised, clustered by k-means (scikit-learn); the network is then trained to
predict its images' clusters, and the clustering is redone each epoch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score


@dataclass
class Clustering:
    pca: PCA
    kmeans: KMeans

    def assign(self, features: np.ndarray) -> np.ndarray:
        """The nearest centroid of each feature vector (N,)."""
        return self.kmeans.predict(_normalise(self.pca.transform(features)))

    @property
    def labels(self) -> np.ndarray:
        return self.kmeans.labels_


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cluster(features: np.ndarray, clusters: int, pca_dim: int, seed: int) -> Clustering:
    """k-means with ``clusters`` centroids on the PCA-whitened (to ``pca_dim``), L2-normalised features."""
    pca = PCA(n_components=min(pca_dim, *features.shape), whiten=True, random_state=seed).fit(features)
    kmeans = KMeans(n_clusters=clusters, n_init=1, random_state=seed).fit(_normalise(pca.transform(features)))
    return Clustering(pca, kmeans)


def balancing_weights(labels: np.ndarray, clusters: int) -> np.ndarray:
    """Per cluster, N / (clusters x its size) (0 for an empty one): a cross-entropy weighted so sums
    equal what sampling images uniformly over the clusters gives, DeepCluster's guard against one
    cluster swallowing the data."""
    counts = np.bincount(labels, minlength=clusters).astype(np.float64)
    return np.where(counts > 0, len(labels) / (clusters * np.maximum(counts, 1)), 0.0)


def nmi(assigned: np.ndarray, labels: np.ndarray) -> float:
    """Normalised mutual information between clusters and classes (1: the clusters are the classes)."""
    return float(normalized_mutual_info_score(labels, assigned))
