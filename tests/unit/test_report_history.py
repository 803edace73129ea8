"""The report's trend of a family's headline metric across the runs MLflow recorded."""

from __future__ import annotations

import json

from components.metrics_files import write_stage_metrics
from components.report.build import write_report
from components.report.collect import collect
from components.report.interactive import history_chart
from components.report.runs import RunStore


def _store(root):
    """Experiment `segmentation`: unet trained at two commits, fcn once, a failed unet run, a sweep trial
    and an analysis run that logged other metrics."""
    import mlflow
    from mlflow.entities import Metric

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("segmentation", artifact_location=(root / "artifacts").as_uri())

    def run(model, commit, miou, start, status="FINISHED", **tags):
        created = client.create_run(experiment, start_time=start, tags={
            "courselab.model": model, "mlflow.source.git.commit": commit, "courselab.params_hash": f"h-{commit}",
            **tags})
        if miou is not None:
            client.log_batch(created.info.run_id, metrics=[Metric("val/miou", miou, start, 1)])
        client.set_terminated(created.info.run_id, status=status)
        return created.info.run_id

    ids = {"unet-1": run("unet", "a" * 40, 0.70, 1_000_000), "fcn": run("fcn", "a" * 40, 0.60, 1_000_500),
           "unet-2": run("unet", "b" * 40 + "-dirty", 0.80, 2_000_000)}
    run("unet", "c" * 40, 0.99, 3_000_000, status="FAILED")
    run("unet", "c" * 40, 0.95, 3_000_000, **{"mlflow.parentRunId": ids["unet-1"], "courselab.sweep": "x"})
    run("probe", "c" * 40, None, 3_000_000)
    return uri, ids


def test_history_lists_every_finished_training_run_oldest_first(tmp_path):
    uri, ids = _store(tmp_path)
    points = RunStore(uri).history("segmentation", "val/miou")
    assert [(p.model, p.value, p.run_id) for p in points] == [
        ("unet", 0.70, ids["unet-1"]), ("fcn", 0.60, ids["fcn"]), ("unet", 0.80, ids["unet-2"])]
    assert RunStore(uri).history("no-such-experiment", "val/miou") == [] and RunStore(None).history("x", "y") == []

    chart = history_chart(points, "val/miou", "history-segmentation")
    figure = json.loads(chart[chart.index("var f=") + 6:chart.index(";Plotly.newPlot")])
    unet = next(t for t in figure["data"] if t["name"] == "unet")
    assert unet["y"] == [0.70, 0.80] and unet["customdata"] == [["a" * 12, "h-" + "a" * 40],
                                                               ["b" * 12 + "-dirty", "h-" + "b" * 40 + "-dirty"]]
    assert history_chart([p for p in points if p.model == "fcn"], "val/miou", "h") is None  # one run: no trend


def test_the_report_draws_the_trend_under_the_leaderboard(tmp_path):
    uri, ids = _store(tmp_path)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for model, run_id in (("unet", ids["unet-2"]), ("fcn", ids["fcn"])):
        write_stage_metrics(tmp_path, f"segmentation-{model}", {
            "headline_metric": "val/miou", "val/miou": 0.8, "mlflow_run_id": run_id, "git_commit": "b" * 40})
    report = collect(metrics, tmp_path / "plots", tmp_path / "figures", None, RunStore(uri))
    assert len(report.families[0].history) == 3
    pages = write_report(report, tmp_path / "reports")
    page = pages["html"].read_text()
    assert 'id="history-segmentation"' in page and 'src="assets/plotly.min.js"' in page
    assert (tmp_path / "reports" / "assets" / "plotly.min.js").is_file()
