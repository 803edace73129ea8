"""`dvc repro` of the real pipeline on tiny params, in a temporary copy of the repository."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.families import FAMILIES
from components.families.visualization.family import BASELINES, METHODS, NETWORKS
from tests.conftest import REPO, tiny_params_dict

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

MODELS = FAMILIES["segmentation"].models
RL_ALGOS = FAMILIES["rl"].models
GENERATIVE = FAMILIES["generative"].models
DETECTION = FAMILIES["detection"].models
TRANSLATION = FAMILIES["translation"].models
CAPTIONING = FAMILIES["captioning"].models
ADVERSARIAL = FAMILIES["adversarial"].models
VISUALIZATION = FAMILIES["visualization"].models
SELFSUP = FAMILIES["selfsup"].models


def _copy_repository(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _sh(cwd: Path, env: dict, *cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e") / "repo"
    root.mkdir()
    _copy_repository(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSELAB_", "MLFLOW_", "RAY_ADDRESS"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_SITE_CACHE_DIR"] = str(root / ".dvc" / "site_cache")
    env["DVC_NO_ANALYTICS"] = "1"
    for cmd in (
        ("git", "init", "-q"),
        ("git", "config", "user.name", "courselab-e2e"),
        ("git", "config", "user.email", "e2e@courselab.invalid"),
        ("git", "add", "-A"),
        ("git", "commit", "-qm", "tiny params"),
    ):
        _sh(root, env, *cmd)
    # Train stages run on the local path (num_workers 0: no Ray); the tune and rl stages start a
    # local Ray each. No RAY_ADDRESS: with one, every train stage would train on a cluster worker.
    repro_env = {**env, "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    proc = _sh(root, repro_env, "dvc", "repro", timeout=1800)
    repro_s = time.perf_counter() - started  # printed for the log; bounds on time live in bench/stage_overhead.py
    print(f"e2e dvc repro: {proc.stdout.count('Running stage ')} stages in {repro_s:.0f}s")
    yield {"root": root, "env": env, "repro_env": repro_env, "repro": proc, "repro_s": repro_s}


def test_repro_writes_every_metrics_file_and_report(repo):
    root = repo["root"]
    for model in MODELS:
        metrics = json.loads((root / "metrics" / f"segmentation-{model}.json").read_text())
        assert 0.0 <= metrics["val/miou"] <= 1.0 and metrics["epochs"] == 1
        assert metrics["headline_metric"] == "val/miou"
        assert (root / "models" / "segmentation" / model / "model.pt").is_file()
        assert (root / "figures" / f"segmentation-{model}" / "masks.png").is_file()
    for model in DETECTION:
        metrics = json.loads((root / "metrics" / f"detection-{model}.json").read_text())
        assert metrics["headline_metric"] == "val/map" and 0.0 <= metrics["val/map"] <= 1.0
        assert "val/map_untrained" in metrics and "val/voc_map" in metrics
        assert (root / "figures" / f"detection-{model}" / "predictions.png").is_file()
    assert "val/mask_map" in json.loads((root / "metrics" / "detection-mask_rcnn.json").read_text())
    for algo in RL_ALGOS:
        metrics = json.loads((root / "metrics" / f"rl-{algo}.json").read_text())
        assert metrics["headline_metric"] == "rl/greedy_return_mean"
        assert isinstance(metrics["rl/greedy_return_mean"], float)
        assert any((root / "models" / "rl" / algo).iterdir())
        assert (root / "plots" / f"rl-{algo}.csv").read_text().count("\n") >= 2  # header + >= 1 row
    assert json.loads((root / "metrics" / "rl-value_iteration.json").read_text())["rl/policy_agreement"] == 1.0
    assert (root / "models" / "evaluator" / "evaluator.pt").is_file()
    for model in GENERATIVE:
        metrics = json.loads((root / "metrics" / f"generative-{model}.json").read_text())
        fid, floor, untrained = (metrics[f"val/fid_evaluator{s}"] for s in ("", "_floor", "_untrained"))
        assert metrics["headline_metric"] == "val/fid_evaluator" and math.isfinite(fid)
        assert fid != untrained  # the generator trained: its samples moved from the untrained network's
        assert floor < untrained  # real vs real is closer than an untrained generator vs real
        assert (root / "figures" / f"generative-{model}" / "samples.png").is_file()
    for family, models in (("translation", TRANSLATION), ("captioning", CAPTIONING)):
        for model in models:
            metrics = json.loads((root / "metrics" / f"{family}-{model}.json").read_text())
            assert metrics["headline_metric"] == "val/bleu" and 0.0 <= metrics["test/bleu"] <= 100.0
            assert "tok:13a" in metrics["test/bleu_signature"]
            assert (root / "figures" / f"{family}-{model}" / "samples.png" if family == "translation"
                    else root / "figures" / f"{family}-{model}" / "captions.png").is_file()
    for model in ADVERSARIAL:
        metrics = json.loads((root / "metrics" / f"adversarial-{model}.json").read_text())
        assert metrics["headline_metric"] == "val/robust_accuracy" and 0.0 <= metrics["test/accuracy"] <= 1.0
        assert (root / "figures" / f"adversarial-{model}" / "test_robustness.png").is_file()
        transfer = json.loads((root / "metrics" / f"adversarial_transfer-{model}.json").read_text())
        assert transfer[f"test/accuracy_of/{model}"] == pytest.approx(metrics["test/robust_accuracy/fgsm/eps_0.2"])
    assert (root / "figures" / "adversarial_transfer" / "transfer.png").is_file()
    for row in (*METHODS, *BASELINES):
        metrics = json.loads((root / "metrics" / f"visualization_attribution-{row}.json").read_text())
        assert metrics["headline_metric"] == "test/deletion_auc" and 0.0 <= metrics["test/deletion_auc"] <= 1.0
    for row in NETWORKS:
        metrics = json.loads((root / "metrics" / f"visualization_units-{row}.json").read_text())
        assert metrics["headline_metric"] == "test/dissection_units" and metrics["test/dissection_units"] >= 0
    assert (root / "figures" / "visualization_units" / "dissection.md").is_file()
    for row in (*SELFSUP, "random_init", "pixels"):
        metrics = json.loads((root / "metrics" / f"selfsup_probe-{row}.json").read_text())
        assert metrics["headline_metric"] == "test/probe_accuracy_few" and 0.0 <= metrics["test/probe_accuracy"] <= 1.0
    report = (root / "reports" / "index.md").read_text()
    every_model = (MODELS + DETECTION + RL_ALGOS + GENERATIVE + TRANSLATION + CAPTIONING + ADVERSARIAL + VISUALIZATION
                   + SELFSUP)
    assert all(f"| {model} |" in report for model in every_model)
    assert "test BLEU and exact match by source length" in report
    page = (root / "reports" / "index.html").read_text()  # the HTML page: every model, every image copied in
    assert all(f">{model}<" in page for model in every_model)
    assert all((root / "reports" / src).is_file() for src in re.findall(r'<img[^>]* src="([^"]+)"', page))
    trained = (MODELS + DETECTION + GENERATIVE + TRANSLATION + CAPTIONING + ADVERSARIAL
               + VISUALIZATION + SELFSUP)  # each on the local path
    local = re.findall(r"\[[a-z]+/([a-z_]+)\] training in this process", repo["repro"].stdout)  # not sweep trials
    assert sorted(local) == sorted(trained)


def test_repro_logged_one_finished_mlflow_run_per_model(repo):
    with sqlite3.connect(repo["root"] / "mlflow.db") as db:
        # the training runs (the sweep's parent and trial runs are checked in test_sweep_*)
        sweep_runs = "SELECT run_uuid FROM tags WHERE key IN ('courselab.sweep', 'mlflow.parentRunId')"
        rows = db.execute(
            "SELECT r.name, r.status FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            f"WHERE e.name = 'segmentation' AND r.run_uuid NOT IN ({sweep_runs})"
        ).fetchall()
        miou = db.execute(
            f"SELECT COUNT(*) FROM latest_metrics WHERE key = 'val/miou' AND run_uuid NOT IN ({sweep_runs})"
        ).fetchone()[0]
        rl_runs = db.execute(
            "SELECT r.name, r.status FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            f"WHERE e.name = 'rl' AND r.run_uuid NOT IN ({sweep_runs})"
        ).fetchall()
        generative_runs = db.execute(
            "SELECT r.name, r.status FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE e.name = 'generative'"
        ).fetchall()
    assert sorted(rows) == sorted((model, "FINISHED") for model in MODELS)
    assert miou == len(MODELS)
    assert sorted(rl_runs) == sorted((algo, "FINISHED") for algo in RL_ALGOS)
    assert sorted(generative_runs) == sorted((model, "FINISHED") for model in (*GENERATIVE, "evaluator"))


def test_second_repro_is_a_noop(repo):
    proc = _sh(repo["root"], repo["env"], "dvc", "repro")
    assert "Data and pipelines are up to date." in proc.stdout


def test_exp_run_with_changed_param_is_a_new_experiment(repo):
    root, env = repo["root"], repo["env"]
    _sh(root, env, "git", "add", "-A")
    _sh(root, env, "git", "commit", "-qm", "baseline results")
    proc = _sh(root, repo["repro_env"], "dvc", "exp", "run", "-S", "segmentation.models.fcn.lr=0.01", "-n", "fcn-lr")
    assert "Running stage 'train_segmentation@fcn'" in proc.stdout
    assert "Running stage 'train_segmentation@unet'" not in proc.stdout  # only the changed model retrains
    shown = json.loads(_sh(root, env, "dvc", "exp", "show", "--json").stdout)
    found = [node for node in _walk(shown) if node.get("name") == "fcn-lr" and "data" in node]
    assert found, "experiment fcn-lr not in dvc exp show"
    params = found[0]["data"]["params"]["params.yaml"]["data"]
    assert params["segmentation"]["models"]["fcn"]["lr"] == 0.01
    assert "val/miou" in json.dumps(found[0]["data"]["metrics"])


def _walk(node):
    """Every dict nested anywhere in ``dvc exp show --json`` output."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _ran(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def _sweep_children_and_tuned_param(root, summary: dict, param: str, tuned_file: str) -> tuple[int, list, list]:
    """How many child runs the sweep's parent run has, the rows ``(value,)`` of ``param`` in the
    runs tagged as trained with ``tuned_file``'s values, and the ``courselab.tuned_kept`` tags of
    the runs the sweep's result reached (tuned or default)."""
    with sqlite3.connect(root / "mlflow.db") as db:
        children = db.execute(
            "SELECT COUNT(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?", (summary["parent_run_id"],)
        ).fetchone()[0]
        values = db.execute(
            "SELECT p.value FROM params p JOIN tags t ON p.run_uuid = t.run_uuid "
            "WHERE p.key = ? AND t.key = 'courselab.tuned_from' AND t.value = ?", (param, tuned_file)
        ).fetchall()
        kept = db.execute(
            "SELECT k.value FROM tags k JOIN tags s ON k.run_uuid = s.run_uuid WHERE k.key = 'courselab.tuned_kept' "
            "AND s.key = 'courselab.tuned_by_sweep_run' AND s.value = ?", (summary["parent_run_id"],)
        ).fetchall()
    return children, values, [v for (v,) in kept]


