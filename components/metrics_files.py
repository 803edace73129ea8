"""A stage's metrics on disk, in two files per row.

- ``metrics/<name>.json`` (DVC ``metrics``): numbers only, the ones a leaderboard compares (the
  headline metric, its reference points, the family's columns), so ``dvc metrics show`` and
  ``dvc metrics diff`` read as narrow tables.
- ``metrics/details/<name>.json`` (a DVC out): every number the stage measured and its provenance
  (``git_commit``, ``mlflow_run_id``, ``params_hash``, ``headline_metric``, the environment...).
  The report, the transfer stages and MLflow's ``summary.json`` read this one.

``<name>`` is ``<stage>-<row>`` (``detection-faster_rcnn``, ``visualization_units-trained``),
``tune-<family>``, or ``<stage>/<row>`` for a stage whose rows follow the pipeline's lists (its
``row_folder``: ``selfsup_probe/pixels``), whose folders ``metrics/<stage>/`` and
``metrics/details/<stage>/`` are written whole. The details file is written first: a summary never
names a run whose details are missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.families import FAMILIES
from components.io import atomic_directory, atomic_write_text

METRICS_DIR = "metrics"
DETAILS_DIR = "details"
TUNE_PREFIX = "tune-"

# The numbers beside the headline a leaderboard shows when a row has them, after each stage's own
# ``columns`` (the family descriptors'); the report's tables read the same lists.
SECTIONS = {section.name: section for family in FAMILIES.values() for section in (family, *family.extra_stages)}
COLUMNS = {name: section.columns for name, section in SECTIONS.items()}
EXTRA_COLUMNS = (
    "val/pixel_accuracy", "val/map50", "val/map_50", "val/voc_map", "val/mask_map", "val/mask_map50",
    "val/mask_map_50", "val/is_evaluator", "val/fid_inception", "val/accuracy",
    "test/bleu", "test/chrf", "test/exact_match", "test/bleu_longer", "test/bleu1", "test/bleu2", "test/bleu3",
    "val/perplexity", "rl/episode_return_mean", "rl/policy_agreement", "rl/env_steps_to_threshold",
    "rl/env_steps", "train/loss", "epochs",
)
# Reference points of a headline metric: (label, details key or constant), from the descriptors.
REFERENCES: dict[str, tuple[tuple[str, str | float], ...]] = {s.headline: s.references for s in SECTIONS.values()}
# A sweep's numbers (its best config's values follow, nested under best_config)
TUNE_COLUMNS = ("best_value", "default_value", "num_trials", "num_stopped_early")


def summary_path(root: Path, name: str) -> Path:
    return Path(root) / METRICS_DIR / f"{name}.json"


def details_path(root: Path, name: str) -> Path:
    return Path(root) / METRICS_DIR / DETAILS_DIR / f"{name}.json"


def details_of(summary_file: str) -> str:
    """``metrics/<name>.json`` -> ``metrics/details/<name>.json`` (relative paths, as dvc.yaml names them)."""
    folder, _, file = summary_file.rpartition("/")
    return f"{folder}/{DETAILS_DIR}/{file}"


def number(value: Any) -> float | None:
    """A finite number as a float, else None (missing, NaN, text, a flag)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def summary_keys(stage: str, headline: str) -> tuple[str, ...]:
    """The keys of ``<stage>-*.json``'s summary, in table order."""
    references = tuple(source for _, source in REFERENCES.get(headline, ()) if isinstance(source, str))
    section = SECTIONS.get(stage)
    chosen = section.summary if section is not None and section.summary is not None else (
        *COLUMNS.get(stage, ()), *EXTRA_COLUMNS)
    return tuple(dict.fromkeys((headline, *references, *chosen)))


def summarise(name: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of ``details`` that go into ``metrics/<name>.json``."""
    if name.startswith(TUNE_PREFIX):
        summary = {k: details[k] for k in TUNE_COLUMNS if number(details.get(k)) is not None}
        best = {k: v for k, v in (details.get("best_config") or {}).items() if number(v) is not None}
        return {**summary, **({"best_config": best} if best else {})}
    stage = stage_of(name)
    keys = summary_keys(stage, str(details.get("headline_metric", "")))
    return {k: details[k] for k in keys if number(details.get(k)) is not None}


def stage_of(name: str) -> str:
    """The stage (or family) a metrics name belongs to: ``detection-ssd`` -> ``detection``,
    ``selfsup_probe/pixels`` -> ``selfsup_probe``."""
    folder, slash, _ = name.partition("/")
    return folder if slash else name.partition("-")[0]


def write_row_folder(root: Path, stage: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Path]:
    """A row-folder stage's files: ``metrics/details/<stage>/<row>.json`` for every row, then
    ``metrics/<stage>/<row>.json``, each folder replacing the last whole (a row no longer listed
    goes with it); returns ``{row: details path}``."""
    paths = {}
    with atomic_directory(Path(root) / METRICS_DIR / DETAILS_DIR / stage) as tmp:
        for row, details in rows.items():
            (tmp / f"{row}.json").write_text(json.dumps(dict(details), indent=2, sort_keys=True) + "\n")
            paths[row] = details_path(root, f"{stage}/{row}")
    with atomic_directory(Path(root) / METRICS_DIR / stage) as tmp:
        for row, details in rows.items():
            (tmp / f"{row}.json").write_text(json.dumps(summarise(f"{stage}/{row}", details), indent=2) + "\n")
    return paths


def write_stage_metrics(root: Path, name: str, details: Mapping[str, Any]) -> Path:
    """Write ``metrics/details/<name>.json`` then ``metrics/<name>.json`` (each atomically); returns
    the details path (what MLflow logs)."""
    path = details_path(root, name)
    atomic_write_text(path, json.dumps(dict(details), indent=2, sort_keys=not name.startswith(TUNE_PREFIX)) + "\n")
    atomic_write_text(summary_path(root, name), json.dumps(summarise(name, details), indent=2) + "\n")
    return path


def read_stage_metrics(root: Path, name: str) -> dict[str, Any]:
    """Everything a stage wrote for ``name`` (its details file)."""
    return json.loads(details_path(root, name).read_text())
