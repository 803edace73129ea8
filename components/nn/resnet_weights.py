"""Local ImageNet weights for torchvision's ResNet-50 bodies (nothing is ever downloaded).

The paper-size segmentation and detection networks are built with ``weights=None``; a user who
has a torchvision ResNet-50 state dict on disk (as saved from
``torchvision.models.resnet50(weights="IMAGENET1K_V2").state_dict()``) points the model's
``backbone_weights`` key at it, and :func:`load_resnet50_weights` copies it into the body.
"""

from __future__ import annotations

import torch
from torch import nn

from components.errors import UserError
from components.runtime import resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_resnet50_weights(body: nn.Module, path: str, key: str) -> None:
    """Load the ResNet-50 state dict at ``path`` (absolute, or relative to the repository, so Ray
    workers find the same file) into ``body`` (its ``conv1`` .. ``layer4``).

    The classifier (``fc.*``) is dropped. A missing or unreadable file, or a state dict whose keys
    or shapes do not match the body, is one :class:`UserError` line naming ``key`` and the path.
    """
    resolved = resolve(path)
    if not resolved.is_file():
        raise UserError(f"{key}: {resolved} does not exist; point it at a local torchvision ResNet-50 "
                        "state dict (.pth), or set it to null for random initialisation")
    try:
        state = torch.load(resolved, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip or refused-type errors: all mean "not a state dict file"
        raise UserError(f"{key}: {resolved} is not a readable torch state dict ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise UserError(f"{key}: {resolved} holds a {type(state).__name__}, not a state dict")
    state = {name: value for name, value in state.items() if not name.startswith("fc.")}
    expected = body.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(n for n in set(state) & set(expected) if state[n].shape != expected[n].shape)
    if missing or unexpected or wrong:
        if missing or unexpected:
            first = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        else:
            first = f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}"
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped keys"
        raise UserError(f"{key}: {resolved} is not a torchvision ResNet-50 state dict ({counts}; {first})")
    body.load_state_dict(state)
