"""Tuned values: the file a sweep writes and a train stage applies (``tuned/<family>.yaml``).

The file has one key per model of the family (``{}`` for models the sweep did not tune), so each
``train_<family>@<model>`` stage depends on its own key only (``params: - tuned/<family>.yaml:
[<model>]`` in dvc.yaml) and a new sweep retrains the tuned model and nothing else. Values are
flat: a model key (``lr``) or ``trainer.<key>``. ``_sweep`` records where the values came from.
``tuned/rl.yaml`` has one key per algorithm (``rl.algos``), read the same way by ``rl@<algo>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.config import Params
from components.errors import UserError
from components.families import get_family

TUNED_DIR = "tuned"
PROVENANCE_KEY = "_sweep"


def values_line(values: Mapping[str, Any], sep: str = ", ") -> str:
    """``lr=0.002965, baseline=normalize``: searched values as progress lines and tables show them."""
    return sep.join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def tuned_path(root: Path, family: str) -> Path:
    return Path(root) / TUNED_DIR / f"{family}.yaml"


def tuned_file_text(models: list[str], tuned_model: str | None, values: Mapping[str, Any],
                    provenance: Mapping[str, Any]) -> str:
    """The YAML of ``tuned/<family>.yaml``: ``values`` under ``tuned_model``, ``{}`` under every other model."""
    body = {model: (dict(values) if model == tuned_model else {}) for model in models}
    header = ("# Written by the tune stage (python -m pipelines.tune); the train stage of each model applies\n"
              "# its section over params.yaml. Edit params.yaml's tune section, not this file.\n")
    return header + yaml.safe_dump({**body, PROVENANCE_KEY: dict(provenance)}, sort_keys=False)


def read_tuned(root: Path, family: str, model: str) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """``(values, provenance, path)`` of ``model`` in the family's tuned file; empty when the file or
    the model's section is missing (a stage run outside DVC before any sweep)."""
    path = tuned_path(root, family)
    if not path.is_file():
        return {}, {}, path
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    values = data.get(model) or {}
    if not isinstance(values, dict):
        raise UserError(f"{path}: {model}: expected a mapping of tuned values, got {values!r}")
    return values, data.get(PROVENANCE_KEY) or {}, path


def apply_tuned(params: Params, root: Path, family: str, model: str) -> tuple[Params, dict[str, str]]:
    """``params`` with the model's (for ``rl``, the algorithm's) section of ``tuned/<family>.yaml``
    (the tune stage's best values) applied, and the MLflow tags that say so; unchanged when the
    section is empty or missing (for the swept model, tagged with why the sweep kept the defaults)."""
    values, provenance, path = read_tuned(root, family, model)
    source = str(path.relative_to(root))
    tags = {}
    if provenance.get("parent_run_id"):
        tags["courselab.tuned_by_sweep_run"] = provenance["parent_run_id"]
    swept = provenance.get("model") == model and "applied" in provenance  # the sweep judged this model
    if swept:
        tags.update({"courselab.tuned_kept": "tuned" if provenance["applied"] else "default",
                     "courselab.tuned_reason": str(provenance.get("reason", ""))})
    if not values:
        if swept:
            print(f"[{family}/{model}] {source}: the sweep kept params.yaml's values ({provenance.get('reason')})",
                  flush=True)
            return params, tags
        return params, {}
    params = get_family(family).with_values(params, model, values, source)
    print(f"[{family}/{model}] tuned values from {source} (over params.yaml): {values_line(values)}", flush=True)
    return params, {"courselab.tuned_from": source, **tags}
