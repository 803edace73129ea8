"""The tune stage end to end on local Ray: trials as Ray Train runs, ASHA and PBT decisions, the
MLflow parent/child runs, the tuned file and metrics file, and a train stage applying the result."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow

METRICS_KEYS = {"family", "model", "metric", "mode", "enabled", "num_trials", "num_stopped_early", "best_value",
                "best_config", "default_value", "wall_s", "parent_run_id", "experiment_id", "trials"}
TRIAL_KEYS = {"trial_id", "config", "value", "epochs", "stopped_early"}


def _set_sweep(root, family: str, **sweep):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"][family].update(enabled=True, **sweep)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def _runs(root, experiment: str):
    """``(parent, children)`` of the one sweep in ``experiment``."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if "courselab.sweep" in r.data.tags and "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return client, parents[0], children


def _history(client, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def test_asha_sweep_stops_hopeless_trials_and_nests_every_trial_under_the_sweep(prepared, ray_session):
    """Known answer: trials whose learning rate is ~0 cannot lower the training loss as the default
    (lr 0.002) does, so with one trial at a time ASHA (grace 1, reduction factor 2) must stop both
    after epoch 1, and the default stays the best configuration."""
    from pipelines import tune

    params = _set_sweep(prepared, "segmentation", num_samples=3, trial_epochs=2, metric="train/loss",
                        scheduler="asha", asha={"grace_period": 1, "reduction_factor": 2}, max_concurrent_trials=1,
                        search_space={"lr": {"distribution": "choice", "values": [1.0e-6, 2.0e-6]}})
    tune.main(["segmentation"])

    summary = json.loads((prepared / "metrics" / "tune-segmentation.json").read_text())
    assert set(summary) == METRICS_KEYS and all(set(t) == TRIAL_KEYS for t in summary["trials"])
    assert summary["enabled"] is True and summary["mode"] == "min" and summary["num_trials"] == 3
    default = {"lr": params["segmentation"]["models"]["unet"]["lr"]}
    trials = summary["trials"]
    assert trials[0]["config"] == default and trials[0]["epochs"] == 2 and not trials[0]["stopped_early"]
    assert [t["stopped_early"] for t in trials[1:]] == [True, True] and [t["epochs"] for t in trials[1:]] == [1, 1]
    assert summary["num_stopped_early"] == 2
    assert summary["best_config"] == default and summary["best_value"] == summary["default_value"] == trials[0]["value"]

    tuned = yaml.safe_load((prepared / "tuned" / "segmentation.yaml").read_text())
    assert {k: tuned[k] for k in ("fcn", "unet", "segnet", "dilated")} == {
        "fcn": {}, "unet": default, "segnet": {}, "dilated": {}}
    assert tuned["_sweep"]["parent_run_id"] == summary["parent_run_id"]

    client, parent, children = _runs(prepared, "segmentation")
    assert parent.info.run_id == summary["parent_run_id"] and parent.info.status == "FINISHED"
    assert parent.info.experiment_id == summary["experiment_id"]
    assert float(parent.data.params["best.lr"]) == default["lr"]
    assert parent.data.metrics["best/train/loss"] == pytest.approx(summary["best_value"])
    assert parent.data.metrics["num_stopped_early"] == 2
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert artifacts == {"sweep/metric_vs_params.png", "sweep/tune-segmentation.json", "sweep/segmentation.yaml"}

    assert len(children) == 3
    by_trial = {r.data.tags["courselab.trial_id"]: r for r in children}
    assert set(by_trial) == {t["trial_id"] for t in trials}
    epoch1 = []
    for trial in trials:
        run = by_trial[trial["trial_id"]]
        assert run.info.status == "FINISHED" and run.data.tags["courselab.stopped_early"] == str(
            trial["stopped_early"]).lower()
        assert float(run.data.params["model.lr"]) == trial["config"]["lr"]
        losses = _history(client, run, "train/loss")
        # every epoch the trial trained is logged once (a stopped trial may finish the epoch it was in)
        assert [step for step, _ in losses] == list(range(1, len(losses) + 1)) and len(losses) >= trial["epochs"]
        assert losses[trial["epochs"] - 1][1] == pytest.approx(trial["value"])
        assert [step for step, _ in _history(client, run, "val/miou")] == [step for step, _ in losses]
        assert run.data.metrics["best/train/loss"] == pytest.approx(min(v for _, v in losses))
        epoch1.append(losses[0][1])
    # ASHA's rule, replayed: one trial at a time, each compared at epoch 1 with the median of the
    # values recorded before it (the reference trial is never stopped)
    recorded, expected = [], []
    for index, value in enumerate(epoch1):
        cutoff = np.nanpercentile([-v for v in recorded], 50) if recorded else None
        expected.append(index > 0 and cutoff is not None and -value < cutoff)
        recorded.append(value)
    assert expected == [t["stopped_early"] for t in trials]


def test_pbt_copies_a_better_trial_and_keeps_the_reference(prepared, ray_session, tiny_params):
    """Known answer: every sampled lr (1e-6..1e-5) is hopeless next to the default's, so at the
    first perturbation the worse of the two running trials restarts from the better one's
    checkpoint with a perturbed config, while the reference trial keeps its own."""
    from pipelines import prepare, tune

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["data"]["scenes"]["num_train"] = 800  # epochs long enough for PBT to act between them
    params["segmentation"]["trainer"]["cpus_per_worker"] = 1  # two trials at once: a population
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    prepare.main([])
    _set_sweep(prepared, "segmentation", num_samples=2, trial_epochs=4, metric="train/loss", scheduler="pbt",
               pbt={"perturbation_interval": 1, "quantile_fraction": 0.5, "resample_probability": 0.0},
               max_concurrent_trials=2,
               search_space={"lr": {"distribution": "loguniform", "low": 1.0e-6, "high": 1.0e-5}})
    tune.main(["segmentation"])

    summary = json.loads((prepared / "metrics" / "tune-segmentation.json").read_text())
    reference, other = summary["trials"]
    assert reference["config"] == {"lr": 0.002} and reference["epochs"] == 4 and summary["num_stopped_early"] == 0
    client, parent, children = _runs(prepared, "segmentation")
    restarted = [r for r in children if "courselab.started_from" in r.data.tags]
    assert restarted, "no trial was started from another trial's checkpoint"
    assert all(r.data.tags["courselab.trial_id"] == other["trial_id"] for r in restarted)
    assert reference["trial_id"] in restarted[0].data.tags["courselab.started_from"]  # it copied the reference
    first_step = min(step for step, _ in _history(client, restarted[0], "train/loss"))
    assert first_step > 1  # it continued after the copied epoch, not from scratch
    # explored: the copied config perturbed by 0.8 or 1.2 (resample_probability 0), then clipped into
    # the sweep's range, here [1e-6, 0.002] (the search bounds widened to the default point)
    assert other["config"]["lr"] in (pytest.approx(0.002 * 0.8), pytest.approx(0.002))
    assert other["epochs"] == 4 and other["value"] < 2.4  # it trained on from the reference's weights


def test_translation_sweep_when_enabled_and_its_train_stage_applies_the_result(prepared, ray_session):
    """Another family through the same stage (FIFO, two values searched), then its train stage
    trains the tuned model with the tuned values and says so."""
    from mlflow import MlflowClient

    from pipelines import train, tune

    _set_sweep(prepared, "translation", model="rnn", num_samples=2, trial_epochs=1, scheduler="fifo",
               search_space={"lr": {"distribution": "loguniform", "low": 0.001, "high": 0.01},
                             "hidden_dim": {"distribution": "choice", "values": [24, 40]}})
    tune.main(["translation"])
    summary = json.loads((prepared / "metrics" / "tune-translation.json").read_text())
    assert summary["metric"] == "val/bleu" and summary["mode"] == "max" and summary["num_trials"] == 2
    assert summary["num_stopped_early"] == 0 and all(t["epochs"] == 1 for t in summary["trials"])
    assert summary["trials"][0]["config"]["hidden_dim"] == 32  # the tiny default
    tuned = yaml.safe_load((prepared / "tuned" / "translation.yaml").read_text())
    assert tuned["rnn"] == summary["best_config"] and tuned["transformer"] == {} and tuned["lstm"] == {}
    _, parent, children = _runs(prepared, "translation")
    assert len(children) == 2 and "best/val/bleu" in parent.data.metrics

    train.main(["translation", "rnn"])
    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("translation").experiment_id],
                              filter_string="tags.`courselab.tuned_from` = 'tuned/translation.yaml'")
    assert len(runs) == 1
    assert float(runs[0].data.params["model.lr"]) == pytest.approx(summary["best_config"]["lr"])
    assert int(runs[0].data.params["model.hidden_dim"]) == summary["best_config"]["hidden_dim"]
    assert runs[0].data.tags["courselab.tuned_by_sweep_run"] == summary["parent_run_id"]
    assert "best/val/bleu" in runs[0].data.metrics


