"""`dvc repro` of the real pipeline on tiny params, in a temporary copy of the repository, then DVC
experiments and reruns on it: only what a change touches reruns, variants are experiments, two workers
take the distributed path.

The tests share one reproduced repository (the module's ``repo``: the whole pipeline, ~6 min). Those
that only read it come first; the experiments change it (params, results, git commits, experiment
refs), so they come last, in the order written: pytest runs a module's tests in file order, and
``--dist loadfile`` keeps the module in one process."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys

import pytest
import torch
import yaml

from components.families import FAMILIES
from components.families.adversarial.family import RANDOM_SIGN
from components.families.generative.family import LATENT_MODELS
from components.families.selfsup.family import REFERENCES as SELFSUP_REFERENCES
from components.families.visualization.family import BASELINES, METHODS, NETWORKS
from components.metrics_files import read_stage_metrics, stage_of
from tests.conftest import tiny_params_dict
from tests.e2e.repository import reproduced, sh

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# the models the pipeline trains: params.yaml's pipeline lists (the tiny params keep them)
LISTED = tiny_params_dict()["pipeline"]
(MODELS, RL_ALGOS, GENERATIVE, DETECTION, TRANSLATION, CAPTIONING, ADVERSARIAL, VISUALIZATION, SELFSUP, LANGUAGE,
 TEXT_CLASSIFICATION, IMAGE_TRANSLATION) = (tuple(LISTED[family]) for family in (
    "segmentation", "rl", "generative", "detection", "translation", "captioning", "adversarial", "visualization",
    "selfsup", "language", "text_classification", "image_translation"))
LATENT = tuple(m for m in GENERATIVE if m in LATENT_MODELS)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return reproduced(tmp_path_factory.mktemp("e2e") / "repo")  # the whole pipeline


def test_repro_writes_every_metrics_file_and_report(repo):
    root = repo["root"]
    for model in MODELS:
        metrics = read_stage_metrics(root, f"segmentation-{model}")
        assert 0.0 <= metrics["val/miou"] <= 1.0 and metrics["epochs"] == 1
        assert metrics["headline_metric"] == "val/miou"
        assert (root / "models" / "segmentation" / model / "model.pt").is_file()
        assert (root / "figures" / f"segmentation-{model}" / "masks.png").is_file()
    for model in DETECTION:
        metrics = read_stage_metrics(root, f"detection-{model}")
        assert metrics["headline_metric"] == "val/map" and 0.0 <= metrics["val/map"] <= 1.0
        assert "val/map_untrained" in metrics and "val/voc_map" in metrics
        assert (root / "figures" / f"detection-{model}" / "predictions.png").is_file()
    for algo in RL_ALGOS:
        metrics = read_stage_metrics(root, f"rl-{algo}")
        assert metrics["headline_metric"] == "rl/greedy_return_mean"
        assert isinstance(metrics["rl/greedy_return_mean"], float)
        assert any((root / "models" / "rl" / algo).iterdir())
        assert (root / "plots" / f"rl-{algo}.csv").read_text().count("\n") >= 2  # header + >= 1 row
    assert read_stage_metrics(root, "rl-value_iteration")["rl/policy_agreement"] == 1.0
    assert (root / "models" / "evaluator" / "evaluator.pt").is_file()
    for model in GENERATIVE:
        metrics = read_stage_metrics(root, f"generative-{model}")
        fid, floor, untrained = (metrics[f"val/fid_evaluator{s}"] for s in ("", "_floor", "_untrained"))
        assert metrics["headline_metric"] == "val/fid_evaluator" and math.isfinite(fid)
        assert fid != untrained  # the generator trained: its samples moved from the untrained network's
        assert floor < untrained  # real vs real is closer than an untrained generator vs real
        assert (root / "figures" / f"generative-{model}" / "samples.png").is_file()
    for family, models in (("translation", TRANSLATION), ("captioning", CAPTIONING)):
        for model in models:
            metrics = read_stage_metrics(root, f"{family}-{model}")
            assert metrics["headline_metric"] == "val/bleu" and 0.0 <= metrics["test/bleu"] <= 100.0
            assert "tok:13a" in metrics["test/bleu_signature"]
            assert (root / "figures" / f"{family}-{model}" / "samples.png" if family == "translation"
                    else root / "figures" / f"{family}-{model}" / "captions.png").is_file()
    for model in LANGUAGE:
        metrics = read_stage_metrics(root, f"language-{model}")
        scored = "val/mlm_accuracy" if model == "bert_mlm" else "val/bits_per_char"
        assert metrics["headline_metric"] == "val/bits_per_char" and math.isfinite(metrics[scored])
    for model in TEXT_CLASSIFICATION:
        metrics = read_stage_metrics(root, f"text_classification-{model}")
        assert metrics["headline_metric"] == "val/accuracy" and 0.0 <= metrics["test/macro_f1"] <= 1.0
    ceiling = read_stage_metrics(root, f"image_translation-{IMAGE_TRANSLATION[0]}")["val/fcn_miou_real"]
    for model in IMAGE_TRANSLATION:
        metrics = read_stage_metrics(root, f"image_translation-{model}")
        assert metrics["headline_metric"] == "val/fcn_miou" and 0.0 <= metrics["test/fcn_miou"] <= 1.0
        assert metrics["val/fcn_miou_real"] == ceiling  # one scorer on the same real scenes
        assert (root / "figures" / f"image_translation-{model}" / "translations.png").is_file()
    for model in ADVERSARIAL:
        metrics = read_stage_metrics(root, f"adversarial-{model}")
        assert metrics["headline_metric"] == "val/robust_accuracy" and 0.0 <= metrics["test/accuracy"] <= 1.0
        assert (root / "figures" / f"adversarial-{model}" / "test_robustness.png").is_file()
        transfer = read_stage_metrics(root, f"adversarial_transfer/{model}")
        assert transfer[f"test/accuracy_of/{model}"] == pytest.approx(metrics["test/robust_accuracy/fgsm/eps_0.2"])
    assert (root / "figures" / "adversarial_transfer" / "transfer.png").is_file()
    for row in (*METHODS, *BASELINES):
        metrics = read_stage_metrics(root, f"visualization_attribution-{row}")
        assert metrics["headline_metric"] == "test/deletion_auc" and 0.0 <= metrics["test/deletion_auc"] <= 1.0
    for row in NETWORKS:
        metrics = read_stage_metrics(root, f"visualization_units-{row}")
        assert metrics["headline_metric"] == "test/dissection_units" and metrics["test/dissection_units"] >= 0
    assert (root / "figures" / "visualization_units" / "dissection.md").is_file()
    for row in (*SELFSUP, "random_init", "pixels"):
        metrics = read_stage_metrics(root, f"selfsup_probe/{row}")
        assert metrics["headline_metric"] == "test/probe_accuracy_few" and 0.0 <= metrics["test/probe_accuracy"] <= 1.0
    report = (root / "reports" / "index.md").read_text()
    every_model = (MODELS + DETECTION + RL_ALGOS + GENERATIVE + IMAGE_TRANSLATION + TRANSLATION + CAPTIONING
                   + ADVERSARIAL + VISUALIZATION + SELFSUP)
    assert all(f"| {model} |" in report for model in every_model)
    assert "test BLEU and exact match by source length" in report
    page = (root / "reports" / "index.html").read_text()  # the HTML page: every model, every image copied in
    assert all(f">{model}<" in page for model in every_model)
    assert all((root / "reports" / src).is_file() for src in re.findall(r'<img[^>]* src="([^"]+)"', page))
    trained = (MODELS + DETECTION + GENERATIVE + IMAGE_TRANSLATION + TRANSLATION + CAPTIONING + LANGUAGE
               + TEXT_CLASSIFICATION + ADVERSARIAL + VISUALIZATION + SELFSUP)  # each on the local path
    local = re.findall(r"\[[a-z_]+/([a-z0-9_]+)\] training in this process", repo["repro"].stdout)  # not sweep trials
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
    assert sorted(generative_runs) == sorted((model, "FINISHED") for model in (*GENERATIVE, "evaluator", "latents"))


# What `dvc metrics show <files>` prints, for each group of files, from one Repo: the CLI builds the
# pipeline's index again on every call (~1.5 s each); the test checks that the two print the same.
_METRICS_SHOW = """\
import contextlib, io, json, sys
from dvc.compare import show_metrics
from dvc.repo import Repo
from dvc.repo.metrics.show import to_relpath
shown = {}
with Repo() as repo:
    for group in json.loads(sys.argv[1]):
        metrics = repo.metrics.show(group["files"])  # CmdMetricsShow.run's two steps
        metrics = {rev: to_relpath(repo.fs, repo.root_dir, value) for rev, value in metrics.items()}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            show_metrics(metrics, precision=5, round_digits=True)
        shown[group["name"]] = out.getvalue()
