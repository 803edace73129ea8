"""The tune stage end to end on local Ray: trials as Ray Train runs, ASHA and PBT decisions, the
MLflow parent/child runs, the tuned file and metrics file, and a train stage applying the result."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from components.metrics_files import read_stage_metrics
from tests.conftest import REPO

pytestmark = pytest.mark.slow

METRICS_KEYS = {"family", "model", "metric", "mode", "enabled", "num_trials", "num_stopped_early", "best_value",
                "best_config", "default_value", "min_improvement", "applied", "reason", "confirmation", "wall_s",
                "parent_run_id", "experiment_id", "trials"}
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

    summary = read_stage_metrics(prepared, "tune-segmentation")
    assert set(summary) == METRICS_KEYS and all(set(t) == TRIAL_KEYS for t in summary["trials"])
    assert summary["enabled"] is True and summary["mode"] == "min" and summary["num_trials"] == 3
    default = {"lr": params["segmentation"]["models"]["unet"]["lr"]}
    trials = summary["trials"]
    assert trials[0]["config"] == default and trials[0]["epochs"] == 2 and not trials[0]["stopped_early"]
    assert [t["stopped_early"] for t in trials[1:]] == [True, True] and [t["epochs"] for t in trials[1:]] == [1, 1]
    assert summary["num_stopped_early"] == 2
    assert summary["best_config"] == default and summary["best_value"] == summary["default_value"] == trials[0]["value"]
    assert summary["applied"] is False and summary["reason"] == "the default values were the best at 2 epochs"

    tuned = yaml.safe_load((prepared / "tuned" / "segmentation.yaml").read_text())
    assert {k: tuned[k] for k in ("fcn", "unet", "segnet", "dilated")} == {  # params.yaml's values stay
        "fcn": {}, "unet": {}, "segnet": {}, "dilated": {}}
    assert tuned["_sweep"]["parent_run_id"] == summary["parent_run_id"] and tuned["_sweep"]["applied"] is False

    client, parent, children = _runs(prepared, "segmentation")
    assert parent.info.run_id == summary["parent_run_id"] and parent.info.status == "FINISHED"
    assert parent.info.experiment_id == summary["experiment_id"]
    assert float(parent.data.params["best.lr"]) == default["lr"]
    assert parent.data.metrics["best/train/loss"] == pytest.approx(summary["best_value"])
    assert parent.data.metrics["num_stopped_early"] == 2
    assert parent.data.tags["courselab.tuned_kept"] == "default"
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

    summary = read_stage_metrics(prepared, "tune-segmentation")
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


def test_translation_sweep_win_is_confirmed_at_full_length_before_its_train_stage_applies_it(prepared, ray_session):
    """Another family through the same stage (FIFO, two values searched). Its trials (1 epoch) are
    shorter than the model's 2, so a win is re-checked by training the default and the best values
    for 2 epochs; the tuned file carries the best values only if they still win, and the train
    stage then trains with them and says so. Known answer: the training loss falls faster with
    the larger learning rates searched than with the tiny default's."""

    from pipelines import train, tune

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["translation"]["models"]["rnn"]["epochs"] = 2
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _set_sweep(prepared, "translation", model="rnn", num_samples=2, trial_epochs=1, scheduler="fifo",
               metric="train/loss", min_improvement=0.0,
               search_space={"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.02},
                             "hidden_dim": {"distribution": "choice", "values": [24, 40]}})
    tune.main(["translation"])
    summary = read_stage_metrics(prepared, "tune-translation")
    assert summary["metric"] == "train/loss" and summary["mode"] == "min" and summary["num_trials"] == 2
    assert summary["num_stopped_early"] == 0 and all(t["epochs"] == 1 for t in summary["trials"])
    assert summary["trials"][0]["config"]["hidden_dim"] == 32  # the tiny default
    assert summary["best_config"] != summary["trials"][0]["config"]  # a larger lr won the 1-epoch trials
    confirmation = summary["confirmation"]
    assert confirmation["epochs"] == 2 and len(confirmation["trial_ids"]) == 2
    gain = confirmation["default_value"] - confirmation["tuned_value"]
    assert summary["applied"] is (gain >= 0) and "at 2 epochs" in summary["reason"]
    tuned = yaml.safe_load((prepared / "tuned" / "translation.yaml").read_text())
    assert tuned["rnn"] == (summary["best_config"] if summary["applied"] else {})
    assert tuned["transformer"] == {} and tuned["lstm"] == {}
    client, parent, children = _runs(prepared, "translation")
    assert len(children) == 4 and "best/train/loss" in parent.data.metrics  # 2 trials + 2 confirming runs
    confirming = [r for r in children if r.data.tags["courselab.trial_id"] in confirmation["trial_ids"]]
    assert sorted(r.data.tags["courselab.trial_epochs"] for r in confirming) == ["2", "2"]
    assert parent.data.metrics["confirm/tuned/train/loss"] == pytest.approx(confirmation["tuned_value"])

    train.main(["translation", "rnn"])
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`courselab.tuned_by_sweep_run` = '{summary['parent_run_id']}'")
    assert len(runs) == 1 and "best/val/bleu" in runs[0].data.metrics
    assert runs[0].data.tags["courselab.tuned_kept"] == ("tuned" if summary["applied"] else "default")
    expected = summary["best_config"] if summary["applied"] else {"lr": params["translation"]["models"]["rnn"]["lr"],
                                                                   "hidden_dim": 32}
    assert float(runs[0].data.params["model.lr"]) == pytest.approx(expected["lr"])
    assert int(runs[0].data.params["model.hidden_dim"]) == expected["hidden_dim"]


