"""Sample-quality metrics for generative models: Fréchet distance and Inception Score.

Both are computed on the features of a *feature network* given by the caller: the embedded
digits evaluator (``val/fid_evaluator``, ``val/is_evaluator``) or, when a local weights file is
configured, torchvision's Inception-v3 (``val/fid_inception``). Scores from different feature
networks are not comparable, hence the suffixes.

- :class:`FeatureFID` is torchmetrics' ``FrechetInceptionDistance`` with a custom feature module
  (its states are sums of features and of outer products in float64, summed over DDP ranks; the
  matrix square root is the trace of ``sqrt(eigvals(S1 @ S2))``). Chosen over scipy's ``sqrtm``
  because it streams over batches and reduces across ranks with no code of ours.
- :class:`PosteriorInceptionScore` is the Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` from
  sufficient statistics that sum over batches and ranks. torchmetrics' ``InceptionScore`` keeps
  every feature vector, gathers them across ranks and shuffles them with the global RNG (which
  would perturb training's random stream); the two agree for ``splits=1`` (a unit test checks it).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance


class FeatureFID(FrechetInceptionDistance):
    """Fréchet distance between Gaussians fitted to ``extractor`` features of real and fake inputs.

    ``extractor`` maps a batch (N, ...) to features (N, D) and has an integer ``num_features`` = D.
    ``update(inputs, real=...)`` takes whatever the extractor takes (images in [0, 1] here);
    ``compute()`` returns the squared Fréchet distance (0-dim tensor, units of features squared)::

        ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))

    The extractor is frozen and kept in eval mode; with ``reset_real_features=False`` the real
    statistics survive ``reset()``.
    """

    def __init__(self, extractor: nn.Module, reset_real_features: bool = True) -> None:
        if not isinstance(getattr(extractor, "num_features", None), int):
            raise TypeError("the FID feature extractor needs an integer `num_features` attribute")
        extractor.eval().requires_grad_(False)
        super().__init__(feature=extractor, reset_real_features=reset_real_features, normalize=True)

    @property
    def num_real(self) -> int:
        return int(self.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        return int(self.fake_features_num_samples)


class PosteriorInceptionScore(Metric):
    """Inception Score from class posteriors: ``exp(mean_x KL(p(y|x) || p(y)))``, p(y) = mean_x p(y|x).

    ``update(logits)`` takes class logits (N, K) of generated samples. The score is computed from
    three sums (samples, sum_x p(y|x), sum_x sum_y p log p), so it is exact over all samples seen on
    all ranks (one split). It ranges from 1 (every sample gets the same posterior) to K (confident
    and uniformly spread over the K classes).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.add_state("count", torch.tensor(0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("prob_sum", torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("neg_entropy_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        log_p = torch.log_softmax(logits.double(), dim=1)
        p = log_p.exp()
        self.count += logits.shape[0]
        self.prob_sum += p.sum(dim=0)
        self.neg_entropy_sum += (p * log_p).sum()

    def compute(self) -> Tensor:
        marginal = self.prob_sum / self.count
        marginal_neg_entropy = (marginal * torch.log(marginal.clamp_min(torch.finfo(torch.float64).tiny))).sum()
        # E_x KL(p(y|x) || p(y)) = E_x sum_y p log p - sum_y p(y) log p(y)
        return torch.exp(self.neg_entropy_sum / self.count - marginal_neg_entropy)
