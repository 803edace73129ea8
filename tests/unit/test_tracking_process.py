"""The train stage's MLflow run, driven from its own process (components/tracking_process.py)."""

from __future__ import annotations

import pytest

from components import tracking
from components.errors import UserError
from components.tracking_process import TrackingProcess


@pytest.fixture(scope="module")
def _database(tmp_path_factory):
    """One SQLite store for the module (creating MLflow's schema takes seconds)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("tracking-process")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return root, MlflowClient(uri), uri


@pytest.fixture
def store(_database, monkeypatch):
    """The module's store as this process's (and so the child's) tracking store."""
    root, client, uri = _database
    monkeypatch.setenv("COURSELAB_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracking.configure()  # this process's client too (the in-process runs below; another test may have moved it)
    return client


def _the_run(client, experiment: str):
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def test_a_run_logged_through_the_process_has_everything_and_a_rerun_continues_it(store, tmp_path):
    artifact = tmp_path / "summary.json"
    artifact.write_text("{}\n")
    ids = []
    for epoch in (1, 2):
        with TrackingProcess.start() as tracker:
            tracker.open_run("rerun", "probe-key", "model", {"lr": 0.1, "depth": None}, {"courselab.model": "m"})
            tracker.log_metrics({"val/loss": 1.0 / epoch}, step=epoch)
            tracker.log_png(b"\x89PNG fake", f"figures/epoch_{epoch:03d}/masks.png")
            tracker.set_tags({"courselab.test": epoch})
            tracker.log_artifact(artifact)
            ids.append(tracker.run_id)

    run = _the_run(store, "rerun")
    assert ids == [run.info.run_id] * 2  # the rerun re-opened the first run
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "depth": "None"}
    assert run.data.tags[tracking.RUN_KEY_TAG] == "probe-key" and run.data.tags["courselab.test"] == "2"
    history = store.get_metric_history(run.info.run_id, "val/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]
    figures = {f.path for f in store.list_artifacts(run.info.run_id, "figures/epoch_002")}
    assert figures == {"figures/epoch_002/masks.png"}
    assert "summary.json" in {f.path for f in store.list_artifacts(run.info.run_id)}


def test_an_exception_in_the_stage_ends_the_run_failed(store):
    with pytest.raises(KeyError), TrackingProcess.start() as tracker:
        tracker.open_run("failing", "failing", "model", {}, {})
        raise KeyError("the stage broke")
    assert _the_run(store, "failing").info.status == "FAILED"


def test_when_the_stage_dies_the_process_ends_the_run_killed(store):
    tracker = TrackingProcess.start()
    tracker.open_run("probe", "killed", "model", {}, {})
    run_id = tracker.run_id
    tracker._conn.close()  # what SIGKILL of the stage does to the child's socket
    assert tracker._proc.wait(timeout=60) == 0
    assert store.get_run(run_id).info.status == "KILLED"


def test_a_store_that_fails_is_one_line_at_the_next_call(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    with pytest.raises(UserError, match="MLflow tracking store") as raised, TrackingProcess.start() as tracker:
        tracker.open_run("probe", "key", "model", {}, {})
        tracker.run_id  # noqa: B018 - waits for the run, so raises the open's error
    assert "\n" not in str(raised.value)


def test_a_dead_tracking_process_is_an_error_not_a_hang():
    tracker = TrackingProcess.start()
    tracker._proc.kill()
    tracker._proc.wait()
    with pytest.raises(RuntimeError, match="MLflow tracking process exited"):
        tracker.open_run("probe", "key", "model", {}, {})
        tracker.run_id  # noqa: B018


def test_the_newest_finished_run_of_a_stage_is_its_current_one(store):
    """A rerun under new params (a new run key) takes the `current` tag from the stage's earlier run; a
    failed run takes nothing; another stage's runs are untouched."""
    stage = {tracking.STAGE_TAG: "train_segmentation@unet"}

    def run(key: str, stage_tags: dict, fail: bool = False) -> str:
        with TrackingProcess.start() as tracker:
            tracker.open_run("current", key, "unet", {"lr": key}, stage_tags)
            tracker.log_metrics({"val/miou": 0.5}, step=1)
            run_id = tracker.run_id
            if fail:
                raise RuntimeError("the stage failed")
        return run_id

    def current() -> dict[str, str]:
        experiment = store.get_experiment_by_name("current").experiment_id
        return {r.info.run_id: r.data.tags.get(tracking.CURRENT_TAG) for r in store.search_runs([experiment])}

    first = run("a", stage)
    other = run("o", {tracking.STAGE_TAG: "train_segmentation@fcn"})
    assert current() == {first: "true", other: "true"}
    second = run("b", stage)
    assert current() == {first: "false", second: "true", other: "true"}
    with pytest.raises(RuntimeError):
        run("c", stage, fail=True)
    failed = next(r for r, tag in current().items() if r not in (first, second, other))
    assert current() == {first: "false", second: "true", other: "true", failed: None}
    assert run("a", stage) == first  # the first params again: their run is reopened and current again
    assert current() == {first: "true", second: "false", other: "true", failed: None}


def test_an_analysis_stage_run_is_current_when_it_finishes(store):
    with tracking.training_run("current-analysis", "k", "probe", {}, {tracking.STAGE_TAG: "selfsup_probe"}) as run:
        run_id = run.info.run_id
    assert store.get_run(run_id).data.tags[tracking.CURRENT_TAG] == "true"
    with pytest.raises(ValueError), tracking.training_run("current-analysis", "k2", "probe", {},
                                                          {tracking.STAGE_TAG: "selfsup_probe"}) as run:
        failed = run.info.run_id
        raise ValueError("no")
    assert store.get_run(failed).info.status == "FAILED" and tracking.CURRENT_TAG not in store.get_run(failed).data.tags
    assert store.get_run(run_id).data.tags[tracking.CURRENT_TAG] == "true"


def test_experiments_describe_their_family_and_the_current_runs_search(store):
    experiment = store.get_experiment(tracking.ensure_experiment("segmentation"))
    note = experiment.tags[tracking.NOTE_TAG]
    assert "`val/miou`" in note and "tags.courselab.current = 'true'" in note