def test_sweep_ran_and_the_tuned_model_trained_with_its_result(repo):
    """tune_segmentation swept U-Net (tiny: 2 trials, train/loss; see tests/conftest.py), the
    disabled families wrote empty overrides, and train_segmentation@unet applied the best values."""
    root = repo["root"]
    summary = json.loads((root / "metrics" / "tune-segmentation.json").read_text())
    assert summary["enabled"] and summary["model"] == "unet" and summary["num_trials"] == 2
    assert summary["trials"][0]["config"] == {"lr": 0.002}  # the default point first
    assert 0.003 <= summary["best_config"]["lr"] <= 0.01  # tiny construction: a larger lr always wins
    tuned = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    assert summary["applied"] and summary["min_improvement"] == 0  # a better lr always wins; the tiny margin is 0
    assert tuned["unet"] == summary["best_config"] and tuned["fcn"] == tuned["segnet"] == tuned["dilated"] == {}
    for family in ("detection", "generative", "translation", "captioning"):
        assert json.loads((root / "metrics" / f"tune-{family}.json").read_text())["enabled"] is False
        assert not any(yaml.safe_load((root / "tuned" / f"{family}.yaml").read_text())[m] for m in
                       {"detection": DETECTION, "generative": GENERATIVE, "translation": TRANSLATION,
                        "captioning": CAPTIONING}[family])
    children, unet_lr, kept = _sweep_children_and_tuned_param(root, summary, "model.lr", "tuned/segmentation.yaml")
    assert children == 2 and kept == ["tuned"]
    assert [float(v) for (v,) in unet_lr] == [summary["best_config"]["lr"]]