def test_rl_sweep_runs_the_rllib_algorithm_as_trainable_and_rl_stage_applies_the_result(workdir, ray_session):
    """Known answer: REINFORCE with a learning rate of ~1e-7 cannot raise CartPole's return as the
    default lr (0.01) does, so with one trial at a time ASHA (first rung at 3000 env steps) stops
    both after the rung and the default stays best. Each trial is a child run in experiment rl with
    its return per env step; then rl@reinforce trains with tuned/rl.yaml's values and says so."""
    from pipelines import rl, tune

    params = _set_sweep(workdir, "rl", algo="reinforce", num_samples=3, trial_env_steps=6000, scheduler="asha",
                        asha={"grace_period": 3000, "reduction_factor": 2}, max_concurrent_trials=1,
                        search_space={"lr": {"distribution": "choice", "values": [1.0e-7, 2.0e-7]}})
    tune.main(["rl"])

    summary = json.loads((workdir / "metrics" / "tune-rl.json").read_text())
    assert set(summary) == METRICS_KEYS
    assert all(set(t) == TRIAL_KEYS - {"epochs"} | {"env_steps"} for t in summary["trials"])
    assert (summary["family"], summary["model"], summary["mode"]) == ("rl", "reinforce", "max")
    default = {"lr": params["rl"]["algos"]["reinforce"]["lr"]}
    reference, *others = summary["trials"]
    assert reference["config"] == default and reference["env_steps"] == 6000 and not reference["stopped_early"]
    assert [t["stopped_early"] for t in others] == [True, True] and summary["num_stopped_early"] == 2
    assert all(3000 <= t["env_steps"] < 6000 for t in others)
    assert summary["best_config"] == default and summary["best_value"] == reference["value"]
    tuned = yaml.safe_load((workdir / "tuned" / "rl.yaml").read_text())
    assert {k: tuned[k] for k in ("value_iteration", "q_learning", "dqn", "reinforce")} == {
        "value_iteration": {}, "q_learning": {}, "dqn": {}, "reinforce": default}

    client, parent, children = _runs(workdir, "rl")
    assert parent.info.run_id == summary["parent_run_id"] and parent.data.params["trial_env_steps"] == "6000"
    assert parent.data.metrics["best/rl/episode_return_mean"] == pytest.approx(summary["best_value"])
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")} == {
        "sweep/metric_vs_params.png", "sweep/tune-rl.json", "sweep/rl.yaml"}
    by_trial = {r.data.tags["courselab.trial_id"]: r for r in children}
    assert set(by_trial) == {t["trial_id"] for t in summary["trials"]}
    for trial in summary["trials"]:
        run = by_trial[trial["trial_id"]]
        assert run.info.status == "FINISHED" and float(run.data.params["cfg.lr"]) == trial["config"]["lr"]
        returns = _history(client, run, "rl/episode_return_mean")
        steps = [step for step, _ in returns]
        assert steps == sorted(set(steps)) and steps[-1] >= trial["env_steps"]  # one point per iteration
        # the value at the trial's env steps: a stopped trial's last report; the completed one's
        # return at exactly 6000 steps, between the two iterations around it (no overshoot)
        assert np.interp(trial["env_steps"], steps, [v for _, v in returns]) == pytest.approx(trial["value"])
        assert (trial["env_steps"] in steps) == trial["stopped_early"]
        assert run.data.metrics["best/rl/episode_return_mean"] == pytest.approx(max(v for _, v in returns))
    hopeless = max(t["value"] for t in others)
    assert reference["value"] > hopeless  # the default learned; the ~0 learning rates did not

    rl.main(["reinforce"])
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string="tags.`courselab.tuned_from` = 'tuned/rl.yaml'")
    assert len(runs) == 1 and runs[0].data.tags["courselab.tuned_by_sweep_run"] == summary["parent_run_id"]
    assert float(runs[0].data.params["cfg.lr"]) == default["lr"]