def test_asha_sweep_gives_the_same_trials_and_tuned_file_one_or_two_trials_at_a_time(prepared, ray_session):
    """Determinism: the same params and seed, trials one at a time or two at once (which trial
    reports first then depends on timing), give the same trial values, the same stops and the
    same tuned file."""
    from pipelines import tune

    outcomes = []
    for concurrency in (1, 2):
        _set_sweep(prepared, "segmentation", num_samples=4, trial_epochs=2, metric="val/miou", scheduler="asha",
                   asha={"grace_period": 1, "reduction_factor": 2}, max_concurrent_trials=concurrency,
                   min_improvement=0.0, trial_trainer={"cpus_per_worker": 1},
                   search_space={"lr": {"distribution": "loguniform", "low": 0.0005, "high": 0.05}})
        tune.main(["segmentation"])
        summary = read_stage_metrics(prepared, "tune-segmentation")
        tuned = yaml.safe_load((prepared / "tuned" / "segmentation.yaml").read_text())
        tuned["_sweep"].pop("parent_run_id")
        trials = [(t["config"], t["value"], t["epochs"], t["stopped_early"]) for t in summary["trials"]]
        outcomes.append((trials, tuned, summary["applied"], summary["best_config"]))
    assert outcomes[0] == outcomes[1]
    trials = outcomes[0][0]
    assert any(stopped for *_, stopped in trials)  # ASHA decided something (the case is not vacuous)


def test_a_trial_scores_what_the_train_stage_then_trains(prepared, ray_session):
    """Known answer: the sweep judges the model the train stage will build. A trial of the default
    values at the stage's length and threads (params.yaml's ``trial_trainer: {}``) ends at the val
    mIoU the train stage reaches with the same values, epoch by epoch, to the last bit."""
    from pipelines import train, tune

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["segmentation"]["trainer"]["cpus_per_worker"] = 2  # params.yaml's stage threads
    params["segmentation"]["models"]["unet"]["epochs"] = 2
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repo_sweep = yaml.safe_load((REPO / "params.yaml").read_text())["tune"]["segmentation"]
    _set_sweep(prepared, "segmentation", num_samples=1, trial_epochs=None, metric="val/miou", scheduler="fifo",
               trial_trainer=repo_sweep["trial_trainer"])
    tune.main(["segmentation"])
    train.main(["segmentation", "unet"])

    summary = read_stage_metrics(prepared, "tune-segmentation")
    (trial,) = summary["trials"]
    stage = read_stage_metrics(prepared, "segmentation-unet")
    assert trial["epochs"] == stage["epochs"] == 2
    assert trial["value"] == stage["val/miou"]
    client, _, (child,) = _runs(prepared, "segmentation")
    stage_run = client.get_run(stage["mlflow_run_id"])
    assert _history(client, child, "val/miou") == _history(client, stage_run, "val/miou")


def test_rl_sweep_runs_the_rllib_algorithm_as_trainable_and_rl_stage_applies_the_result(workdir, ray_session):
    """Known answer: REINFORCE with a learning rate of ~1e-7 cannot raise CartPole's return as the
    default lr (0.01) does, so with one trial at a time ASHA (first rung at 3000 env steps) stops
    both after the rung and the default stays best. Each trial is a child run in experiment rl with
    its return per env step; then rl@reinforce trains with params.yaml's values (the sweep kept them)
    and says so."""
    from pipelines import rl, tune

    params = _set_sweep(workdir, "rl", algo="reinforce", num_samples=3, trial_env_steps=6000, scheduler="asha",
                        asha={"grace_period": 3000, "reduction_factor": 2}, max_concurrent_trials=1,
                        search_space={"lr": {"distribution": "choice", "values": [1.0e-7, 2.0e-7]}})
    tune.main(["rl"])

    summary = read_stage_metrics(workdir, "tune-rl")
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
    assert summary["applied"] is False  # params.yaml's values stay
    assert {k: tuned[k] for k in ("value_iteration", "q_learning", "dqn", "reinforce")} == {
        "value_iteration": {}, "q_learning": {}, "dqn": {}, "reinforce": {}}

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
                              filter_string=f"tags.`courselab.tuned_by_sweep_run` = '{summary['parent_run_id']}'")
    assert len(runs) == 1 and runs[0].data.tags["courselab.tuned_kept"] == "default"
    assert "courselab.tuned_from" not in runs[0].data.tags  # nothing was applied
    assert float(runs[0].data.params["cfg.lr"]) == default["lr"]