def test_rl_sweep_ran_rllib_trials_and_rl_stage_applied_its_result(repo):
    """tune_rl swept REINFORCE (tiny: 2 trials of 1000 env steps) with RLlib's algorithm as the
    trainable; tuned/rl.yaml has a section per algorithm and rl@reinforce trained with its own."""
    root = repo["root"]
    summary = json.loads((root / "metrics" / "tune-rl.json").read_text())
    assert summary["enabled"] and (summary["family"], summary["model"]) == ("rl", "reinforce")
    assert summary["num_trials"] == 2 and all(t["env_steps"] >= 1000 or t["stopped_early"] for t in summary["trials"])
    tuned = yaml.safe_load((root / "tuned" / "rl.yaml").read_text())
    applied = summary["applied"]  # the default may be the better of two tiny trials: then nothing is applied
    assert tuned["reinforce"] == (summary["best_config"] if applied else {})
    assert tuned["dqn"] == tuned["value_iteration"] == tuned["q_learning"] == {}
    children, reinforce_lr, kept = _sweep_children_and_tuned_param(root, summary, "cfg.lr", "tuned/rl.yaml")
    assert children == 2 and kept == ["tuned" if applied else "default"]
    assert [float(v) for (v,) in reinforce_lr] == ([summary["best_config"]["lr"]] if applied else [])


