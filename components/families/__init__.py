"""The model families, discovered from their descriptors.

Every package under ``components/families/`` with a ``family.py`` is a family package; its
``FAMILIES`` tuple holds the descriptors (:class:`components.families.base.Family`), in the course's
order by ``Family.order``. Adding a family is adding its package (and its params.yaml sections);
nothing here changes. Importing this module imports the descriptors only (schemas, no torch); a
family's training code is imported by ``Family.task()`` when a stage trains.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from components.errors import UserError
from components.families.base import Family, RLFamily, Stage


def _discover() -> dict[str, Family]:
    found: list[Family] = []
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg and importlib.util.find_spec(f"{__name__}.{info.name}.family") is not None:
            found.extend(importlib.import_module(f"{__name__}.{info.name}.family").FAMILIES)
    names = [family.name for family in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two family descriptors share a name: {sorted(names)}")
    return {family.name: family for family in sorted(found, key=lambda f: (f.order, f.name))}


FAMILIES: dict[str, Family] = _discover()


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


__all__ = ["FAMILIES", "Family", "RLFamily", "Stage", "get_family"]
