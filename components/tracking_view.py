"""The saved MLflow UI view of a family's experiment: its current runs, ranked by the headline metric,
with the leaderboard's metrics and the shared params as columns.

MLflow's UI keeps a shared view as an experiment tag ``mlflow.sharedViewState.<key>`` holding the
view's JSON (search facets and UI state) and opens it from ``#/experiments/<id>?viewStateShareKey=<key>``
(its "Share" button writes the same tag). Each finished run of a family updates the tag with the
columns it logged, so the view shows what the runs have, no empty columns. ``make dashboard``
prints each family's link.
"""

from __future__ import annotations

import json
from typing import Any

VIEW_KEY = "current"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
CURRENT_FILTER = "tags.`courselab.current` = 'true'"
MAX_PARAMS = 8  # param columns after the metrics (the model keys every run of the family shares)


def column(kind: str, key: str) -> str:
    """MLflow's canonical column key: ``metrics.`val/miou```."""
    return f"{kind}.`{key}`"


def view_state(headline: str, ascending: bool, metrics: list[str], params: list[str]) -> dict[str, Any]:
    """The view's JSON: MLflow's default UI state with our filter, order and columns."""
    return {
        # search facets
        "searchFilter": CURRENT_FILTER, "orderByKey": column("metrics", headline), "orderByAsc": ascending,
        "startTime": "ALL", "lifecycleFilter": "Active", "modelVersionFilter": "All Runs", "datasetsFilter": [],
        # UI state (every field of MLflow's createExperimentPageUIState, so none is left undefined)
        # metrics then params, right after the run's name, date and duration (MLflow's Source, Models
        # and Dataset columns would push them out of a laptop-wide window)
        "selectedColumns": [*(column("metrics", m) for m in metrics), *(column("params", p) for p in params)],
        "columnOrder": [], "columnWidths": {}, "runsExpanded": {}, "runsPinned": [], "runsHidden": [],
        "runsVisibilityMap": {}, "runsHiddenMode": "SHOW_ALL", "compareRunCharts": None,
        "compareRunSections": None, "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False,
        "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None, "groupsExpanded": {},
        "autoRefreshEnabled": False,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def _shown(state: dict[str, Any], kind: str) -> list[str]:
    prefix = f"{kind}.`"
    return [c[len(prefix):-1] for c in state.get("selectedColumns", []) if c.startswith(prefix)]


def updated_view(current: str | None, family_name: str, headline: str, ascending: bool,
                 run_metrics: set[str], run_params: set[str]) -> str:
    """The tag's new JSON: the columns already shown plus the finished run's summary metrics
    (components/metrics_files.py) and its ``model.`` params."""
    from components.metrics_files import summary_keys

    try:
        state = json.loads(current) if current else {}
    except ValueError:  # a hand-edited tag: start over
        state = {}
    shown_metrics, shown_params = _shown(state, "metrics"), _shown(state, "params")
    wanted = [k for k in summary_keys(family_name, headline) if k in run_metrics or k in shown_metrics]
    params = list(dict.fromkeys([*shown_params, *sorted(p for p in run_params if p.startswith("model."))]))
    return json.dumps(view_state(headline, ascending, wanted, params[:MAX_PARAMS]))


def update_for_run(run: Any) -> None:
    """Fold a finished run's columns into its family experiment's saved view (runs of other
    experiments, e.g. the stand-alone evaluator's, leave it alone)."""
    import mlflow

    from components.families import FAMILIES
    from components.metrics.direction import metric_mode

    client = mlflow.MlflowClient()
    experiment = client.get_experiment(run.info.experiment_id)
    family = next((f for f in FAMILIES.values() if f.experiment == experiment.name), None)
    if family is None:
        return
    text = updated_view(experiment.tags.get(VIEW_TAG), family.name, family.headline,
                        metric_mode(family.headline) == "min", set(run.data.metrics), set(run.data.params))
    if text != experiment.tags.get(VIEW_TAG):
        client.set_experiment_tag(experiment.experiment_id, VIEW_TAG, text)


def link(base_url: str, experiment_id: str) -> str:
    """The saved view's address under an MLflow UI at ``base_url``."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}"


def saved_views(uri: str) -> dict[str, str]:
    """``{experiment name: id}`` of the active experiments of a local SQLite store holding the saved view."""
    import sqlite3

    from components.tracking_relocate import sqlite_path

    database = sqlite_path(uri)
    if database is None or not database.is_file():
        return {}
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT e.name, e.experiment_id FROM experiments e JOIN experiment_tags t "
            "ON e.experiment_id = t.experiment_id WHERE t.key = ? AND e.lifecycle_stage = 'active' "
            "ORDER BY e.experiment_id", (VIEW_TAG,)).fetchall()
    return {name: str(experiment_id) for name, experiment_id in rows}


def main(argv: list[str] | None = None) -> None:
    """``make dashboard``'s preparation: a moved store's artifacts follow it, then each family's link."""
    import sys

    from components.tracking_relocate import relocate_artifacts

    uri, url = (sys.argv[1:] if argv is None else argv)[:2]
    for name, location in relocate_artifacts(uri).items():
        print(f"MLflow store moved: experiment {name!r} now reads its artifacts from {location}")
    for name, experiment_id in saved_views(uri).items():
        print(f"  current runs of {name}: {link(url, experiment_id)}")


if __name__ == "__main__":
    main()
