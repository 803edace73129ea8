"""The generative family's descriptor (see components/families/base.py)."""

from components.families.base import Curve, Family, Stage
from components.families.generative.config import GenerativeConfig
from components.tune.config import SweepConfig


def shrink(params: dict, sweep: dict) -> None:
    """Tests: a 2-epoch 8-channel evaluator, 64 samples per FID, one epoch of 8-channel networks."""
    params["evaluator"].update(epochs=2, channels=[8], feature_dim=16, min_test_accuracy=0.0)
    params["fid"].update(num_generated=64)
    params["backbone"].update(latent_dim=8, g_channels=8, d_channels=8)
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=64, figure_every=1)
    for model in params["models"].values():
        model.update(epochs=1)
    sweep.update(num_samples=2, trial_epochs=1)


# The classifier whose features define val/fid_evaluator: trained once per dataset, before any model.
EVALUATOR = Stage(
    name="evaluator", entry="pipelines.evaluator",
    params=("seed", "runtime", "data.root", "data.${generative.dataset}", "generative.dataset",
            "generative.evaluator", "trainer.cpus_per_worker", "generative.trainer"),
    inputs=("data/${generative.dataset}",),
    outs=("models/evaluator",),
    metrics=("metrics/evaluator-${generative.dataset}.json",),
    report_params=("generative.dataset", "generative.evaluator"),
    title="FID evaluator (the classifier behind val/fid_evaluator)",
    headline="test/accuracy", references=(("ceiling", 1.0),),
    rows=lambda params: {params.generative.dataset: params.generative.evaluator.model_dump()},
)

FAMILIES = (
    Family(
        name="generative", order=30, title="Generative models", experiment="generative",
        config=GenerativeConfig, sweep_config=SweepConfig,
        task_module="components.families.generative.task",
        headline="val/fid_evaluator",
        higher_is_better=frozenset({"is_evaluator", "is_inception"}),  # Inception Score
        lower_is_better=frozenset({"fid_evaluator", "fid_inception", "recon"}),  # Fréchet distances
        references=(("floor (real vs real)", "val/fid_evaluator_floor"),
                    ("untrained", "val/fid_evaluator_untrained")),
        stage_params=("fid", "backbone"),
        inputs=("models/evaluator",),
        shrink=shrink,
        curves=(Curve("val/fid_evaluator", "FID on evaluator features (lower is better)", log_y=True),),
        extra_stages=(EVALUATOR,),
    ),
)
