"""Hostile checkpoints and failed stages (issue 21, probes 2 and 3): a damaged newest checkpoint is
skipped with one line and the run resumes from the newest one that loads (local path and worker
path); when none loads, training starts from scratch, saying so; a state file that would run code
is refused by ``torch.load(weights_only=True)``; a failed stage keeps the previous outputs (DVC
``persist: true`` on the generated stages, and the train stage writes nothing when training raises).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

import components.train.harness as harness
from components.families import FAMILIES
from components.train.checkpoints import COMPLETE_MARKER, UnloadableCheckpoint
from components.train.harness import STATE_FILE, TrainJob, fit, read_checkpoint
from tests.linear_task import LinearTask, linear_job
from tools.dvc_yaml import pipeline


def _Linear(bad_at: int | None = None) -> LinearTask:  # noqa: N802 - reads like the class it builds
    return LinearTask(bad_at=bad_at, momentum=0.9)  # momentum: an optimizer state to checkpoint


def _job(root: Path, epochs: int, num_workers: int = 0) -> TrainJob:
    return linear_job(root, epochs, "hostile-run", num_workers)


@pytest.fixture
def said(monkeypatch) -> list[str]:
    """The harness's progress lines (``_say``), one entry per printed line."""
    lines: list[str] = []
    monkeypatch.setattr(harness, "_say", lines.append)
    return lines


def _checkpoint_dirs(job: TrainJob) -> list[Path]:
    return sorted((Path(job.storage_path) / job.run_name).glob("checkpoint_*"))


def _two_epochs(tmp_path: Path) -> tuple[TrainJob, Path, Path]:
    """A finished 2-epoch run: ``(job, checkpoint of epoch 1, checkpoint of epoch 2)``."""
    job = _job(tmp_path, epochs=2)
    fit(job, task=_Linear())
    older, newest = _checkpoint_dirs(job)
    return job, older, newest


class _RunsCode:
    """Unpickling it (without weights_only) would create ``path``."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('ran')",)


def _truncate(state: Path) -> str:
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    return f"truncated or damaged state.pt ({len(data) // 2} bytes): PytorchStreamReader failed reading zip archive"


def _garbage(state: Path) -> str:
    state.write_bytes(bytes(range(256)) * 4)
    return "state.pt is not a torch checkpoint (1024 bytes)"


def _missing(state: Path) -> str:
    state.unlink()
    return "no state.pt"


def _unmarked(state: Path) -> str:
    (state.parent / COMPLETE_MARKER).unlink()
    return f"no {COMPLETE_MARKER} marker: its upload did not finish"


@pytest.mark.parametrize("damage", [_truncate, _garbage, _missing, _unmarked])
def test_a_damaged_newest_checkpoint_is_skipped_with_one_line_and_the_older_one_resumes(tmp_path, said, damage):
    job, older, newest = _two_epochs(tmp_path)
    reason = damage(newest / STATE_FILE)
    said.clear()

    done = fit(replace(job, epochs=3), task=_Linear())

    notices = [line for line in said if "skipped" in line]
    assert len(notices) == 1 and "\n" not in notices[0], said
    assert notices[0].startswith(f"[test/linear] skipped {newest.name} ({reason}"), notices[0]
    assert f"; resuming from {older.name} (epoch 1) in {job.storage_path}/{job.run_name}" in notices[0]
    assert done.epochs_done == 3 and [row["epoch"] for row in done.history] == [1.0, 2.0, 3.0]
    assert done.resumes[-1]["epoch"] == 1 and done.resumes[-1]["optimizer_fingerprint"] != 0
    # the final checkpoint was written and reads back; the damaged one is pruned once two newer exist
    assert read_checkpoint(_checkpoint_dirs(job)[-1]).epochs_done == 3
    assert newest not in _checkpoint_dirs(job) and len(_checkpoint_dirs(job)) == 2


def test_when_no_checkpoint_loads_training_starts_from_scratch_saying_so(tmp_path, said):
    job, older, newest = _two_epochs(tmp_path)
    _truncate(newest / STATE_FILE)
    _garbage(older / STATE_FILE)
    said.clear()

    done = fit(job, task=_Linear())  # the same epochs: a rerun of a finished stage

    notices = [line for line in said if "skipped" in line]
    assert len(notices) == 1 and "\n" not in notices[0], said
    assert notices[0].startswith(f"[test/linear] skipped {newest.name} (truncated or damaged state.pt")
    assert f", {older.name} (state.pt is not a torch checkpoint (1024 bytes))" in notices[0]
    assert notices[0].endswith(f"; no checkpoint of the run loads: training from scratch "
                               f"(the damaged ones stay in {job.storage_path}/{job.run_name})")
    assert done.epochs_done == 2 and done.resumes == [] and [row["epoch"] for row in done.history] == [1.0, 2.0]
    assert older not in _checkpoint_dirs(job) and newest not in _checkpoint_dirs(job)  # pruned by the new ones


class _Wider(LinearTask):
    """The same job (params, run name) after its network's code changed: 4 -> 2 -> 1 instead of 4 -> 1."""

    def __init__(self) -> None:
        super().__init__(momentum=0.9)
        self.modules = {"net": torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 1))}


