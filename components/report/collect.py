"""What the report shows, gathered from the stages' outputs.

One :class:`Row` per ``metrics/details/<family>-<model>.json`` (its headline metric with the reference
points that give it meaning, train time, key params, provenance and MLflow link), grouped into a
:class:`FamilyReport` per family with its learning-curve tables (``plots/<family>-<model>.csv``),
figures (``figures/<family>-<model>/*.png``), sweep summary (``metrics/details/tune-<family>.json``) and the
expected stages that have no metrics file yet. Nothing here renders or writes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import Params
from components.errors import UserError
from components.families import FAMILIES
from components.metrics.direction import metric_mode
from components.metrics_files import COLUMNS, DETAILS_DIR, EXTRA_COLUMNS, REFERENCES, TUNE_PREFIX
from components.metrics_files import number as _number
from components.report.curves import read_series, spec_for
from components.report.runs import HistoryPoint, RunLink, RunStore
from components.tune.overrides import read_tuned

# Report sections in the order the course meets them (the family descriptors' order, each family's
# other stages after it, e.g. the FID evaluator after the generative models); any other family
# found in metrics/ follows.
FAMILY_TITLES = {name: title for family in FAMILIES.values()
                 for name, title in ((family.name, family.title), *((s.name, s.title) for s in family.extra_stages))}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}  # figures the page shows
# Metrics-file fields that put a row on a leaderboard of its own: runs of different environments
# (RL's CartPole returns of ~500 against the grid world's ~0.7) are not comparable.
GROUP_FIELDS = ("env",)
BUCKET_PREFIX = "test/bleu/"  # translation's BLEU by source length: test/bleu/len_11-20, ...


@dataclass(frozen=True)
class Reference:
    label: str  # "ceiling", "untrained", "floor (real vs real)", "solved threshold", ...
    value: float


@dataclass
class Row:
    """One trained model: what its metrics file says, with the context a reader needs."""

    family: str
    model: str
    stage: str  # the DVC stage that wrote it, e.g. train_segmentation@unet
    metrics: dict[str, Any]
    headline: str  # the metric key the family is ranked by
    references: list[Reference]
    key_params: dict[str, Any]  # the params of its model section that set it apart (tuned ones included)
    link: RunLink
    best: float | None = None  # best/<headline> (its best evaluation) when the run logged it
    tuned: set[str] = field(default_factory=set)  # keys of key_params a sweep chose (tuned/<family>.yaml)
    best_at: float | None = None  # where the learning curve reached ``best`` (epoch; env steps for RL)

    @property
    def group(self) -> str:
        """The leaderboard the row belongs to within its family ("" unless a :data:`GROUP_FIELDS` is set)."""
        return next((str(self.metrics[k]) for k in GROUP_FIELDS if self.metrics.get(k)), "")

    @property
    def value(self) -> float | None:
        return _number(self.metrics.get(self.headline))

    @property
    def train_wall_s(self) -> float | None:
        return _number(self.metrics.get("train_wall_s", self.metrics.get("stage_wall_s")))

    @property
    def git_commit(self) -> str:
        return str(self.metrics.get("git_commit", ""))

    @property
    def params_hash(self) -> str:
        return str(self.metrics.get("params_hash", ""))

    @property
    def run_id(self) -> str:
        return str(self.metrics.get("mlflow_run_id", ""))


@dataclass
class Trial:
    trial_id: str
    config: dict[str, Any]
    value: float | None
    length: int | None  # how far it ran, in its sweep's unit (epochs; env steps for RL)
    stopped_early: bool


@dataclass
class Sweep:
    """``metrics/tune-<family>.json``: a Ray Tune sweep of one model's hyperparameters."""

    family: str
    model: str
    enabled: bool
    metric: str = ""
    mode: str = ""  # "max" | "min"
    num_trials: int | None = None
    num_stopped_early: int | None = None
    best_value: float | None = None
    best_config: dict[str, Any] = field(default_factory=dict)
    default_value: float | None = None
    wall_s: float | None = None
    trials: list[Trial] = field(default_factory=list)
    unit: str = "epochs"  # of Trial.length: "epochs" | "env steps" (an RL sweep)
    applied: bool | None = None  # the tuned file carries the best values (None: a file from before the rule)
    reason: str = ""  # why they were applied or not (pipelines/tune.py's verdict)
    link: RunLink = field(default_factory=lambda: RunLink(None, ""))

    @property
    def gain(self) -> float | None:
        """How much the best trial beats the default params (positive = better), in metric units."""
        if self.best_value is None or self.default_value is None:
            return None
        diff = self.best_value - self.default_value
        return -diff if self.mode == "min" else diff

    def ranked_trials(self) -> list[Trial]:
        sign = 1 if self.mode == "min" else -1
        return sorted(self.trials, key=lambda t: (t.value is None, sign * (t.value or 0.0)))


