"""A local MLflow store that moved with its folder keeps its figures.

MLflow records each experiment's and run's artifact location as an absolute ``file://`` URI
(``<repo>/mlartifacts/<experiment>``): move or copy the repository (or ``mlflow.db`` with
``mlartifacts/`` beside it) and the dashboard finds none of the files. :func:`relocate_artifacts`
points every such experiment, its runs and logged models at the ``mlartifacts/`` beside the
database, when the recorded folder is gone and the new one holds the experiment's files. It rewrites
the SQLite tables MLflow keeps these URIs in (MLflow has no API to change an artifact location); any
other store or location is left alone. ``make dashboard`` and every stage's first MLflow call run it.

    python -m components.tracking_relocate [sqlite:///path/to/mlflow.db]
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ARTIFACTS_DIR = "mlartifacts"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///")).split("?", 1)[0]).resolve()


def _folder(location: str) -> Path | None:
    """The local folder of a ``file://`` URI, else None."""
    parts = urlsplit(location)
    return Path(unquote(parts.path)) if parts.scheme == "file" and parts.netloc in ("", "localhost") else None


def relocate_artifacts(uri: str) -> dict[str, str]:
    """Point the store's moved experiments at the ``mlartifacts/`` beside its database; returns
    ``{experiment name: its new artifact location}`` (empty when nothing moved)."""
    database = sqlite_path(uri)
    if database is None or not database.is_file():
        return {}
    here = database.parent / ARTIFACTS_DIR
    moved = {}
    with sqlite3.connect(database) as db:
        for experiment_id, name, location in db.execute(
                "SELECT experiment_id, name, artifact_location FROM experiments").fetchall():
            old = _folder(location or "")
            if old is None or old.parent.name != ARTIFACTS_DIR or old.parent == here:
                continue  # not ours, or already here
            new = here / old.name
            if old.exists() or not new.is_dir():
                continue  # the recorded folder is still there, or the new one does not hold this experiment
            old_prefix, new_prefix = old.as_uri(), new.as_uri()
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                       (new_prefix, experiment_id))
            for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - fixed names
                           f"WHERE experiment_id = ? AND ({column} = ? OR substr({column}, 1, ?) = ?)",
                           (new_prefix, len(old_prefix) + 1, experiment_id, old_prefix, len(old_prefix) + 1,
                            old_prefix + "/"))
            moved[name] = new_prefix
    return moved


def main(argv: list[str] | None = None) -> None:
    from components.tracking import tracking_uri

    args = sys.argv[1:] if argv is None else argv
    uri = args[0] if args else tracking_uri()
    for name, location in relocate_artifacts(uri).items():
        print(f"MLflow store moved: experiment {name!r} now reads its artifacts from {location}")


if __name__ == "__main__":
    main()