def test_a_checkpoint_of_a_changed_network_is_refused_naming_the_folder(tmp_path, said):
    from components.errors import UserError

    job, older, newest = _two_epochs(tmp_path)
    with pytest.raises(UserError) as raised:
        fit(replace(job, epochs=3), task=_Wider())
    message = str(raised.value)
    assert "\n" not in message and f"checkpoint {newest.name} in {job.storage_path}/{job.run_name}" in message
    assert "does not fit the network the code now builds" in message and "train from scratch" in message
    assert _checkpoint_dirs(job) == [older, newest]  # nothing was deleted or overwritten


def test_a_state_file_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path, said):
    job, older, newest = _two_epochs(tmp_path)
    ran = tmp_path / "RAN"
    state = torch.load(newest / STATE_FILE, weights_only=True)
    state["history"].append({"epoch": _RunsCode(ran)})  # inside an otherwise valid state
    torch.save(state, newest / STATE_FILE)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / STATE_FILE).write_bytes((newest / STATE_FILE).read_bytes())  # fit prunes the run's copy
    said.clear()

    done = fit(replace(job, epochs=3), task=_Linear())

    notices = [line for line in said if "skipped" in line]
    assert len(notices) == 1 and "\n" not in notices[0], said
    assert f"skipped {newest.name} (state.pt refused by torch.load(weights_only=True): Unsupported global:" \
        in notices[0] and "exec" in notices[0]
    assert f"resuming from {older.name} (epoch 1)" in notices[0]
    assert done.epochs_done == 3
    # the driver's read and the generative evaluator's load refuse it too
    with pytest.raises(UnloadableCheckpoint, match=r"refused by torch.load\(weights_only=True\)"):
        read_checkpoint(kept)
    from components.families.generative.evaluator import EVALUATOR_FILE, load_evaluator

    torch.save({"arch": _RunsCode(ran), "state_dict": {}}, tmp_path / EVALUATOR_FILE)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_evaluator(tmp_path)
    assert not ran.exists()


def test_the_worker_path_falls_back_to_an_older_folder_than_the_one_ray_hands_over(tmp_path, said, monkeypatch):
    """Ray Train hands the run's latest checkpoint (``ray.train.get_checkpoint``); its folders carry
    no marker. The harness lists the run folder's older ``checkpoint_*`` folders itself."""
    import ray.train

    job, older, newest = _two_epochs(tmp_path)
    for folder in (older, newest):  # as Ray Train writes them
        (folder / COMPLETE_MARKER).unlink()
    _truncate(newest / STATE_FILE)
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ray.train.Checkpoint(str(newest)))
    worker_job = _job(tmp_path, epochs=3, num_workers=1)
    task = _Linear()
    task.setup(torch.device("cpu"), lambda module: module, 4)
    said.clear()

    run = harness._restore(task, worker_job, rank=0)

    assert run.epoch == 1 and run.saved_epoch == 1
    assert len(said) == 1 and said[0].startswith(f"[test/linear] skipped {newest.name} (truncated or damaged")
    assert f"resuming from {older.name} (epoch 1)" in said[0]
    # every checkpoint damaged: from scratch, one line
    _missing(older / STATE_FILE)
    said.clear()
    assert harness._restore(_Linear(), worker_job, rank=0).epoch == 0
    assert len(said) == 1 and "no checkpoint of the run loads: training from scratch" in said[0]
    assert f"{older.name} (no state.pt)" in said[0]


def test_generated_stages_persist_their_outputs():
    """DVC deletes a stage's outputs before running it unless they are ``persist: true``."""
    stages = pipeline()["stages"]
    families = list(FAMILIES.values())
    kept = [stages[family.stage] for family in families] + [stages[f"tune_{family.name}"] for family in families]
    kept += [stages[stage.name] for family in families for stage in family.extra_stages]
    assert any(family.name == "rl" for family in families) and any(f.extra_stages for f in families)
    for stage in kept:
        entries = [entry for key in ("outs", "metrics", "plots") for entry in stage.get(key, [])]
        assert entries and all(isinstance(entry, dict) for entry in entries), stage
        assert all(options.get("persist") is True for entry in entries for options in entry.values()), stage
    assert all(options.get("cache") is False for entry in stages["train_segmentation"]["metrics"]
               for options in entry.values())


