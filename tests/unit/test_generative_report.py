"""The report ranks generative models by FID ascending (lower is better) and shows the reference points."""

from __future__ import annotations

import json

from components.report.markdown import render


def test_report_ranks_fid_ascending_with_reference_columns(tmp_path):
    for model, fid in (("wgan_gp", 31.0), ("dcgan", 13.5), ("vae", 46.3)):
        (tmp_path / f"generative-{model}.json").write_text(json.dumps(
            {"headline_metric": "val/fid_evaluator", "val/fid_evaluator": fid, "val/is_evaluator": 8.0,
             "val/fid_evaluator_floor": 4.6, "val/fid_evaluator_untrained": 942.0, "epochs": 100}))
    report = render(tmp_path)
    assert report.index("| dcgan |") < report.index("| wgan_gp |") < report.index("| vae |")
    header = next(line for line in report.splitlines() if line.startswith("| model | val/fid_evaluator"))
    assert "val/fid_evaluator_floor" in header and "val/fid_evaluator_untrained" in header
