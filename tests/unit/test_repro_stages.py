"""bench/repro_stages.py: stage times from a timestamped `dvc repro` log, grouped by the family owning each stage."""

from __future__ import annotations

import pytest

from bench import repro_stages
from components.families import FAMILIES

LOG = """\
0 python -m venv .venv
3 Running stage 'prepare':
3 > python -m pipelines.prepare
11 Updating lock file 'dvc.lock'
12 Running stage 'train_image_translation@pix2pix':
100 (continued output)
149 Updating lock file 'dvc.lock'
150 Running stage 'selfsup_probe@rotation':
160 Updating lock file 'dvc.lock'
170 Running stage 'rl@dqn':
400 Updating lock file 'dvc.lock'
410 Running stage 'report':
414 Updating lock file 'dvc.lock'
415 Use `dvc push` to send your updates to remote storage.
"""


def test_each_stage_lasts_until_the_next_one_starts(tmp_path):
    log = tmp_path / "repro.log"
    log.write_text(LOG + "not a timestamped line\n")
    times, total = repro_stages.stage_times(repro_stages.read_log(log))
    assert times == {"prepare": 9, "train_image_translation@pix2pix": 138, "selfsup_probe@rotation": 20,
                     "rl@dqn": 240, "report": 5}
    assert total == 412  # from the first stage on: make's venv is not the pipeline's


def test_a_stage_stopped_before_its_lock_entry_is_left_out():
    lines = [(0.0, "Running stage 'prepare':"), (9.0, "Updating lock file 'dvc.lock'"),
             (10.0, "Running stage 'train_language@char_lstm':"), (70.0, "[language/char_lstm] epoch 1/2")]
    times, total = repro_stages.stage_times(lines)
    assert times == {"prepare": 10.0} and total == 70.0


def test_stages_belong_to_the_family_that_declares_them():
    owned = repro_stages.owners()
    assert owned["train_image_translation"] == "image_translation"  # not translation's
    assert owned["tune_translation"] == "translation"
    assert owned["selfsup_probe"] == "selfsup" and owned["adversarial_transfer"] == "adversarial"
    assert owned["rl"] == "rl" and owned["prepare"] == owned["report"] == repro_stages.PIPELINE
    assert {FAMILIES[name].stage for name in FAMILIES} <= set(owned)


def test_the_table_names_stages_over_the_budget_and_the_verdict(tmp_path):
    times = {"prepare": 70.0, "train_generative@dcgan": 200.0, "train_generative@vae": 100.0, "rl@dqn": 150.0}
    rows = repro_stages.table(times, total=3700.0)
    generative = next(row for row in rows if "| generative |" in row)
    assert "| 2 | 5.0 | train_generative@dcgan 200 | train_generative@dcgan 200 |" in generative
    assert "| rl | 1 | 2.5 | rl@dqn 150 | - |" in next(row for row in rows if "| rl |" in row)
    assert rows[0] == generative  # the costliest family first
    assert "**61.7**" in rows[-1] and "over the 60-minute budget" in rows[-1]


def test_a_missing_log_is_named(tmp_path):
    with pytest.raises(SystemExit, match="nope.log not found"):
        repro_stages.main(["--log", str(tmp_path / "nope.log")])
