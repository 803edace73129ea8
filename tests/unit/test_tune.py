"""The Ray Tune harness without running a sweep: search spaces, metric directions, schedulers'
reference trial, concurrency, tuned overrides and PBT's hyperparameter hand-over."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from ray import tune
from ray.tune.schedulers import TrialScheduler

from components.config import parse_params
from components.errors import UserError
from components.families import FAMILIES
from components.metrics.direction import best_summaries, metric_mode
from components.train.schedules import warmup_cosine
from components.train.task import hyperparameters as _hyperparameters
from components.train.task import keep_hyperparameters as _keep_hyperparameters
from components.tune import space
from components.tune.overrides import (
    apply_tuned,
    read_tuned,
    tuned_file_text,
    tuned_path,
)
from components.tune.schedulers import ReferencePBT, SerialASHA, rung_milestones


def _sweep(tiny_params, family="segmentation", **changes):
    tiny_params["tune"][family].update(changes)
    return parse_params(tiny_params)


# --- search spaces ------------------------------------------------------------------------------


def test_search_space_maps_to_ray_tune_domains_with_the_bounds(tiny_params):
    params = _sweep(tiny_params, search_space={
        "lr": {"distribution": "loguniform", "low": 0.0003, "high": 0.01},
        "warmup_fraction": {"distribution": "uniform", "low": 0.0, "high": 0.2},
        "weight_decay": {"distribution": "qloguniform", "low": 1.0e-5, "high": 1.0e-2, "q": 1.0e-5},
        "depth": {"distribution": "randint", "low": 2, "high": 5},
        "base_channels": {"distribution": "quniform", "low": 8, "high": 16, "q": 4},
        "lr_schedule": {"distribution": "choice", "values": ["cosine", "constant"]},
    })
    domains = space.param_space(params.tune.segmentation)
    lr = domains["lr"]
    assert isinstance(lr, tune.search.sample.Float) and (lr.lower, lr.upper) == (0.0003, 0.01)
    assert type(lr.get_sampler()).__name__ == "_LogUniform"
    assert type(domains["warmup_fraction"].get_sampler()).__name__ == "_Uniform"
    assert (domains["warmup_fraction"].lower, domains["warmup_fraction"].upper) == (0.0, 0.2)
    assert domains["weight_decay"].get_sampler().q == 1.0e-5
    depth = domains["depth"]
    assert isinstance(depth, tune.search.sample.Integer) and (depth.lower, depth.upper) == (2, 5)
    assert domains["base_channels"].get_sampler().q == 4
    assert domains["lr_schedule"].categories == ["cosine", "constant"]
    samples = [{k: d.sample() for k, d in domains.items()} for _ in range(200)]
    assert all(0.0003 <= s["lr"] <= 0.01 and 2 <= s["depth"] <= 4 for s in samples)  # randint excludes high
    assert {s["depth"] for s in samples} == {2, 3, 4}
    assert {s["base_channels"] for s in samples} <= {8, 12, 16}
    # log-uniform: about as many samples below the geometric midpoint as above
    below = sum(s["lr"] < math.sqrt(0.0003 * 0.01) for s in samples)
    assert 70 < below < 130


def test_default_point_is_the_models_current_values(tiny_params):
    tiny_params["tune"]["segmentation"]["trial_trainer"] = {"batch_size": 4}
    params = _sweep(tiny_params, search_space={
        "lr": {"distribution": "loguniform", "low": 0.0003, "high": 0.01},
        "trainer.batch_size": {"distribution": "choice", "values": [4, 8]},
    })
    unet = params.segmentation.models.unet
    assert FAMILIES["segmentation"].default_point(params) == {"lr": unet.lr, "trainer.batch_size": 4}


def test_trial_epochs_default_to_the_models(tiny_params):
    assert FAMILIES["segmentation"].sweep_length(_sweep(tiny_params, trial_epochs=3))[1] == 3
    params = _sweep(tiny_params, trial_epochs=None)
    assert FAMILIES["segmentation"].sweep_length(params)[1] == params.segmentation.models.unet.epochs


def test_concurrency_from_the_cluster_and_a_trials_workers(tiny_params):
    params = _sweep(tiny_params, num_samples=8, max_concurrent_trials=None)
    sweep, trainer = params.tune.segmentation, params.segmentation.trainer
    two_cpu = trainer.model_copy(update={"num_workers": 1, "cpus_per_worker": 2})
    one_cpu = two_cpu.model_copy(update={"cpus_per_worker": 1})
    gpus = two_cpu.model_copy(update={"use_gpu": True, "num_workers": 2, "gpus_per_worker": 1})

    def fits(trainer, cluster, sweep=sweep):
        return space.max_concurrent(sweep, space.trial_resources(trainer), cluster)

    assert fits(two_cpu, {"CPU": 2.0}) == 1
    assert fits(one_cpu, {"CPU": 2.0}) == 2
    assert fits(two_cpu, {"CPU": 64.0}) == 8  # never more than num_samples
    assert fits(gpus, {"CPU": 64.0, "GPU": 4.0}) == 2  # 4 GPUs / 2 per trial
    assert fits(two_cpu, {"CPU": 1.0}) == 1  # at least 1 (check_resources fails first)
    fixed = _sweep(tiny_params, num_samples=8, max_concurrent_trials=3).tune.segmentation
    assert fits(two_cpu, {"CPU": 2.0}, fixed) == 3


# --- metric directions --------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "mode"), [
    ("val/miou", "max"), ("val/map", "max"), ("val/map_50", "max"), ("val/bleu", "max"), ("val/accuracy", "max"),
    ("test/accuracy", "max"), ("rl/episode_return_mean", "max"), ("val/fid_evaluator", "min"),
    ("val/fid_inception", "min"), ("train/loss", "min"), ("val/perplexity", "min"),
    ("val/fid_evaluator_floor", None), ("val/iou/background", None), ("time/epoch_s", None), ("train/loss_g", None),
    ("best/val/miou", None), ("miou", None),
])
def test_metric_direction(key, mode):
    assert metric_mode(key) == mode


def test_best_summaries_take_each_metrics_direction_and_skip_the_rest():
    history = [
        {"epoch": 1.0, "val/miou": 0.3, "train/loss": 0.9, "val/fid_evaluator": 40.0, "time/epoch_s": 3.0},
        {"epoch": 2.0, "val/miou": 0.5, "train/loss": 0.7, "val/fid_evaluator": 55.0, "time/epoch_s": 2.0},
        {"epoch": 3.0, "val/miou": 0.4, "train/loss": 0.8, "val/fid_evaluator": float("nan")},
    ]
    assert best_summaries(history) == {"best/val/miou": 0.5, "best/train/loss": 0.7, "best/val/fid_evaluator": 40.0}
    assert best_summaries([]) == {}


# --- schedulers: the reference trial ------------------------------------------------------------


class _Trial:
    def __init__(self, trial_id: str, config: dict):
        self.trial_id, self.config, self.experiment_tag = trial_id, config, trial_id


def test_asha_stops_a_trial_below_the_cutoff_but_never_the_reference():
    reference = {"lr": 0.002}
    asha = SerialASHA(reference, time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2)
    asha.set_search_properties("val/miou", "max")
    strong, reference_trial, weak = _Trial("a", {"lr": 0.01}), _Trial("b", dict(reference)), _Trial("c", {"lr": 0.1})
    for trial in (strong, reference_trial, weak):
        asha.on_trial_add(None, trial)
    result = {"training_iteration": 1}
    assert asha.on_trial_result(None, strong, {**result, "val/miou": 0.6}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, reference_trial, {**result, "val/miou": 0.2}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, weak, {**result, "val/miou": 0.1}) == TrialScheduler.STOP
    # a completed trial ends on its own: "stopped early" means a rung stopped it
    assert asha.on_trial_result(None, strong, {"training_iteration": 4, "val/miou": 0.7}) == TrialScheduler.CONTINUE
    assert asha.rungs.stopped_at == {"c": 1}


def test_asha_rungs_are_ray_s_below_max_t():
    assert rung_milestones(1, 2, 5) == [1, 2, 4]
    assert rung_milestones(1, 2, 2) == [1]
    assert rung_milestones(12500, 2, 50000) == [12500, 25000]
    assert rung_milestones(5, 3, 5) == []


def _serial_decisions(scheduler, values: list[list[float]], metric: str = "m") -> list[int | None]:
    """Each trial's stop epoch (None: ran to the end), one trial at a time in order."""
    trials = [_Trial(f"t{i:02d}", {"lr": i}) for i in range(len(values))]
    stops = []
    for trial, curve in zip(trials, values, strict=True):
        scheduler.on_trial_add(None, trial)
        stop = None
        for epoch, value in enumerate(curve, start=1):
            if scheduler.on_trial_result(None, trial, {"training_iteration": epoch, metric: value}) == "STOP":
                stop = epoch
                break
        scheduler.on_trial_complete(None, trial, {})
        stops.append(stop if stop is not None and stop < len(curve) else None)
    return stops


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["max", "min"])
def test_serial_asha_decides_as_ray_s_asha_with_one_trial_at_a_time(seed, mode):
    """The library cross-check: fed one trial at a time, SerialASHA stops the same trials at the
    same rungs as Ray's own AsyncHyperBandScheduler."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(0.1, 0.3, size=(12, 8)), axis=1).tolist()  # 12 trials x 8 epochs
    ray_asha = AsyncHyperBandScheduler(time_attr="training_iteration", max_t=8, grace_period=1, reduction_factor=2,
                                       stop_last_trials=False)
    ours = SerialASHA({"lr": -1}, time_attr="training_iteration", max_t=8, grace_period=1, reduction_factor=2)
    for scheduler in (ray_asha, ours):
        scheduler.set_search_properties("m", mode)
    expected = _serial_decisions(ray_asha, values)
    assert _serial_decisions(ours, values) == expected
    assert any(expected) and not all(expected)  # the case decides something both ways
    assert ours.rungs.stopped_at == {f"t{i:02d}": stop for i, stop in enumerate(expected) if stop}


@pytest.mark.parametrize("seed", range(8))
def test_serial_asha_decisions_do_not_depend_on_the_order_results_arrive_in(seed):
    """Known answer: several trials at a time, their epochs interleaved at random (a loaded or an
    idle machine), give the stops of one trial at a time; a trial told to stop late trains on
    until then, and the reference trial is never stopped."""
    rng = np.random.default_rng(100 + seed)
    values = np.cumsum(rng.normal(0.1, 0.3, size=(10, 6)), axis=1).tolist()
    reference = {"lr": 0}  # trial t00 runs the default point

    def make():
        asha = SerialASHA(reference, time_attr="training_iteration", max_t=6, grace_period=1, reduction_factor=2)
        asha.set_search_properties("m", "max")
        return asha

    serial = make()
    _serial_decisions(serial, values)
    for concurrency in (2, 3, 10):
        asha, order = make(), np.random.default_rng(seed * 31 + concurrency)
        trials = [_Trial(f"t{i:02d}", {"lr": i}) for i in range(len(values))]
        waiting, running, epoch = list(trials), [], {}
        while waiting or running:
            while waiting and len(running) < concurrency:
                trial = waiting.pop(0)
                asha.on_trial_add(None, trial)
                running.append(trial)
                epoch[trial.trial_id] = 0
            trial = running[order.integers(len(running))]
            epoch[trial.trial_id] += 1
            index = int(trial.trial_id[1:])
            decision = asha.on_trial_result(None, trial, {"training_iteration": epoch[trial.trial_id],
                                                          "m": values[index][epoch[trial.trial_id] - 1]})
            if decision == "STOP" or epoch[trial.trial_id] == len(values[index]):
                running.remove(trial)
                asha.on_trial_complete(None, trial, {})
        assert asha.rungs.stopped_at == serial.rungs.stopped_at, concurrency
    assert "t00" not in serial.rungs.stopped_at and serial.rungs.stopped_at


def test_pbt_reference_trial_is_never_in_the_exploiting_quantile():
    from ray.tune.schedulers.pbt import _PBTTrialState

    reference = {"lr": 0.002}
    pbt = ReferencePBT(reference, time_attr="training_iteration", perturbation_interval=1,
                       hyperparam_mutations={"lr": tune.loguniform(1e-4, 1e-1)})
    exploited = []
    pbt._exploit = lambda controller, trial, donor: exploited.append((trial.trial_id, donor.trial_id))
    reference_trial, other = _Trial("ref", dict(reference)), _Trial("other", {"lr": 0.01})
    pbt._trial_state = {trial: _PBTTrialState(trial) for trial in (reference_trial, other)}
    pbt._trial_state[other].last_checkpoint = object()
    pbt._checkpoint_or_exploit(reference_trial, None, upper_quantile=[other], lower_quantile=[reference_trial])
    assert exploited == []  # the reference keeps its own config and weights
    pbt._trial_state[reference_trial].last_checkpoint = object()
    pbt._checkpoint_or_exploit(other, None, upper_quantile=[reference_trial], lower_quantile=[other])
    assert exploited == [("other", "ref")]  # any other trial still copies a better one (the reference too)


def test_pbt_perturbations_stay_within_the_search_range(tiny_params):
    params = _sweep(tiny_params, "rl", search_space={
        "gamma": {"distribution": "uniform", "low": 0.97, "high": 0.999},
        "episodes_per_batch": {"distribution": "randint", "low": 4, "high": 17},
        "baseline": {"distribution": "choice", "values": ["none", "normalize"]},
    })
    clip = space.within_bounds(params.tune.rl, {"gamma": 0.99, "episodes_per_batch": 32, "baseline": "value"})
    assert clip({"gamma": 0.99 * 1.2, "episodes_per_batch": 40, "baseline": "none"}) == {
        "gamma": 0.999, "episodes_per_batch": 32, "baseline": "none"}  # the default (32) widens the range
    assert clip({"gamma": 0.99 * 0.8, "episodes_per_batch": 3}) == {"gamma": 0.97, "episodes_per_batch": 4}
    assert clip({"gamma": 0.98, "episodes_per_batch": 8}) == {"gamma": 0.98, "episodes_per_batch": 8}
    scheduler = space.scheduler(params.tune.rl.model_copy(update={"scheduler": "pbt"}), 1000, {"gamma": 0.99},
                                "rl/env_steps")
    assert scheduler._custom_explore_fn is not None


# --- tuned overrides ----------------------------------------------------------------------------


def test_tuned_file_round_trip_gives_each_model_its_section(tmp_path, tiny_params):
    models = ["fcn", "unet", "segnet", "dilated"]
    text = tuned_file_text(models, "unet", {"lr": 0.004, "base_channels": 12}, {"parent_run_id": "abc"})
    path = tuned_path(tmp_path, "segmentation")
    path.parent.mkdir()
    path.write_text(text)
    data = yaml.safe_load(text)
    assert {k: data[k] for k in models} == {"fcn": {}, "unet": {"lr": 0.004, "base_channels": 12}, "segnet": {},
                                              "dilated": {}}
    assert read_tuned(tmp_path, "segmentation", "unet") == ({"lr": 0.004, "base_channels": 12},
                                                            {"parent_run_id": "abc"}, path)
    assert read_tuned(tmp_path, "segmentation", "fcn")[0] == {}
    assert read_tuned(tmp_path, "detection", "fcos")[0] == {}  # no file: no overrides


def test_overrides_apply_to_the_model_and_its_trainer_only(tiny_params):
    params = parse_params(tiny_params)
    values = {"lr": 0.004, "base_channels": 12, "trainer.batch_size": 4}
    tuned = FAMILIES["segmentation"].with_values(params, "unet", values,
                                                 "tuned/segmentation.yaml")
    assert tuned.segmentation.models.unet.lr == 0.004 and tuned.segmentation.models.unet.base_channels == 12
    assert tuned.segmentation.trainer.batch_size == 4
    assert tuned.segmentation.models.fcn == params.segmentation.models.fcn
    assert tuned.segmentation.models.unet.depth == params.segmentation.models.unet.depth
    assert tuned.detection == params.detection
    assert params.segmentation.models.unet.lr != 0.004  # the original is untouched


@pytest.mark.parametrize(("values", "expected"), [
    ({"lr": -1.0}, "tuned/segmentation.yaml: unet.lr: Input should be greater than 0 (got -1.0)"),
    ({"lrr": 0.1}, "tuned/segmentation.yaml: unet.lrr: unknown key"),
    ({"trainer.batch_size": 0}, "tuned/segmentation.yaml: unet.trainer.batch_size: Input should be greater than 0"),
])
def test_invalid_tuned_value_is_a_user_error_naming_the_file_and_key(tiny_params, values, expected):
    with pytest.raises(UserError, match="^" + expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        FAMILIES["segmentation"].with_values(parse_params(tiny_params), "unet", values, "tuned/segmentation.yaml")


def test_rl_tuned_values_reach_their_algorithm_only(tmp_path, tiny_params, capsys):
    """tuned/rl.yaml as tune_rl writes it (a key per rl.algos entry) and as rl@<algo> applies it."""
    params = parse_params(tiny_params)
    algos = ["value_iteration", "q_learning", "dqn", "reinforce"]
    path = tuned_path(tmp_path, "rl")
    path.parent.mkdir()
    path.write_text(tuned_file_text(algos, "reinforce", {"lr": 0.02, "episodes_per_batch": 8},
                                    {"parent_run_id": "p1"}))
    tuned, tags = apply_tuned(params, tmp_path, "rl", "reinforce")
    assert (tuned.rl.algos.reinforce.lr, tuned.rl.algos.reinforce.episodes_per_batch) == (0.02, 8)
    assert tuned.rl.algos.reinforce.gamma == params.rl.algos.reinforce.gamma
    assert tuned.rl.algos.dqn == params.rl.algos.dqn and tuned.rl.gridworld == params.rl.gridworld
    assert tags == {"courselab.tuned_from": "tuned/rl.yaml", "courselab.tuned_by_sweep_run": "p1"}
    assert "[rl/reinforce] tuned values from tuned/rl.yaml (over params.yaml): lr=0.02, episodes_per_batch=8" in (
        capsys.readouterr().out)
    assert apply_tuned(params, tmp_path, "rl", "dqn") == (params, {})  # {}: params.yaml as it is
    assert apply_tuned(params, tmp_path / "nowhere", "rl", "reinforce") == (params, {})  # no sweep ran yet


def test_invalid_rl_tuned_value_names_the_file_and_key(tiny_params):
    with pytest.raises(UserError, match=r"^tuned/rl\.yaml: reinforce\.baseline: Input should be 'none', "):
        FAMILIES["rl"].with_values(parse_params(tiny_params), "reinforce", {"baseline": "critic"}, "tuned/rl.yaml")


def test_rl_default_point_is_the_algorithms_current_values(tiny_params):
    params = _sweep(tiny_params, "rl", algo="dqn", search_space={
        "lr": {"distribution": "loguniform", "low": 1.0e-4, "high": 1.0e-3},
        "train_batch_size": {"distribution": "choice", "values": [32, 64]},
    })
    dqn = params.rl.algos.dqn
    assert FAMILIES["rl"].default_point(params) == {"lr": dqn.lr, "train_batch_size": dqn.train_batch_size}
    assert params.tune.rl.model == "dqn"  # the tuned file's key, as a family sweep's model


# --- PBT: another trial's state, this trial's hyperparameters -----------------------------------


class _Task:
    """The optimizer/scheduler shape of a ModuleTask: AdamW + LambdaLR (warm-up, cosine)."""

    def __init__(self, lr: float, weight_decay: float):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 2)
        self.optimizers = {"net": torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=weight_decay)}
        self.schedulers = {"net": torch.optim.lr_scheduler.LambdaLR(self.optimizers["net"], warmup_cosine(2, 20))}

    def step(self):
        loss = self.net(torch.ones(4, 3)).square().sum()
        loss.backward()
        self.optimizers["net"].step()
        self.schedulers["net"].step()

    def state_dict(self):
        return {"net": self.net.state_dict(), "opt": self.optimizers["net"].state_dict(),
                "sched": self.schedulers["net"].state_dict()}

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
        self.optimizers["net"].load_state_dict(state["opt"])
        self.schedulers["net"].load_state_dict(state["sched"])


def test_starting_from_another_trial_keeps_its_state_and_this_trials_hyperparameters():
    donor = _Task(lr=0.1, weight_decay=0.0)
    for _ in range(5):
        donor.step()
    state = donor.state_dict()
    task = _Task(lr=0.01, weight_decay=0.05)
    groups, base_lrs = _hyperparameters(task)
    task.load_state_dict(state)
    assert task.optimizers["net"].param_groups[0]["weight_decay"] == 0.0  # the donor's, before the hand-over
    _keep_hyperparameters(task, groups, base_lrs)
    group = task.optimizers["net"].param_groups[0]
    assert group["weight_decay"] == 0.05 and task.schedulers["net"].base_lrs == [0.01]
    assert group["lr"] == pytest.approx(0.01 * warmup_cosine(2, 20)(5))  # this trial's peak, the donor's step
    assert task.schedulers["net"].last_epoch == 5
    moments = task.optimizers["net"].state_dict()["state"][0]["exp_avg"]
    torch.testing.assert_close(moments, donor.optimizers["net"].state_dict()["state"][0]["exp_avg"])
    torch.testing.assert_close(task.net.weight, donor.net.weight)
    task.step()  # and the schedule goes on from there with this trial's peak
    assert task.optimizers["net"].param_groups[0]["lr"] == pytest.approx(0.01 * warmup_cosine(2, 20)(6))


# --- the verdict: tuned values only when they beat the default ---------------------------------------


@pytest.mark.parametrize(("mode", "default", "tuned", "is_default", "applied", "says"), [
    ("max", 0.80, 0.82, False, True, "+0.02"),
    ("max", 0.80, 0.805, False, False, "less than min_improvement 0.01"),
    ("max", 0.80, 0.79, False, False, "-0.01"),
    ("min", 20.0, 19.995, False, False, "less than"),
    ("min", 20.0, 18.0, False, True, "+2"),
    ("max", 0.80, 0.80, True, False, "the default values were the best at 5 epochs"),
    ("max", None, 0.5, False, True, "the default values reported no val/miou"),
])
def test_verdict_applies_tuned_values_only_past_the_margin(mode, default, tuned, is_default, applied, says):
    from pipelines.tune import verdict

    margin = 1.0 if mode == "min" else 0.01
    got, reason = verdict("val/miou", mode, default, tuned, is_default, margin, "5 epochs")
    assert got is applied and says in reason


def test_kept_default_is_tagged_but_changes_nothing(tmp_path, tiny_params):
    params = parse_params(tiny_params)
    provenance = {"model": "unet", "metric": "val/miou", "applied": False, "reason": "the default values were the best",
                  "parent_run_id": "abc"}
    path = tuned_path(tmp_path, "segmentation")
    path.parent.mkdir()
    path.write_text(tuned_file_text(["fcn", "unet"], "unet", {}, provenance))
    applied, tags = apply_tuned(params, tmp_path, "segmentation", "unet")
    assert applied == params
    assert tags == {"courselab.tuned_by_sweep_run": "abc", "courselab.tuned_kept": "default",
                    "courselab.tuned_reason": "the default values were the best"}
    assert apply_tuned(params, tmp_path, "segmentation", "fcn") == (params, {})  # not the swept model
