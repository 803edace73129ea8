"""MLflow conventions: where runs go, how they are named, tagged and resumed, and who logs.

- Tracking URI: ``runtime.mlflow_tracking_uri`` in params, else ``MLFLOW_TRACKING_URI``, else
  ``sqlite:///<repo>/mlflow.db`` (MLflow 3's file store is deprecated). Artifacts of a local
  store live in ``<repo>/mlartifacts/<experiment>``; a store moved with its repository is pointed
  at its new ``mlartifacts/`` (:mod:`components.tracking_relocate`).
- One experiment per family (``segmentation``, ``detection``, ...).
- An http(s) tracking server must answer ``/health`` within seconds when a stage configures it
  (:func:`configure`, before Ray starts), and MLflow's own HTTP timeout and retries are capped for
  the process and its Ray workers, so an unreachable server fails the stage in seconds with one
  line instead of minutes of silent retries.
- A training run is keyed by its Ray Train run name (``courselab.run_key``): a rerun re-opens the
  newest MLflow run with that key, unfinished or finished, instead of starting a second one; its
  metrics history continues (more epochs resume from the checkpoint) and params are logged once.
- Per-epoch metrics and figures are logged by :class:`RunLogger` from rank 0 of the Ray
  workers (or from the driver); every other rank gets a no-op logger, so DDP never double-logs.
- A sweep is a parent run (:func:`sweep_run`, tagged ``courselab.sweep``) in the family's
  experiment; each Tune trial is a child run (:func:`open_child_run`, ``mlflow.parentRunId``)
  that the trial's rank 0 fills epoch by epoch and the sweep driver closes (:func:`end_run`).
- Every run logs ``best/<metric>`` beside its metrics (``components.metrics.direction.best_summaries``).
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from components.errors import UserError
from components.runtime import repo_root

RUN_KEY_TAG = "courselab.run_key"
STAGE_TAG = "courselab.dvc_stage"
PARAMS_HASH_TAG = "courselab.params_hash"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
# "true" on the newest finished run of each stage (its outputs are the ones in metrics/ and models/),
# "false" on the stage's earlier runs: the MLflow UI's search `tags.courselab.current = 'true'` hides
# superseded runs of earlier repros.
CURRENT_TAG = "courselab.current"

# configure(): how long the reachability check of an http(s) server may take in all (DNS
# included), and MLflow's HTTP settings for every later request of this process and its Ray
# workers (MLflow's defaults, 120 s and 7 retries with backoff, add up to minutes of silence
# against a dead server). Values the user set are kept.
CHECK_TIMEOUT_S = 8.0
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}


def tracking_uri(configured: str | None = None) -> str:
    """The tracking URI this process should use (see module docstring for the order)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{repo_root() / 'mlflow.db'}"


def configure_environment(configured: str | None = None) -> str:
    """Point this process's environment (so its children: Ray workers, the tracking process of
    :mod:`components.tracking_process`) at the tracking store, without importing MLflow.

    An http(s) server must answer within :data:`CHECK_TIMEOUT_S`, else a :class:`UserError`
    names the URI and the fix; call this before Ray starts.
    """
    uri = tracking_uri(configured)
    if urlsplit(uri).scheme in ("http", "https"):
        for key, value in HTTP_ENV.items():
            os.environ.setdefault(key, value)
        check_server(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def configure(configured: str | None = None) -> str:
    """:func:`configure_environment`, and this process's MLflow client pointed at the store."""
    import mlflow

    uri = configure_environment(configured)
    mlflow.set_tracking_uri(uri)
    return uri


def _redacted(uri: str) -> str:
    """``uri`` without a password in it (http://user:secret@host -> http://user:***@host)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _ssl_context():
    """The TLS settings MLflow's client takes from the environment, for the health check."""
    import ssl

    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        return ssl._create_unverified_context()  # the user asked MLflow not to verify, so do we
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if cert := os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        context.load_cert_chain(cert)
    return context


def _probe(url: str, timeout: float) -> str | None:
    """None when ``url`` answers below HTTP 500, else why not (a few words)."""
    import socket
    import urllib.error
    import urllib.request

    try:
        context = _ssl_context() if url.startswith("https:") else None
        with urllib.request.urlopen(url, timeout=timeout, context=context):
            return None
    except urllib.error.HTTPError as err:  # it answered: auth or routing is MLflow's to report
        return None if err.code < 500 else f"it answered HTTP {err.code}"
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, socket.gaierror):
            return "host not found"
        if isinstance(reason, TimeoutError):
            return f"no answer within {timeout:.0f} s"
        return str(getattr(reason, "strerror", None) or reason)
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except OSError as err:
        return str(err.strerror or err) + (f": {err.filename}" if err.filename else "")
    except Exception as err:  # noqa: BLE001 - a bad certificate path, an odd URL: still one line
        return f"{type(err).__name__}: {err}"


