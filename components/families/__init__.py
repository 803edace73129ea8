"""Model families, registered by name; ``params.yaml`` selects them.

A family module exposes ``build_task(model: str, params: Params) -> Task`` (see
``components.train.task``) and ``MODELS``, the model names it knows; optionally
``evaluate_test(export, params)``, a final evaluation on the test split that the train stage runs
after training (``{"metrics": ..., "tags": ..., "figures": ...}``). Imports are lazy so a
stage pays only for the family it runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from components.errors import UserError

FAMILIES = {
    "segmentation": "components.families.segmentation",
    "detection": "components.families.detection",
    "generative": "components.families.generative",
    "translation": "components.families.sequence.translation",
    "captioning": "components.families.sequence.captioning",
}


def get_family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise UserError(f"unknown family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return importlib.import_module(FAMILIES[name])
