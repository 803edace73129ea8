"""The report ranks generative models by FID ascending (lower is better) and shows the reference points."""

from __future__ import annotations

from components.metrics_files import write_stage_metrics
from components.report import markdown
from components.report.collect import collect
from components.report.runs import RunStore


def test_report_ranks_fid_ascending_with_reference_points(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for model, fid in (("wgan_gp", 31.0), ("dcgan", 13.5), ("vae", 46.3)):
        write_stage_metrics(tmp_path, f"generative-{model}", {
            "headline_metric": "val/fid_evaluator", "val/fid_evaluator": fid, "val/is_evaluator": 8.0,
            "val/fid_evaluator_floor": 4.6, "val/fid_evaluator_untrained": 942.0, "epochs": 100})
    report = collect(metrics, tmp_path / "plots", tmp_path / "figures", None, RunStore(None), None)
    page = markdown.render(report)
    assert page.index("| dcgan |") < page.index("| wgan_gp |") < page.index("| vae |")
    dcgan = next(line for line in page.splitlines() if line.startswith("| dcgan |"))
    assert "floor (real vs real) 4.6" in dcgan and "untrained 942" in dcgan