def check_server(uri: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Raise a one-line :class:`UserError` unless the tracking server at ``uri`` answers its
    ``/health`` endpoint within ``timeout`` seconds in all (the probe runs in a daemon thread, so a
    slow DNS lookup cannot hold the stage either)."""
    url = uri.rstrip("/") + "/health"
    outcome: list[str | None] = []
    probe = threading.Thread(target=lambda: outcome.append(_probe(url, timeout / 2)), daemon=True)
    probe.start()
    probe.join(timeout)
    reason = outcome[0] if outcome else f"no answer within {timeout:.0f} s"
    if reason is not None:
        raise UserError(
            f"MLflow tracking server {_redacted(uri)} is unreachable ({reason}); start it, fix "
            "runtime.mlflow_tracking_uri in params.yaml or MLFLOW_TRACKING_URI, or unset both to "
            "log to the repository's mlflow.db"
        )


def _is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:") or "://" not in uri


DEFAULT_EXPERIMENT_ID = "0"  # MLflow's "Default"
NOTE_TAG = "mlflow.note.content"  # an experiment's description in the MLflow UI
# what the UI opens an experiment on: its runs table (MLflow 3 defaults to the GenAI traces overview)
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def describe(experiment: str) -> str:
    """The experiment's description: which family it holds, what ranks its runs, how to see the current ones."""
    from components.families import FAMILIES

    family = next((f for f in FAMILIES.values() if f.experiment == experiment), None)
    what = (f"{family.title}: every run of the `{family.name}` family's stages. Models are ranked by "
            f"`{family.headline}`." if family else f"Runs of courselab's `{experiment}` stages.")
    return (f"{what} Each DVC stage's newest finished run carries the tag `courselab.current = true` (its "
            "outputs are the ones in metrics/ and models/); search `tags.courselab.current = 'true'` to hide "
            "runs of earlier repros. Sweep trials are nested under their parent run.")


_RELOCATED: set[str] = set()


def _relocate_once(uri: str) -> None:
    """A moved local store's artifact locations follow it (components/tracking_relocate.py), once per process."""
    if uri not in _RELOCATED:
        from components.tracking_relocate import relocate_artifacts

        relocate_artifacts(uri)
        _RELOCATED.add(uri)


def _retire_empty_default() -> None:
    """Delete the empty "Default" experiment (id 0) a new local store starts with: nothing here logs
    into it, and the dashboard would list it above the families (the UI can restore it)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        default = client.get_experiment(DEFAULT_EXPERIMENT_ID)
    except MlflowException:  # no experiment 0
        return
    if default is not None and default.lifecycle_stage == "active" and not client.search_runs(
            [DEFAULT_EXPERIMENT_ID], max_results=1, run_view_type=3):  # 3: ViewType.ALL
        client.delete_experiment(DEFAULT_EXPERIMENT_ID)


def ensure_experiment(name: str) -> str:
    """The id of experiment ``name``, created (with a repo-local artifact root and a description) if missing."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        _relocate_once(mlflow.get_tracking_uri())
        experiment = mlflow.get_experiment_by_name(name)
        tags = {NOTE_TAG: describe(name), KIND_TAG: MODEL_TRAINING}
        if experiment is not None:
            for key in tags.keys() - experiment.tags.keys():  # stores from before these tags
                mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, tags[key])
            return experiment.experiment_id
        location = None
        if _is_local_store(mlflow.get_tracking_uri()):
            location = (repo_root() / "mlartifacts" / name).as_uri()
            _retire_empty_default()
        return mlflow.create_experiment(name, artifact_location=location, tags=tags)
    except MlflowException as err:
        raise UserError(f"MLflow tracking store {mlflow.get_tracking_uri()} failed: {err.message}") from None
    except OSError as err:
        raise UserError(f"MLflow tracking store {mlflow.get_tracking_uri()} is unreachable: {err}") from None


def _previous_run_id(experiment_id: str, run_key: str) -> str | None:
    """The newest run with ``run_key`` (any status: an interrupted attempt or a finished run), or None."""
    import mlflow

    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def open_training_run(
    experiment: str, run_key: str, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str]
) -> Any:
    """Start (or re-start: an earlier attempt, interrupted or finished, has the same ``run_key``)
    the MLflow run of one training job as this process's active run, so a rerun continues that
    run's metrics history instead of starting an empty run. Logs the flattened params (once, for
    a new run) and tags; returns MLflow's ``ActiveRun`` (end it with ``mlflow.end_run(status)``).
    """
    import mlflow

    experiment_id = ensure_experiment(experiment)
    run_id = _previous_run_id(experiment_id, run_key)
    run = mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                           run_name=None if run_id else run_name)
    mlflow.set_tags({RUN_KEY_TAG: run_key, **tags})
    if run_id is None:  # params are immutable in MLflow: log them once
        mlflow.log_params({k: "None" if v is None else v for k, v in params.items()})
    return run


def comparable_params(own: Mapping[str, Any], others: Iterable[Mapping[str, Any]], always: Iterable[str],
                      prefix: str, searched: Iterable[str] = ()) -> dict[str, Any]:
    """The handful of params a run logs to MLflow, under names every run of its family shares, so
    the runs table and Compare's plots line runs up: ``always`` (seed, dataset...), the ``prefix``ed
    keys (``model.``) that every other model's run (``others``) has too, and the swept ones
    (``prefix`` + each search-space key) the run has. The full flattened set is its params.json."""
    others = [set(other) for other in others]
    swept = {prefix + key for key in searched}
    always = set(always)
    return {key: value for key, value in own.items()
            if key in always or key in swept or (key.startswith(prefix) and all(key in o for o in others))}


