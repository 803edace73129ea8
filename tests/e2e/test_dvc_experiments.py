"""DVC experiments and reruns on a reproduced subset of the pipeline (segmentation with its sweep,
captioning): only what a change touches reruns, variants are experiments, two workers take the
distributed path. The whole pipeline's repro is test_dvc_repro.py's; this module runs beside it."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from components.metrics_files import read_stage_metrics
from tests.conftest import tiny_params_dict
from tests.e2e.repository import reproduced, sh

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return reproduced(tmp_path_factory.mktemp("e2e-experiments") / "repo", "train_segmentation", "train_captioning")


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


def test_exp_run_with_changed_param_is_a_new_experiment(repo):
    root, env = repo["root"], repo["env"]
    sh(root, env, "git", "add", "-A")
    sh(root, env, "git", "commit", "-qm", "baseline results")
    proc = sh(root, repo["repro_env"], "dvc", "exp", "run", "train_segmentation",
              "-S", "segmentation.models.fcn.lr=0.01", "-n", "fcn-lr")
    assert _ran(proc) == {"train_segmentation@fcn"}  # only the changed model retrains
    shown = json.loads(sh(root, env, "dvc", "exp", "show", "--json").stdout)
    found = [node for node in _walk(shown) if node.get("name") == "fcn-lr" and "data" in node]
    assert found, "experiment fcn-lr not in dvc exp show"
    params = found[0]["data"]["params"]["params.yaml"]["data"]
    assert params["segmentation"]["models"]["fcn"]["lr"] == 0.01
    assert "val/miou" in json.dumps(found[0]["data"]["metrics"])
    changed = sh(root, env, "dvc", "exp", "show", "--only-changed", "--md").stdout  # the README's recipe
    header = changed.splitlines()[0]  # the changed param and fcn's changed metrics (its loss at least), nothing else
    assert "segmentation.models.fcn.lr" in header and "metrics/segmentation-fcn.json:" in header
    assert "segmentation.models.unet" not in header and "segmentation-unet.json" not in header


def test_changed_search_bound_reruns_the_sweep_and_the_tuned_model_only(repo):
    root, env = repo["root"], repo["repro_env"]
    before = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["segmentation"]["search_space"]["lr"]["high"] = 0.03
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh(root, repo["env"], "dvc", "status", "--with-deps", "train_segmentation").stdout
    changed = set(re.findall(r"^(\S+):$", status, flags=re.MULTILINE))
    assert changed == {"tune_segmentation"}, status  # the train stages wait for the new tuned values

    proc = sh(root, env, "dvc", "repro", "train_segmentation", timeout=900)
    after = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    assert after["unet"] != before["unet"] and 0.003 <= after["unet"]["lr"] <= 0.03
    assert {k: after[k] for k in ("fcn", "segnet", "dilated")} == {k: before[k] for k in ("fcn", "segnet", "dilated")}
    assert _ran(proc) == {"tune_segmentation", "train_segmentation@unet"}, proc.stdout


def test_exp_run_with_two_workers_takes_the_distributed_path(repo):
    """`dvc exp run train_captioning@<model> -S ++captioning.trainer.num_workers=2`: the model
    retrains on two Ray Train workers (DDP; the stage starts its own local Ray)."""
    root, env = repo["root"], repo["env"]
    model = tiny_params_dict()["pipeline"]["captioning"][0]  # a model the pipeline trains
    sh(root, env, "git", "add", "-A")
    sh(root, env, "git", "commit", "-qm", "results before the two-worker run")
    proc = sh(root, repo["repro_env"], "dvc", "exp", "run", f"train_captioning@{model}",
              "-S", "++captioning.trainer.num_workers=2", "-n", "captioning-ddp", timeout=900)
    assert {stage for stage in _ran(proc) if stage.startswith("train_")} == {f"train_captioning@{model}"}
    assert "training on 2 Ray Train worker(s)" in proc.stdout
    metrics = read_stage_metrics(root, f"captioning-{model}")
    assert metrics["ddp/param_max_abs_diff"] == 0.0 and metrics["ddp/num_nodes"] == 1  # only with >= 2 ranks
    assert 0.0 <= metrics["test/bleu"] <= 100.0
