"""A Markdown leaderboard of every ``metrics/<family>-<model>.json``, one table per family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Columns shown besides the headline metric, when a metrics file has them.
EXTRA_COLUMNS = (
    "val/pixel_accuracy", "val/map50", "val/map_untrained", "val/map50_untrained", "val/mask_map",
    "val/mask_map50", "val/voc_map", "train/loss", "epochs",
    "rl/episode_return_mean", "rl/env_steps_to_threshold", "rl/env_steps",
    "val/is_evaluator", "val/fid_evaluator_floor", "val/fid_evaluator_untrained", "val/is_evaluator_untrained",
    "val/fid_inception", "test/accuracy",
    "test/bleu", "test/chrf", "test/exact_match", "test/bleu_longer", "test/bleu1", "test/bleu2", "test/bleu3",
    "val/perplexity",
    "train_wall_s",
)
# Headline metrics where lower is better (the table is ranked ascending for them).
LOWER_IS_BETTER = {"val/fid_evaluator", "val/fid_inception"}


def load_metrics(directory: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{family: {model: metrics}}`` from ``<directory>/<family>-<model>.json``."""
    families: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(Path(directory).glob("*.json")):
        family, _, model = path.stem.partition("-")
        families.setdefault(family, {})[model] = json.loads(path.read_text())
    return families


def _cell(value: Any, column: str = "") -> str:
    if isinstance(value, float):
        if column == "epochs" or value.is_integer() and abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.1f}" if column.endswith("_s") else f"{value:.4f}"
    return "" if value is None else str(value)


def family_table(family: str, models: dict[str, dict[str, Any]]) -> str:
    headline = next(iter(models.values())).get("headline_metric", "")
    sign = 1 if headline in LOWER_IS_BETTER else -1
    ranked = sorted(models.items(), key=lambda kv: sign * float(kv[1].get(headline, sign * float("inf"))))
    extras = [c for c in EXTRA_COLUMNS if any(c in m for m in models.values())]
    header = ["model", headline, *extras, "params hash", "commit"]
    lines = [f"## {family}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for model, metrics in ranked:
        row = [model, _cell(metrics.get(headline)), *(_cell(metrics.get(c), c) for c in extras),
               str(metrics.get("params_hash", "")), str(metrics.get("git_commit", ""))[:12]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def bucket_table(family: str, models: dict[str, dict[str, Any]], prefix: str = "test/bleu/") -> str:
    """BLEU / exact match per source-length bucket (``test/bleu/len_11-20``, ...), one row per model;
    empty when no model has bucket metrics."""
    buckets = sorted({k.removeprefix(prefix) for m in models.values() for k in m if k.startswith(prefix)})
    if not buckets:
        return ""
    header = ["model", *(f"{b.removeprefix('len_').replace('_', ' ')} BLEU / EM" for b in buckets)]
    lines = [f"### {family}: test BLEU and exact match by source length", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for model, metrics in sorted(models.items()):
        cells = []
        for b in buckets:
            bleu, em = metrics.get(f"{prefix}{b}"), metrics.get(f"test/exact_match/{b}")
            cells.append("" if bleu is None else f"{bleu:.1f} / {100 * em:.0f}%" if em is not None else f"{bleu:.1f}")
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return "\n".join(lines) + "\n"


def render(metrics_dir: Path) -> str:
    families = load_metrics(metrics_dir)
    parts = ["# courselab report", "", "Every model's final metrics, best first within each family.", ""]
    for family, models in sorted(families.items()):
        parts.append(family_table(family, models))
        if table := bucket_table(family, models):
            parts.append(table)
    if not families:
        parts.append(f"No metrics files in {metrics_dir}.")
    return "\n".join(parts)
