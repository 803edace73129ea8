"""Stage `report`: the comparison report of every model, as HTML and Markdown.

    python -m pipelines.report [--metrics metrics] [--plots plots] [--figures figures]
                               [--params params.yaml] [--out reports]
                               [--dashboard-url http://127.0.0.1:5000] [--tracking-uri URI]

Reads metrics/<family>-<model>.json (any subset of the stages), metrics/tune-<family>.json (sweeps,
when present), plots/<family>-<model>.csv (learning curves), figures/<family>-<model>/*.png, and the
models' params (params.yaml with tuned/<family>.yaml on top, as the train stages apply them); writes
(atomically, as one folder):
    reports/index.html    leaderboards, learning curves, figures, sweeps, MLflow run links
    reports/index.md      the same in Markdown
    reports/assets/       the curves and a copy of every figure: the folder works opened from disk
Run links point at the MLflow UI (`make dashboard`); the run's experiment comes from the tracking
store (params' runtime.mlflow_tracking_uri, else $MLFLOW_TRACKING_URI, else the repo's mlflow.db).
Without the store, or without a run in it, the row says so instead of linking.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from components import tracking
from components.config import load_params
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.report.build import write_report
from components.report.collect import collect
from components.report.runs import DEFAULT_DASHBOARD_URL, RunStore


def dashboard_url(flag: str | None, uri: str) -> str:
    """The MLflow UI the links open: the flag, else the tracking server itself, else `make dashboard`'s."""
    if flag:
        return flag
    return uri if uri.startswith(("http://", "https://")) else DEFAULT_DASHBOARD_URL


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="metrics", type=Path)
    parser.add_argument("--plots", default="plots", type=Path)
    parser.add_argument("--figures", default="figures", type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--out", default="reports", type=Path, help="the report folder (replaced whole)")
    parser.add_argument("--dashboard-url", default=None,
                        help=f"MLflow UI base URL for run links (default: the tracking server, else "
                             f"{DEFAULT_DASHBOARD_URL}, where `make dashboard` serves)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store to look runs up in")
    args = parser.parse_args(argv)
    if not args.metrics.is_dir():
        raise UserError(f"metrics directory not found: {args.metrics.resolve()} (run the train stages first)")
    if args.dashboard_url and not args.dashboard_url.startswith(("http://", "https://")):
        raise UserError(f"--dashboard-url must be an http(s) URL, got {args.dashboard_url!r}")
    if args.out.suffix:
        raise UserError(f"--out is the report folder, not a file: {args.out} (e.g. --out reports)")
    params = load_params(args.params)
    uri = args.tracking_uri or tracking.tracking_uri(params.runtime.mlflow_tracking_uri)
    store = RunStore(uri, dashboard_url(args.dashboard_url, uri))
    # tuned/<family>.yaml (the sweeps' values the train stages apply) lives beside params.yaml
    report = collect(args.metrics, args.plots, args.figures, params, store, root=args.params.resolve().parent)
    pages = write_report(report, args.out)
    rows = sum(len(f.rows) for f in report.families)
    print(f"report: {rows} models in {len(report.families)} families -> {pages['html']} and {pages['markdown']}")
    if report.missing:
        print(f"report: {len(report.missing)} of {len(report.expected)} expected stages have no metrics file: "
              + ", ".join(report.missing))
    if store.problem:
        print(f"report: no MLflow run links: {store.problem}")


if __name__ == "__main__":
    run_and_exit(main)
