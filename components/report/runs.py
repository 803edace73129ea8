"""Links from the report to the MLflow dashboard, looked up in the tracking store by run id.

A run's page in the MLflow UI is ``<dashboard>/#/experiments/<experiment_id>/runs/<run_id>``; the
metrics files carry the run id, the store knows its experiment. The report must build without the
store (a fresh clone, a copied ``metrics/`` folder, a tracking server that is down), so every
failure here becomes a :class:`RunLink` without a URL and a note saying why; nothing raises.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DASHBOARD_URL = "http://127.0.0.1:5000"  # where `make dashboard` serves the MLflow UI


@dataclass(frozen=True)
class RunLink:
    url: str | None
    note: str = ""  # why there is no link ("" when there is one)


def run_url(dashboard_url: str, experiment_id: str, run_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _local_store_path(uri: str) -> Path | None:
    """The database file (or file-store folder) of a local tracking URI; None for a server."""
    if uri.startswith("sqlite:"):
        path = uri.removeprefix("sqlite:").removeprefix("///").split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else Path("/nonexistent:memory:")
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file:").removeprefix("//"))
    if "://" not in uri:
        return Path(uri)
    return None


@dataclass(frozen=True)
class HistoryPoint:
    """One finished run of a model: when it started, at which commit, and its headline metric."""

    model: str
    start_ms: int
    commit: str
    params_hash: str
    value: float
    run_id: str


class RunStore:
    """Run lookups in one MLflow tracking store, connected on first use and cached per run id.

    ``problem`` is None while the store answers, else one line on why it cannot (then every link
    carries that line as its note).
    """

    def __init__(self, tracking_uri: str | None, dashboard_url: str = DEFAULT_DASHBOARD_URL):
        self.tracking_uri = tracking_uri
        self.dashboard_url = dashboard_url.rstrip("/")
        self.problem: str | None = None if tracking_uri else "no MLflow tracking store configured"
        self._client: Any = None
        self._server = False
        self._runs: dict[str, Any] = {}

    def _connect(self) -> Any:
        if self._client is not None or self.problem is not None:
            return self._client
        uri = str(self.tracking_uri)
        local = _local_store_path(uri)
        if local is not None and not local.exists():
            # Opening a missing SQLite store would create an empty one: say it is absent instead.
            self.problem = f"MLflow store not found: {uri}"
            return None
        self._server = local is None
        try:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=uri)
        except Exception as err:  # noqa: BLE001 - any failure to open the store means "no links"
            self.problem = f"MLflow store {uri} cannot be opened: {_first_line(err)}"
        return self._client

    def run(self, run_id: str) -> Any | None:
        """The MLflow run (``mlflow.entities.Run``), or None when it or the store is absent."""
        if not run_id:
            return None
        if run_id in self._runs:
            return self._runs[run_id]
        client = self._connect()
        if client is None:
            return None
        from mlflow.exceptions import MlflowException

        try:
            with _quick_requests(self._server):
                run = client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                self.problem = f"MLflow store {self.tracking_uri} did not answer: {_first_line(err)}"
            run = None
        except Exception as err:  # noqa: BLE001 - a broken store is reported once, as a note
            self.problem = f"MLflow store {self.tracking_uri} did not answer: {_first_line(err)}"
            run = None
        self._runs[run_id] = run
        return run

    def link(self, run_id: str) -> RunLink:
        """A link to the run's page in the dashboard, or none with the reason."""
        if not run_id:
            return RunLink(None, "no MLflow run id in the metrics file")
        run = self.run(run_id)
        if run is not None:
            return RunLink(run_url(self.dashboard_url, run.info.experiment_id, run_id))
        if self.problem:
            return RunLink(None, self.problem)
        return RunLink(None, "run not in the MLflow store")

    def metric(self, run_id: str, key: str) -> float | None:
        """The run's latest value of metric ``key``, when the store has the run and the metric."""
        run = self.run(run_id)
        return None if run is None else run.data.metrics.get(key)

    def history(self, experiment: str, headline: str) -> list[HistoryPoint]:
        """Every finished training run in ``experiment`` (sweep trials and analysis stages' runs left out)
        that logged ``headline``, oldest first; [] when the store or experiment is absent."""
        client = self._connect()
        if client is None:
            return []
        try:
            with _quick_requests(self._server):
                found = client.get_experiment_by_name(experiment)
                runs = [] if found is None else client.search_runs(
                    [found.experiment_id], filter_string="attributes.status = 'FINISHED'", max_results=5000)
        except Exception as err:  # noqa: BLE001 - a broken store is reported once, as a note
            self.problem = self.problem or f"MLflow store {self.tracking_uri} did not answer: {_first_line(err)}"
            return []
        points = []
        for run in runs:
            tags = run.data.tags
            value = run.data.metrics.get(headline)
            nested = "mlflow.parentRunId" in tags or "courselab.sweep" in tags
            if value is None or nested or "courselab.model" not in tags:
                continue
            points.append(HistoryPoint(tags["courselab.model"], int(run.info.start_time or 0),
                                       tags.get("mlflow.source.git.commit", ""), tags.get("courselab.params_hash", ""),
                                       float(value), run.info.run_id))
        return sorted(points, key=lambda p: (p.start_ms, p.model))


@contextmanager
def _quick_requests(server: bool) -> Iterator[None]:
    """Against a tracking server, one try with a short timeout instead of MLflow's retries with
    back-off (minutes when it is down); the environment is restored afterwards."""
    if not server:
        yield
        return
    saved = {k: os.environ.get(k) for k in _QUICK}
    os.environ.update({k: v for k, v in _QUICK.items() if saved[k] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


_QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", "") or err).strip()
    return text.splitlines()[0] if text else type(err).__name__
