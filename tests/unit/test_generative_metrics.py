"""Known answers for the generative metrics: FID of Gaussians, Inception Score of posteriors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchmetrics.image.inception import InceptionScore

from components.metrics.generative import FeatureFID, PosteriorInceptionScore


class Identity(nn.Module):
    """Features are the inputs themselves: (N, D) -> (N, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def _fid(real: torch.Tensor, fake: torch.Tensor, chunk: int = 1000) -> float:
    metric = FeatureFID(Identity(real.shape[1]))
    for part in real.split(chunk):
        metric.update(part, real=True)
    for part in fake.split(chunk):
        metric.update(part, real=False)
    return float(metric.compute())


def test_fid_of_a_feature_set_with_itself_is_zero():
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) @ torch.randn(16, 16)
    assert _fid(features, features) == pytest.approx(0.0, abs=1e-6)


def test_fid_between_shifted_unit_gaussians_is_the_squared_mean_distance():
    """N(0, I) vs N(mu, I) in 8 dimensions, 50,000 samples each: the covariance term vanishes and
    FID -> ||mu||^2 = 4. Sampling error of the estimate is ~ O(D / N) + O(||mu|| / sqrt(N)): tolerance 0.1."""
    g = torch.Generator().manual_seed(1)
    mu = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    real = torch.randn(50_000, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(50_000, 8, generator=g, dtype=torch.float64) + mu
    assert _fid(real, fake, chunk=5000) == pytest.approx(float(mu @ mu), abs=0.1)


def test_fid_of_scaled_gaussians_matches_the_closed_form():
    """N(0, I) vs N(0, s^2 I): Tr(I + s^2 I - 2 s I) = D (1 - s)^2 = 8 * 0.25 = 2 for s = 1.5."""
    g = torch.Generator().manual_seed(2)
    real = torch.randn(50_000, 8, generator=g, dtype=torch.float64)
    fake = 1.5 * torch.randn(50_000, 8, generator=g, dtype=torch.float64)
    assert _fid(real, fake, chunk=5000) == pytest.approx(2.0, abs=0.1)


def test_fid_counts_samples():
    metric = FeatureFID(Identity(4))
    metric.update(torch.randn(30, 4), real=True)
    metric.update(torch.randn(70, 4), real=False)
    assert (metric.num_real, metric.num_fake) == (30, 70)


def test_inception_score_extremes():
    """Identical posteriors score 1; confident predictions spread evenly over K classes score K."""
    same = PosteriorInceptionScore(10)
    same.update(torch.randn(1, 10).expand(200, 10))
    assert float(same.compute()) == pytest.approx(1.0, abs=1e-9)
    spread = PosteriorInceptionScore(10)
    spread.update(100.0 * torch.eye(10).repeat(20, 1))
    assert float(spread.compute()) == pytest.approx(10.0, rel=1e-6)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save all extracted features:UserWarning")
@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")  # one split: no spread
def test_inception_score_matches_torchmetrics_with_one_split():
    logits = torch.randn(400, 10, generator=torch.Generator().manual_seed(3)) * 3
    ours = PosteriorInceptionScore(10)
    for part in logits.split(64):  # streaming over batches gives the same answer
        ours.update(part)
    reference = InceptionScore(feature=nn.Identity(), splits=1)
    reference.update(logits)
    mean, _ = reference.compute()
    assert float(ours.compute()) == pytest.approx(float(mean), rel=1e-5)
    assert 1.0 < float(ours.compute()) < 10.0 and math.isfinite(float(ours.compute()))
