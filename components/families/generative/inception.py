"""Standard Inception FID features from a *local* torchvision Inception-v3 weights file.

Nothing is downloaded: the network is built with ``weights=None`` and loaded from the configured
path (``generative.fid.inception_weights``, a ``state_dict`` as saved from
``torchvision.models.inception_v3(weights="IMAGENET1K_V1")``). The FID path is the evaluator's
(:class:`components.metrics.generative.FeatureFID`) with this extractor: 2048-d pool features.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import inception_v3

from components.errors import UserError

INPUT_SIZE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_inception_weights(path: str | None) -> Path | None:
    """The configured weights path, or None when off; a missing file is a one-line UserError."""
    if path is None:
        return None
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise UserError(
            f"generative.fid.inception_weights: {resolved} does not exist; point it at a local torchvision "
            "Inception-v3 state dict, or set it to null to log only the evaluator metrics (val/fid_evaluator)"
        )
    return resolved


class InceptionFeatures(nn.Module):
    """Images (N, C, S, S) in [0, 1], C in {1, 3} -> Inception-v3 pool features (N, 2048).

    Grey images are repeated to RGB, resized bilinearly to 299x299 and normalised with ImageNet
    statistics (torchvision's convention for its weights).
    """

    num_features = 2048

    def __init__(self, weights: Path) -> None:
        super().__init__()
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(
                f"generative.fid.inception_weights: {weights} is not a torchvision Inception-v3 state dict "
                f"({str(err).splitlines()[0]}); set it to null to log only the evaluator metrics"
            ) from None
        net.fc = nn.Identity()
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.net((images - self.mean) / self.std)
