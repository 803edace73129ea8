"""A local MLflow store moved with its folder (mlflow.db beside mlartifacts/) keeps its artifacts."""

from __future__ import annotations

import shutil

from components.tracking_relocate import relocate_artifacts, sqlite_path


def _store(root):
    """A store as the stages make it: experiment `segmentation` with its artifacts in root/mlartifacts,
    one run with a figure; and an experiment of someone else's location."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    ours = client.create_experiment("segmentation", artifact_location=(root / "mlartifacts" / "segmentation").as_uri())
    theirs = client.create_experiment("elsewhere", artifact_location=(root / "their-artifacts").as_uri())
    figure = root / "masks.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\nfigure")
    run = client.create_run(ours)
    client.log_artifact(run.info.run_id, str(figure), "figures")
    other = client.create_run(theirs)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, other.info.run_id


def test_a_moved_store_finds_its_figures_in_its_new_folder(tmp_path):
    import mlflow

    first, moved = tmp_path / "repo", tmp_path / "moved-repo"
    first.mkdir()
    run_id, other_id = _store(first)
    shutil.move(first, moved)
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    assert client.get_run(run_id).info.artifact_uri.startswith(first.as_uri())  # what MLflow recorded

    assert relocate_artifacts(uri) == {"segmentation": (moved / "mlartifacts" / "segmentation").as_uri()}
    run = client.get_run(run_id)
    assert run.info.artifact_uri == f"{(moved / 'mlartifacts' / 'segmentation').as_uri()}/{run_id}/artifacts"
    assert client.get_experiment_by_name("segmentation").artifact_location.startswith(moved.as_uri())
    local = client.download_artifacts(run_id, "figures/masks.png", str(tmp_path))
    assert open(local, "rb").read().endswith(b"figure")
    # someone else's location is left as it was; a second call has nothing to do
    assert client.get_run(other_id).info.artifact_uri.startswith((first / "their-artifacts").as_uri())
    assert relocate_artifacts(uri) == {}


def test_a_store_whose_recorded_folder_still_exists_is_left_alone(tmp_path):
    first, copy = tmp_path / "repo", tmp_path / "copy"
    first.mkdir()
    _store(first)
    shutil.copytree(first, copy)  # a copy: the original's artifacts are still where MLflow says
    assert relocate_artifacts(f"sqlite:///{copy / 'mlflow.db'}") == {}
    assert relocate_artifacts("http://127.0.0.1:5000") == {} and relocate_artifacts("sqlite:///nowhere.db") == {}
    assert sqlite_path(f"sqlite:///{copy / 'mlflow.db'}") == copy / "mlflow.db"