print(json.dumps(shown))
"""


def test_dvc_metrics_show_is_a_table_of_numbers_under_300_characters_per_stage(repo):
    """`dvc metrics show metrics/<stage>-*.json` (each family's, each analysis stage's, the sweeps') and
    `metrics/<stage>/*.json` (a row folder): numbers only, every line under 300 characters; the
    provenance lives in metrics/details/."""
    root = repo["root"]
    groups: dict[str, list[str]] = {}
    summaries = [(p, p.stem) for p in sorted((root / "metrics").glob("*.json"))]
    summaries += [(p, f"{p.parent.name}/{p.stem}") for p in sorted((root / "metrics").glob("*/*.json"))
                  if p.parent.name != "details"]
    for path, name in summaries:
        groups.setdefault(stage_of(name), []).append(path.relative_to(root).as_posix())
        summary = json.loads(path.read_text())
        flat = [v for value in summary.values() for v in (value.values() if isinstance(value, dict) else [value])]
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat), path
        assert flat or not read_stage_metrics(root, name).get("enabled", True), path  # {}: a disabled sweep
    assert {"segmentation", "detection", "rl", "generative", "tune", "selfsup_transfer", "adversarial_transfer",
            "generative_latents", "selfsup_probe"} <= set(groups)
    proc = sh(root, repo["env"], sys.executable, "-c", _METRICS_SHOW,
               json.dumps([{"name": name, "files": files} for name, files in groups.items()]))
    shown = json.loads(proc.stdout.strip().splitlines()[-1])
    assert shown["adversarial_transfer"] == sh(root, repo["env"], "dvc", "metrics", "show",
                                               *groups["adversarial_transfer"]).stdout  # as the CLI prints it
    print("dvc metrics show widths:", {name: max(map(len, text.splitlines())) for name, text in shown.items()})
    for name, text in shown.items():
        lines = text.splitlines()
        assert len(lines) >= 1 + len(groups[name]), (name, text)  # header + a row each
        assert max(map(len, lines)) < 300, (name, text)


def test_second_repro_is_a_noop(repo):
    proc = sh(repo["root"], repo["env"], "dvc", "repro")
    assert "Data and pipelines are up to date." in proc.stdout


def test_listing_another_model_adds_its_stage_and_reruns_only_what_reads_the_list(repo):
    """``pipeline.<family>`` is dvc.yaml's matrix: one more model is one more stage; the stages that read
    the family's list (its transfer table, the report) rerun, nothing else."""
    root, path = repo["root"], repo["root"] / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    segmentation = next(m for m in FAMILIES["segmentation"].models if m not in MODELS)
    adversarial = next(m for m in FAMILIES["adversarial"].models if m not in ADVERSARIAL)
    params["pipeline"]["segmentation"].append(segmentation)
    params["pipeline"]["adversarial"].append(adversarial)
    try:
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        status = json.loads(sh(root, repo["env"], "dvc", "status", "--json").stdout)
    finally:
        path.write_text(original)
    assert set(status) == {f"train_segmentation@{segmentation}", f"train_adversarial@{adversarial}",
                           "adversarial_transfer", "report"}


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
    summary = read_stage_metrics(root, "tune-segmentation")
    assert summary["enabled"] and summary["model"] == "unet" and summary["num_trials"] == 2
    assert summary["trials"][0]["config"] == {"lr": 0.002}  # the default point first
    assert 0.003 <= summary["best_config"]["lr"] <= 0.01  # tiny construction: a larger lr always wins
    tuned = yaml.safe_load((root / "tuned" / "segmentation.yaml").read_text())
    assert summary["applied"] and summary["min_improvement"] == 0  # a better lr always wins; the tiny margin is 0
    assert tuned["unet"] == summary["best_config"] and tuned["fcn"] == tuned["segnet"] == tuned["dilated"] == {}
    for family in ("detection", "generative", "translation", "captioning"):
        assert read_stage_metrics(root, f"tune-{family}")["enabled"] is False
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
    summary = read_stage_metrics(root, "tune-rl")
    assert summary["enabled"] and (summary["family"], summary["model"]) == ("rl", "reinforce")
    assert summary["num_trials"] == 2 and all(t["env_steps"] >= 1000 or t["stopped_early"] for t in summary["trials"])
    tuned = yaml.safe_load((root / "tuned" / "rl.yaml").read_text())
    applied = summary["applied"]  # the default may be the better of two tiny trials: then nothing is applied
    assert tuned["reinforce"] == (summary["best_config"] if applied else {})
    assert tuned["dqn"] == tuned["value_iteration"] == tuned["q_learning"] == {}
    children, reinforce_lr, kept = _sweep_children_and_tuned_param(root, summary, "cfg.lr", "tuned/rl.yaml")
    assert children == 2 and kept == ["tuned" if applied else "default"]
    assert [float(v) for (v,) in reinforce_lr] == ([summary["best_config"]["lr"]] if applied else [])


def test_adversarial_models_then_their_transfer_matrix(repo):
    """The listed classifiers, then the transfer stage: its diagonal is each model's own FGSM accuracy."""
    from mlflow import MlflowClient

    prepared = repo["root"]  # what the integration tests called their prepared repository

    metrics = {m: read_stage_metrics(prepared, f"adversarial-{m}") for m in ADVERSARIAL}
    for model, values in metrics.items():
        for key in ("val/accuracy", "val/robust_accuracy", "test/accuracy", "test/robust_accuracy_strong",
                    "test/robust_accuracy/fgsm/eps_0.2", "test/robust_accuracy/random_sign/eps_0.05",
                    "test/least_likely_success/one_step", "test/least_likely_success/iterative",
                    "test/universal_fooling_rate", "test/universal_random_fooling_rate"):
            assert 0.0 <= values[key] <= 1.0, (model, key)
        assert values["val/robust_accuracy"] == values["val/robust_accuracy/pgd/eps_0.2"]
        for name in ("fgsm_examples", "test_robustness", "test_universal"):
            assert (prepared / "figures" / f"adversarial-{model}" / f"{name}.png").is_file(), (model, name)
    export = torch.load(prepared / "models" / "adversarial" / "cnn" / "model.pt", weights_only=True)
    assert export["model"] == "cnn" and "state_dict" in export

    rows = {row: read_stage_metrics(prepared, f"adversarial_transfer/{row}")
            for row in (*ADVERSARIAL, RANDOM_SIGN)}
    for source in ADVERSARIAL:  # white-box on the source itself: the train stage's own FGSM test accuracy
        assert rows[source][f"test/accuracy_of/{source}"] == pytest.approx(
            metrics[source]["test/robust_accuracy/fgsm/eps_0.2"], abs=1e-6)
        others = [rows[source][f"test/accuracy_of/{t}"] for t in ADVERSARIAL if t != source]
        assert rows[source]["test/transfer_accuracy"] == pytest.approx(sum(others) / len(others))
    assert (prepared / "figures" / "adversarial_transfer" / "transfer.png").is_file()

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("adversarial")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([*ADVERSARIAL, "transfer"])
    cnn = next(r for r in runs if r.info.run_name == "cnn")
    curve = client.get_metric_history(cnn.info.run_id, "test/accuracy_vs_eps_x1000/pgd")
    assert [m.step for m in curve] == [50, 100, 200, 300]  # accuracy against epsilon, a curve in MLflow
    assert curve[2].value == pytest.approx(metrics["cnn"]["test/robust_accuracy/pgd/eps_0.2"])


def test_selfsup_methods_then_probe_and_transfer(repo):
    """Each listed method's encoder, the probes over them, an untrained one and the pixels, and the transfer."""
    from mlflow import MlflowClient

    prepared = repo["root"]  # what the integration tests called their prepared repository

    for method in SELFSUP:
        metrics = read_stage_metrics(prepared, f"selfsup-{method}")
        assert metrics["headline_metric"] == "val/knn_accuracy"
        assert 0.0 <= metrics["val/knn_accuracy"] <= 1.0 and 0.0 <= metrics["val/pretext_accuracy"] <= 1.0
        assert (prepared / "figures" / f"selfsup-{method}" / "views.png").is_file()
    export = torch.load(prepared / "models" / "selfsup" / "simclr" / "model.pt", weights_only=True)
    assert export["model"] == "simclr" and not any(k.startswith("classifier") for k in export["state_dict"])

    rows = {row: read_stage_metrics(prepared, f"selfsup_probe/{row}")
            for row in (*SELFSUP, *SELFSUP_REFERENCES)}
    for name, row in rows.items():
        for key in ("test/probe_accuracy", "test/probe_accuracy_few", "test/probe_accuracy_conv",
                    "test/probe_accuracy_conv_few", "test/probe_accuracy_mid", "test/probe_accuracy_mid_few"):
            assert 0.0 <= row[key] <= 1.0, (name, key)
        assert row["test/probe_accuracy_few_random"] == rows["random_init"]["test/probe_accuracy_few"]
    # the random encoder's row is the mean over its initialisations, with their spread beside it
    assert all(0.0 <= rows["random_init"][f"test/probe_accuracy{layer}_few_init_std"] < 0.5
               for layer in ("", "_conv", "_mid"))
    # the pixels have no layers: every layer's probe is the same
    assert rows["pixels"]["test/probe_accuracy_mid"] == rows["pixels"]["test/probe_accuracy_conv"] == rows[
        "pixels"]["test/probe_accuracy"]
    assert (prepared / "figures" / "selfsup_probe" / "tsne.png").is_file()

    transfer = {row: read_stage_metrics(prepared, f"selfsup_transfer/{row}")
                for row in (*SELFSUP, "scratch")}
    for name, row in transfer.items():
        assert 0.0 <= row["test/transfer_miou"] <= 1.0 and row["test/labelled_scenes"] >= 1, name
        assert row["test/transfer_miou_scratch"] == transfer["scratch"]["test/transfer_miou"]
        probe = rows["random_init" if name == "scratch" else name]  # the course's table: probe beside transfer
        assert row["test/probe_accuracy_few"] == probe["test/probe_accuracy_few"]
        assert row["test/probe_accuracy"] == probe["test/probe_accuracy"]
    assert (prepared / "figures" / "selfsup_transfer" / "transfer.png").is_file()

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("selfsup")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([*SELFSUP, "probe", "transfer"])


# --- the experiments: these change the repository, so they run last, in this order -----------------


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