_DVC_SCENARIO = """\
import json, os, pathlib, sys
from dvc.cli import main
results = {}
for root in sys.argv[1:]:
    os.chdir(root)
    codes = [main(["init", "--no-scm", "-q"]), main(["repro", "-q"])]
    pathlib.Path("mode.txt").write_text("fail\\n")
    codes.append(main(["repro", "-q"]))
    kept = [pathlib.Path(path).exists() for path in ("metrics/segmentation-fcn.json", "plots/segmentation-fcn.csv",
            "models/segmentation/fcn/model.pt", "figures/segmentation-fcn/a.png",
            "metrics/details/segmentation-fcn.json")]
    pathlib.Path("mode.txt").write_text("second\\n")
    codes += [main(["repro", "-q"]), main(["status", "-q"])]
    model = pathlib.Path("models/segmentation/fcn/model.pt").read_text()
    results[root] = {"codes": codes, "kept": kept, "model": model}
print(json.dumps(results))
"""


def test_dvc_keeps_persisted_outputs_of_a_failed_stage(tmp_path):
    """A real DVC repository: a stage shaped like the generated train stage (matrix, cached outs,
    uncached metrics and learning-curve CSV, all persist) runs once, then fails: the outputs of the successful
    run stay; a successful rerun replaces them. The same stage without persist loses them on the
    failure: what DVC did before."""
    stage = pipeline()["stages"]["train_segmentation"]
    write = textwrap.dedent("""\
        import pathlib, sys
        model, mode = sys.argv[1], pathlib.Path("mode.txt").read_text().strip()
        if mode == "fail":
            sys.exit("training failed")
        for path, text in [(f"models/segmentation/{model}/model.pt", mode),
                           (f"figures/segmentation-{model}/a.png", mode),
                           (f"metrics/segmentation-{model}.json", '{"val/miou": 0.5}'),
                           (f"metrics/details/segmentation-{model}.json", '{"val/miou": 0.5, "epochs": 1}'),
                           (f"plots/segmentation-{model}.csv", "epoch,val/miou\\n1,0.5\\n")]:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(path).write_text(text)
        """)
    roots = {True: tmp_path / "persist", False: tmp_path / "plain"}
    for persist, root in roots.items():
        root.mkdir()
        (root / "write.py").write_text(write)
        (root / "mode.txt").write_text("first\n")
        entries = {key: stage[key] if persist else [{path: {k: v for k, v in options.items() if k != "persist"}}
                                                    for entry in stage[key] for path, options in entry.items()]
                   for key in ("outs", "metrics")}  # the learning-curve CSV is one of the outs
        dvc_yaml = {"stages": {"train_segmentation": {"matrix": {"model": ["fcn"]},
                                                      "cmd": f"{sys.executable} write.py ${{item.model}}",
                                                      "deps": ["write.py", "mode.txt"], **entries}}}
        (root / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache")}
    ran = subprocess.run([sys.executable, "-c", _DVC_SCENARIO, *map(str, roots.values())], env=env,
                         capture_output=True, text=True, timeout=300)
    codes = json.loads(ran.stdout.strip().splitlines()[-1])
    for persist, root in roots.items():
        # init, repro (succeeds), repro (fails), repro (succeeds again), status (up to date)
        assert codes[str(root)]["codes"][:2] == [0, 0] and codes[str(root)]["codes"][2] != 0, (codes, ran.stderr)
        assert codes[str(root)]["codes"][3:] == [0, 0], (codes, ran.stderr)
        assert codes[str(root)]["kept"] == [persist] * 5  # after the failure: the first run's outputs, or none
        assert codes[str(root)]["model"] == "second"  # a successful rerun replaces persisted outputs
    assert "training failed" in ran.stderr


def test_the_train_stage_leaves_the_previous_metrics_when_training_raises(workdir, monkeypatch, capsys):
    """A NaN loss stops training with a UserError (one line, exit 2); the metrics, learning curve
    and model of the previous successful run are untouched."""
    import components.families.segmentation.task as segmentation_task
    import pipelines.train as train

    monkeypatch.setattr(segmentation_task, "build_task", lambda model, params: _Linear(bad_at=0))
    monkeypatch.setattr(train.tracking, "configure_environment", lambda uri: "unused")
    monkeypatch.setenv("COURSELAB_EXIT_WITH_PARENT", "0")  # no watchdog on the test process

    class _NoTracking:  # no MLflow run: nothing logged
        run_id = None

        @classmethod
        def start(cls):
            return cls()

        def __getattr__(self, name):  # open_run, log_metrics, log_png, ...
            return lambda *args, **kwargs: None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(train, "TrackingProcess", _NoTracking)
    previous = {
        workdir / "metrics/segmentation-fcn.json": '{"val/miou": 0.61}\n',
        workdir / "metrics/details/segmentation-fcn.json": '{"val/miou": 0.61, "epochs": 2}\n',
        workdir / "plots/segmentation-fcn.csv": "epoch,val/miou\n1,0.61\n",
        workdir / "models/segmentation/fcn/model.pt": "previous weights",
    }
    for path, text in previous.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    with pytest.raises(SystemExit) as stopped:
        train.main(["segmentation", "fcn"])

    assert stopped.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(error) == 1 and error[0].startswith("error: segmentation/fcn: non-finite loss (nan) at epoch 1, step 1;")
    assert {path: path.read_text() for path in previous} == previous
    assert not (workdir / "figures/segmentation-fcn").exists()
