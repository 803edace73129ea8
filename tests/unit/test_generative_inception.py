"""Standard Inception FID from a local weights file: the same FID path, another extractor; no download."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import inception_v3

from components.errors import UserError
from components.families.generative.inception import InceptionFeatures, check_inception_weights
from components.metrics.generative import FeatureFID


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A torchvision Inception-v3 state dict (random weights: the test is about plumbing, not ImageNet)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "inception_v3.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    return path


@pytest.mark.slow  # a 2048x2048 eigendecomposition and 299x299 forwards: ~1 minute on 2 busy cores
def test_inception_features_feed_the_same_fid_metric(weights):
    extractor = InceptionFeatures(weights)
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert extractor(images).shape == (3, 2048)
    fid = FeatureFID(extractor)
    fid.update(images, real=True)
    fid.update(images, real=False)
    assert float(fid.compute()) == pytest.approx(0.0, abs=1e-2)


def test_weights_path_is_checked(tmp_path):
    assert check_inception_weights(None) is None
    with pytest.raises(UserError, match="set it to null"):
        check_inception_weights(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(UserError, match="not a torchvision Inception-v3 state dict"):
        InceptionFeatures(wrong)