def mark_current(run: Any) -> None:
    """Move :data:`CURRENT_TAG` to ``run`` (a finished run) from the earlier runs of its stage."""
    import mlflow

    stage = run.data.tags.get(STAGE_TAG)
    if not stage:
        return
    client = mlflow.MlflowClient()
    earlier = mlflow.search_runs(
        [run.info.experiment_id], output_format="list",
        filter_string=f"tags.`{STAGE_TAG}` = '{stage}' and tags.`{CURRENT_TAG}` = 'true'")
    for other in earlier:
        if other.info.run_id != run.info.run_id:
            client.set_tag(other.info.run_id, CURRENT_TAG, "false")
    client.set_tag(run.info.run_id, CURRENT_TAG, "true")
    from components.tracking_view import update_for_run

    update_for_run(run)  # the family's saved view shows the columns this run logged


def end_training_run(status: str) -> None:
    """End the active run with ``status``; a FINISHED run becomes its stage's current one."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        return
    if status == "FINISHED":
        mark_current(mlflow.get_run(active.info.run_id))
    mlflow.end_run(status)


@contextmanager
def training_run(
    experiment: str, run_key: str, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str]
) -> Iterator[Any]:
    """:func:`open_training_run` as a context: the run ends FINISHED (and becomes its stage's current
    run) on success, FAILED on an exception (KILLED on Ctrl-C). (A train stage drives the same steps
    from :mod:`components.tracking_process`.)"""
    run = open_training_run(experiment, run_key, run_name, params, tags)
    try:
        yield run
    except BaseException as err:
        end_training_run("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    end_training_run("FINISHED")


SWEEP_TAG = "courselab.sweep"  # on a sweep's parent run and on each of its trials' child runs
TRIAL_TAG = "courselab.trial_id"
PARENT_TAG = "mlflow.parentRunId"  # what mlflow.start_run(parent_run_id=...) sets; the UI nests by it


@contextmanager
def sweep_run(experiment: str, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> Iterator[Any]:
    """Open the parent run of a sweep (a fresh run per sweep; trials attach to it as children).

    Ends FINISHED on success, FAILED on an exception, like :func:`training_run`.
    """
    import mlflow

    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(dict(tags))
        mlflow.log_params({k: "None" if v is None else v for k, v in params.items()})
        yield run


def open_child_run(parent_run_id: str, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                   tracking: str | None = None) -> str:
    """Create a run nested under ``parent_run_id`` (same experiment) from any process, log its
    params and tags, and return its id; it stays RUNNING until :func:`end_run` (a Tune trial may be
    stopped at any point, so whoever outlives it closes it)."""
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    client = MlflowClient(tracking_uri=tracking_uri(tracking))
    parent = client.get_run(parent_run_id)
    run = client.create_run(parent.info.experiment_id, run_name=run_name, tags={PARENT_TAG: parent_run_id, **tags})
    client.log_batch(
        run.info.run_id,
        params=[Param(k, "None" if v is None else str(v)) for k, v in params.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    return run.info.run_id


def end_run(run_id: str, status: str = "FINISHED", metrics: Mapping[str, float] | None = None,
            tags: Mapping[str, str] | None = None, tracking: str | None = None) -> None:
    """Log final ``metrics`` (step 0) and ``tags`` into a run and close it with ``status``."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    client = MlflowClient(tracking_uri=tracking_uri(tracking))
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )
    client.set_terminated(run_id, status=status)


class RunLogger:
    """Logs metrics and figures into one MLflow run from wherever it lives (driver or Ray worker).

    Only an *active* logger writes: build it with ``active = (world_rank == 0)`` inside workers.
    Uses ``MlflowClient`` with an explicit run id, so it needs no active run in this process.
    """

    def __init__(self, run_id: str | None, tracking: str | None = None, active: bool = True):
        self.run_id = run_id
        self.active = active and run_id is not None
        self._client = None
        if self.active:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=tracking_uri(tracking))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if not self.active:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self._client.log_batch(self.run_id, metrics=batch)

    def log_png(self, png: bytes, artifact_file: str) -> None:
        """Log a rendered figure (:func:`figure_png`) as the artifact ``artifact_file`` (e.g.
        ``figures/epoch_003/masks.png``)."""
        self.log_bytes(png, artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        """Log ``data`` as the artifact ``artifact_file`` (a path inside the run's artifacts)."""
        if not self.active:
            return
        artifact = PurePosixPath(artifact_file)
        with tempfile.TemporaryDirectory(prefix="courselab-artifact-") as tmp:
            path = Path(tmp) / artifact.name
            path.write_bytes(data)
            self._client.log_artifact(self.run_id, str(path), str(artifact.parent) if artifact.parent.parts else None)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if self.active:
            self._client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if not self.active:
            return
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (for DVC outputs beside MLflow artifacts), then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