def test_changed_search_bound_reruns_the_sweep_and_the_tuned_model_only(repo):
    root, env = repo["root"], repo["repro_env"]
    before = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["segmentation"]["search_space"]["lr"]["high"] = 0.03
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _sh(root, repo["env"], "dvc", "status").stdout
    changed = set(re.findall(r"^(\S+):$", status, flags=re.MULTILINE))
    assert changed == {"tune_segmentation"}, status  # the train stages wait for the new tuned values

    proc = _sh(root, env, "dvc", "repro", timeout=900)
    after = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    assert after["unet"] != before["unet"] and 0.003 <= after["unet"]["lr"] <= 0.03
    assert {k: after[k] for k in ("fcn", "segnet", "dilated")} == {k: before[k] for k in ("fcn", "segnet", "dilated")}
    assert _ran(proc) == {"tune_segmentation", "train_segmentation@unet", "report"}, proc.stdout



def test_exp_run_with_two_workers_takes_the_distributed_path(repo):
    """`dvc exp run train_captioning@show_tell -S ++captioning.trainer.num_workers=2`: the model
    retrains on two Ray Train workers (DDP; the stage starts its own local Ray)."""
    root, env = repo["root"], repo["env"]
    _sh(root, env, "git", "add", "-A")
    _sh(root, env, "git", "commit", "-qm", "results before the two-worker run")
    proc = _sh(root, repo["repro_env"], "dvc", "exp", "run", "train_captioning@show_tell",
               "-S", "++captioning.trainer.num_workers=2", "-n", "captioning-ddp", timeout=900)
    assert {stage for stage in _ran(proc) if stage.startswith("train_")} == {"train_captioning@show_tell"}
    assert "training on 2 Ray Train worker(s)" in proc.stdout
    metrics = json.loads((root / "metrics" / "captioning-show_tell.json").read_text())
    assert metrics["ddp/param_max_abs_diff"] == 0.0 and metrics["ddp/num_nodes"] == 1  # only with >= 2 ranks
    assert 0.0 <= metrics["test/bleu"] <= 100.0
