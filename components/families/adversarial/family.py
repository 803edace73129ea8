"""The adversarial family's descriptor (see components/families/base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.families.adversarial.config import AdversarialConfig, AdversarialModels
from components.families.base import Curve, Family, Stage
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params

MODELS = tuple(AdversarialModels.model_fields)
RANDOM_SIGN = "random_sign"  # the transfer table's control row: random sign noise of the same size


def shrink(params: dict, sweep: dict) -> None:
    """Tests: two epochs of narrow networks, short attacks, a universal perturbation from 64 images."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=128, figure_every=1)
    for model in params["models"].values():
        model.update(epochs=2)
        if "channels" in model:
            model.update(channels=[8], feature_dim=16)
        else:
            model.update(hidden=[32])
        if model.get("adversarial_training"):
            model["adversarial_training"].update(steps=2, ramp_epochs=1)
    params["attacks"].update(pgd_steps=3, strong_steps=4, strong_restarts=2, least_likely_steps=3)
    params["attacks"]["universal"].update(max_passes=1, max_images=64)
    sweep.update(num_samples=2, trial_epochs=1)


def transfer_rows(params: Params) -> dict[str, dict[str, Any]]:
    """The transfer table's rows: each model the examples are crafted on, and the random-sign control."""
    attacks = params.adversarial.attacks
    rows = {model: {"crafted_on": model, "epsilon": attacks.transfer_epsilon} for model in params.pipeline.adversarial}
    rows[RANDOM_SIGN] = {"crafted_on": "random sign noise", "epsilon": attacks.transfer_epsilon}
    return rows


def check_attacks(params: Params) -> None:
    """The adversarially trained model must be trained adversarially, the others not; the transfer
    stage needs two models to transfer between."""
    if len(params.pipeline.adversarial) < 2:
        raise ValueError(f"pipeline.adversarial: stage adversarial_transfer needs two models to transfer between "
                         f"(got {', '.join(params.pipeline.adversarial)}); add one of {', '.join(MODELS)}")
    for model in MODELS:
        trained = getattr(params.adversarial.models, model).adversarial_training is not None
        if trained != (model == "cnn_pgd"):
            want = "a section" if model == "cnn_pgd" else "null"
            raise ValueError(f"adversarial.models.{model}.adversarial_training: must be {want} "
                             f"(cnn_pgd is the adversarially trained model, the others are undefended)")


TRANSFER = Stage(
    name="adversarial_transfer", entry="pipelines.adversarial_transfer",
    params=("seed", "runtime", "data.root", "data.${adversarial.dataset}", "adversarial.dataset",
            "adversarial.attacks", "pipeline.adversarial"),
    inputs=("data/${adversarial.dataset}", "models/adversarial"),  # the listed models' folders
    outs=("figures/adversarial_transfer",),
    metrics=(), row_folder=True,
    report_params=("adversarial.attacks.transfer_epsilon",),
    title="Transfer: FGSM examples crafted on one model, test accuracy of each model",
    headline="test/transfer_accuracy", references=(("clean accuracy (mean)", "test/clean_accuracy"),),
    rows=transfer_rows,
    columns=tuple(f"test/accuracy_of/{model}" for model in MODELS),
)

FAMILIES = (
    Family(
        name="adversarial", order=70, title="Adversarial examples", experiment="adversarial",
        config=AdversarialConfig, sweep_config=SweepConfig,
        task_module="components.families.adversarial.task",
        headline="val/robust_accuracy", higher_is_better=frozenset({"robust_accuracy", "transfer_accuracy"}),
        references=(("clean accuracy", "val/accuracy"),),
        stage_params=("attacks",),
        shrink=shrink,
        curves=(Curve("val/robust_accuracy", "val accuracy under PGD at the headline epsilon"),
                Curve("val/accuracy", "clean val accuracy"), Curve("train/loss", "training loss")),
        extra_stages=(TRANSFER,),
        check=check_attacks,
        columns=("test/accuracy", "test/robust_accuracy", "test/robust_accuracy_strong", "test/random_sign_accuracy",
                 "test/least_likely_success/one_step", "test/least_likely_success/iterative",
                 "test/universal_fooling_rate", "test/universal_random_fooling_rate"),
        # dvc metrics show: one attack of each kind (the rest is in metrics/details/)
        summary=("test/accuracy", "test/robust_accuracy", "test/robust_accuracy_strong",
                 "test/least_likely_success/iterative", "test/universal_fooling_rate", "val/accuracy"),
    ),
)