@dataclass
class Figure:
    model: str
    name: str  # file name, e.g. masks.png
    source: Path
    asset: str  # path relative to the report directory, e.g. assets/figures/segmentation-unet/masks.png


@dataclass
class FamilyReport:
    name: str
    headline: str
    rows: list[Row]  # best first
    extra_columns: list[str]
    shared_params: dict[str, Any]  # params every model of the family has alike
    plots: dict[str, Path]  # model -> learning-curve CSV
    figures: list[Figure]
    sweep: Sweep | None
    missing: list[str]  # expected stages without a metrics file
    curve_x: str = "epoch"  # the learning curves' x column (best_at's unit)
    curve_assets: dict[str, str] = field(default_factory=dict)  # group -> its chart, set when rendered
    charts: dict[str, str] = field(default_factory=dict)  # group -> its interactive chart (HTML), when rendered
    sweep_chart: str | None = None  # the sweep's trials against its params (HTML), when rendered
    history: list[HistoryPoint] = field(default_factory=list)  # every finished run in MLflow, oldest first
    history_charts: dict[str, str] = field(default_factory=dict)  # group -> headline across runs (HTML)

    @property
    def groups(self) -> dict[str, list[Row]]:
        """The rows per leaderboard (:attr:`Row.group`), each best first; one "" group for most families."""
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            groups.setdefault(row.group, []).append(row)
        return dict(sorted(groups.items()))

    def figure_kinds(self) -> dict[str, list[Figure]]:
        """The figures by file name (every model's ``masks.png`` together), in the models' order."""
        kinds: dict[str, list[Figure]] = {}
        for figure in self.figures:
            kinds.setdefault(figure.name, []).append(figure)
        return kinds

    @property
    def title(self) -> str:
        return FAMILY_TITLES.get(self.name, self.name)

    @property
    def lower_is_better(self) -> bool:
        return metric_mode(self.headline) == "min"

    def length_buckets(self) -> list[str]:
        """Source-length buckets (``len_01-10``, ...) that some model reports BLEU for."""
        return sorted({k.removeprefix(BUCKET_PREFIX) for r in self.rows for k in r.metrics
                       if k.startswith(BUCKET_PREFIX)})


@dataclass
class Report:
    families: list[FamilyReport]
    expected: list[str]  # every stage whose metrics file the report expects
    missing: list[str]  # those without one
    store: RunStore
    sources: dict[str, str]  # the folders read: metrics, plots, figures

    def commits(self) -> dict[str, list[str]]:
        """``{git commit: the rows (family-model) written at it}``, most rows first: more than one commit,
        or a ``-dirty`` one, means the rows may not be comparable."""
        commits: dict[str, list[str]] = {}
        for family in self.families:
            for row in family.rows:
                commits.setdefault(row.git_commit or "unknown", []).append(f"{family.name}-{row.model}")
        return dict(sorted(commits.items(), key=lambda item: (-len(item[1]), item[0])))


def expected_stages(params: Params) -> dict[str, dict[str, str]]:
    """``{family: {model: stage}}`` for every model ``pipeline.<family>`` lists (DVC's stage names)."""
    expected: dict[str, dict[str, str]] = {}
    for family in FAMILIES.values():
        expected[family.name] = {model: family.stage_of(model) for model in family.listed(params)}
        for stage in family.extra_stages:
            if stage.rows is not None:
                expected[stage.name] = {row: stage.name for row in stage.rows(params)}
    return expected


def model_params(params: Params, root: Path | None = None) -> tuple[dict[str, dict[str, dict[str, Any]]],
                                                                    dict[str, dict[str, set[str]]]]:
    """``{family: {model: the params it trains with}}`` and ``{family: {model: tuned keys}}``.

    A model's (an RL algorithm's) section of params.yaml, with the values its family's sweep chose
    (``<root>/tuned/<family>.yaml``, which its stage applies the same way) on top; trainer
    overrides appear as ``trainer.<key>``. A family's other stages (the evaluator) add their rows.
    """
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    tuned: dict[str, dict[str, set[str]]] = {}
    for family in FAMILIES.values():
        sections[family.name] = family.model_sections(params)
        tuned[family.name] = {}
        for model, section in sections[family.name].items():
            values = read_tuned(root, family.name, model)[0] if root is not None else {}
            section.update(values)
            tuned[family.name][model] = set(values)
        for stage in family.extra_stages:
            if stage.rows is not None:
                sections[stage.name] = stage.rows(params)
    return sections, tuned


def split_params(sections: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per model, the params that differ between the family's models; and those all share.

    A family with one model has nothing to compare against: all its params are its own.
    """
    if len(sections) <= 1:
        return {m: dict(s) for m, s in sections.items()}, {}
    keys = list(dict.fromkeys(k for s in sections.values() for k in s))
    missing = object()
    shared = {k: next(iter(sections.values())).get(k, missing) for k in keys}
    shared = {k: v for k, v in shared.items()
              if v is not missing and all(s.get(k, missing) == v for s in sections.values())}
    own = {m: {k: v for k, v in s.items() if k not in shared} for m, s in sections.items()}
    return own, shared


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable metrics file ({err}); rerun its stage") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; rerun its stage")
    return data


def _references(headline: str, metrics: dict[str, Any]) -> list[Reference]:
    refs = []
    for label, source in REFERENCES.get(headline, ()):
        value = _number(metrics.get(source) if isinstance(source, str) else source)
        if value is not None:
            refs.append(Reference(label, value))
    return refs


def parse_sweep(data: dict[str, Any], store: RunStore) -> Sweep:
    """A :class:`Sweep` from the tune stage's JSON (``{"enabled": false}`` for a disabled sweep)."""
    family, model = str(data.get("family", "")), str(data.get("model", ""))
    if not data.get("enabled", True):
        return Sweep(family, model, enabled=False)
    entries = [t for t in data.get("trials") or [] if isinstance(t, dict)]
    length_key = "env_steps" if any("env_steps" in t for t in entries) else "epochs"
    trials = [
        Trial(trial_id=str(t.get("trial_id", "")), config=dict(t.get("config") or {}), value=_number(t.get("value")),
              length=int(t[length_key]) if _number(t.get(length_key)) is not None else None,
              stopped_early=bool(t.get("stopped_early", False)))
        for t in entries
    ]
    parent = str(data.get("parent_run_id") or "")
    return Sweep(
        family=family, model=model, enabled=True, metric=str(data.get("metric", "")),
        mode=str(data.get("mode", "max")),
        num_trials=int(data["num_trials"]) if _number(data.get("num_trials")) is not None else len(trials),
        num_stopped_early=(int(data["num_stopped_early"]) if _number(data.get("num_stopped_early")) is not None
                           else sum(t.stopped_early for t in trials)),
        best_value=_number(data.get("best_value")), best_config=dict(data.get("best_config") or {}),
        default_value=_number(data.get("default_value")), wall_s=_number(data.get("wall_s")),
        trials=trials, unit=length_key.replace("_", " "),
        applied=data["applied"] if isinstance(data.get("applied"), bool) else None,
        reason=str(data.get("reason") or ""),
        link=store.link(parent) if parent else RunLink(None, "the sweep names no parent run"),
    )


def best_point(path: Path, x: str, headline: str) -> tuple[float, float] | None:
    """(x, value) of the best point of ``headline`` in a learning-curve CSV (the first of equals), or None."""
    xs, ys = read_series(path, x, headline)
    if not ys:
        return None
    sign = -1.0 if metric_mode(headline) == "min" else 1.0
    best = max(range(len(ys)), key=lambda i: (sign * ys[i], -i))
    return xs[best], ys[best]


def _rank(rows: list[Row], headline: str) -> list[Row]:
    sign = 1 if metric_mode(headline) == "min" else -1  # metrics without a direction: higher first
    return sorted(rows, key=lambda r: (r.value is None, sign * (r.value or 0.0), r.model))


def _read_metrics_dir(metrics_dir: Path, store: RunStore) -> tuple[dict[str, dict[str, dict]], dict[str, Sweep]]:
    """``{family: {model: metrics}}`` from ``<family>-<model>.json`` and the row folders'
    ``<stage>/<row>.json``, and ``{family: Sweep}`` from ``tune-<family>.json``."""
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    sweeps: dict[str, Sweep] = {}
    details = Path(metrics_dir) / DETAILS_DIR
    for path in sorted(details.glob("*.json")):
        data = _read_json(path)
        if path.stem.startswith(TUNE_PREFIX):
            sweep = parse_sweep(data, store)
            sweeps[sweep.family or path.stem.removeprefix(TUNE_PREFIX)] = sweep
        else:
            family, _, model = path.stem.partition("-")
            raw.setdefault(family, {})[model] = data
    for path in sorted(details.glob("*/*.json")):  # a row folder: <stage>/<row>.json
        raw.setdefault(path.parent.name, {})[path.stem] = _read_json(path)
    return raw, sweeps


def _row(family: str, model: str, metrics: dict[str, Any], headline: str, stage: str, section: dict[str, Any],
         own: dict[str, Any], tuned: set[str], store: RunStore) -> Row:
    run_id = str(metrics.get("mlflow_run_id", ""))
    best = _number(metrics.get(f"best/{headline}"))
    if best is None:
        best = _number(store.metric(run_id, f"best/{headline}"))
    key_params = {**{k: section[k] for k in section if k in tuned}, **own}  # tuned values even when shared
    return Row(family, model, stage, metrics, headline, _references(headline, metrics), key_params,
               store.link(run_id), best, tuned)


def collect(metrics_dir: Path, plots_dir: Path, figures_dir: Path, params: Params | None,
            store: RunStore, root: Path | None = None) -> Report:
    """Gather every metrics file under ``metrics_dir`` (any subset of the stages) into a :class:`Report`.

    ``params`` (the validated params.yaml) names the expected stages and the models' params;
    ``None`` skips both. ``root`` is where ``tuned/<family>.yaml`` lives (the repository root);
    ``None`` ignores tuned values. ``store`` resolves MLflow run ids to dashboard links.
    """
    expected = expected_stages(params) if params is not None else {}
    sections, tuned = model_params(params, root) if params is not None else ({}, {})
    raw, sweeps = _read_metrics_dir(metrics_dir, store)

    families = []
    for name in [*FAMILY_TITLES, *sorted((set(raw) | set(sweeps)) - set(FAMILY_TITLES))]:
        models = raw.get(name, {})
        if not models and name not in sweeps:
            continue
        headlines = Counter(str(m.get("headline_metric", "")) for m in models.values()).most_common(1)
        headline = headlines[0][0] if headlines else ""
        own, shared = split_params(sections.get(name, {}))
        rows = _rank([
            _row(name, model, metrics, headline, expected.get(name, {}).get(model, f"{name}@{model}"),
                 sections.get(name, {}).get(model, {}), own.get(model, {}), tuned.get(name, {}).get(model, set()),
                 store)
            for model, metrics in models.items()
        ], headline)
        extras = [c for c in dict.fromkeys((*COLUMNS.get(name, ()), *EXTRA_COLUMNS))
                  if c != headline and any(c in r.metrics for r in rows)]
        plots = {p.stem.partition("-")[2]: p for p in sorted(Path(plots_dir).glob(f"{name}-*.csv"))}
        curve_x = spec_for(name, headline).x
        for row in rows:
            point = best_point(plots[row.model], curve_x, headline) if row.model in plots and headline else None
            if point is not None:
                row.best_at = point[0]
                row.best = point[1] if row.best is None else row.best
        figures = [
            Figure(r.model, png.name, png, f"assets/figures/{name}-{r.model}/{png.name}")
            for r in sorted(rows, key=lambda r: r.model)
            for png in sorted((Path(figures_dir) / f"{name}-{r.model}").glob("*"))
            if png.suffix.lower() in IMAGE_SUFFIXES
        ] + [  # a stage's own figures (figures/<stage>/: the transfer matrix, the attribution maps)
            Figure(name, png.name, png, f"assets/figures/{name}/{png.name}")
            for png in sorted((Path(figures_dir) / name).glob("*")) if png.suffix.lower() in IMAGE_SUFFIXES
        ]
        missing = [stage for model, stage in expected.get(name, {}).items() if model not in models]
        family = FamilyReport(name, headline, rows, extras, shared, plots, figures, sweeps.get(name), missing, curve_x)
        if name in FAMILIES and rows and headline:  # a family's own runs (its analysis stages log other names)
            family.history = store.history(FAMILIES[name].experiment, headline)
        families.append(family)

    all_expected = [stage for models in expected.values() for stage in models.values()]
    missing = [stage for name, models in expected.items() for model, stage in models.items()
               if model not in raw.get(name, {})]
    sources = {"metrics": str(metrics_dir), "plots": str(plots_dir), "figures": str(figures_dir)}
    return Report(families, all_expected, missing, store, sources)
