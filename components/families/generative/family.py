"""The generative family's descriptor (see components/families/base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.families.base import Curve, Family, Stage
from components.families.generative.config import GenerativeConfig
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params

MNIST_SIDE = 28  # MNIST's idx images (and its stand-in's) are 28x28, whatever the params say


def image_side(params: Params) -> tuple[int, str]:
    """(the side of ``generative.dataset``'s images in px, the key that sets it)."""
    name = params.generative.dataset
    if name == "mnist":
        return MNIST_SIDE, "generative.dataset"
    return getattr(params.data, name).image_size, f"data.{name}.image_size"


def dcgan_stages(side: int) -> int | None:
    """DCGAN's arrangement for a side: the most halvings that leave a whole start of at least 4 px
    (8 -> 1 from 4x4, 28 -> 2 from 7x7, 32 -> 3 and 64 -> 4 from 4x4); None when no halving does."""
    fits = [s for s in range(1, side.bit_length()) if side % 2**s == 0 and side // 2**s >= 4]
    return max(fits, default=None)


def resolutions(image_size: int, stages: int) -> list[int]:
    """The sides (px) the networks pass through: G from ``image_size / 2**stages`` up, D back down."""
    return [image_size // 2**k for k in range(stages, -1, -1)]


def check_sizes(params: Params) -> None:
    """``generative.backbone.stages`` (G doubles a start that many times, D halves the image) and the
    evaluator's stages (one 2x2 max-pool per ``generative.evaluator.channels`` entry) must divide the
    dataset's image side into whole pixels, and SAGAN's attention block must sit at a side the networks
    pass through; and ``pipeline.generative`` lists a model with a latent space. Raises
    ``ValueError("<key>: ...")``."""
    side, key = image_side(params)
    section = params.generative
    stages, name = section.backbone.stages, section.dataset
    if side % 2**stages:
        fit = dcgan_stages(side)
        hint = f"set it to {fit} (G starts at {side // 2**fit}x{side // 2**fit})" if fit else "lower it"
        raise ValueError(f"generative.backbone.stages: {stages} halvings of the {side}-px {name} images need a side "
                         f"divisible by {2**stages}; {hint}, or change {key}")
    attention = section.models.sagan.attention_resolution
    sides = resolutions(side, stages)
    if attention is not None and attention not in sides:
        raise ValueError(f"generative.models.sagan.attention_resolution: {attention} px is no side the networks "
                         f"pass through ({stages} backbone.stages on the {side}-px {name} images); allowed: "
                         f"{', '.join(map(str, sides))} or null")
    pools = len(section.evaluator.channels)
    if side % 2**pools:
        raise ValueError(f"generative.evaluator.channels: {pools} widths max-pool the {side}-px {name} images "
                         f"{pools} times, which needs a side divisible by {2**pools}; list fewer widths, or change "
                         f"{key}")
    if not latent_models(params):
        raise ValueError(f"pipeline.generative: stage generative_latents needs one of {', '.join(LATENT_MODELS)} "
                         f"(got {', '.join(params.pipeline.generative)})")


def shrink(params: dict, sweep: dict) -> None:
    """Tests: a 2-epoch 8-channel evaluator, 64 samples per FID, one epoch of 8-channel networks, two
    discriminator steps of DCGAN's saturation measurement, a one-layer VQ-VAE prior."""
    params["evaluator"].update(epochs=2, channels=[8], feature_dim=16, min_test_accuracy=0.0)
    params["fid"].update(num_generated=64)
    params["backbone"].update(latent_dim=16, g_channels=8, d_channels=8)  # 16: the VQ-VAE's 4x4 codes
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=64, figure_every=1)
    for model in params["models"].values():
        model.update(epochs=1)
    params["models"]["dcgan"].update(saturation_steps=2)
    params["models"]["vqvae"]["prior"].update(width=16, layers=1, heads=2)
    params["models"]["progan"].update(epochs=2, level_epochs=1, fade_epochs=0)
    params["latents"].update(steps=5)
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

# The models whose latent spaces stage generative_latents probes: the VAEs through their encoders,
# the GANs by inversion; the conditional ones (cvae, cgan) move between classes by their label.
LATENT_MODELS = ("vae", "cvae", "dcgan", "cgan", "progan", "stylegan")  # those with a latent space to move in


def latent_models(params: Params) -> tuple[str, ...]:
    """The models of ``pipeline.generative`` whose latent space generative_latents explores."""
    return tuple(m for m in params.pipeline.generative if m in LATENT_MODELS)


LATENTS = Stage(
    name="generative_latents", entry="pipelines.generative_latents",
    params=("seed", "runtime", "data.root", "generative.dataset", "trainer.cpus_per_worker", "generative.trainer",
            "generative.latents", "pipeline.generative"),  # trainer: its threads
    inputs=("data/${generative.dataset}", "models/evaluator", "models/generative"),  # the listed models' folders
    outs=("figures/generative_latents",),
    metrics=(), row_folder=True,
    report_params=("generative.latents.steps", "generative.latents.lr"),
    title="Latent spaces: test images encoded (VAEs) or inverted (GANs), then moved to every other class",
    headline="test/arithmetic_success", references=(("chance", "test/arithmetic_chance"),),
    rows=lambda params: {model: {"codes": "encoder" if model in ("vae", "cvae") else "inversion"}
                         for model in latent_models(params)},
    columns=("test/arithmetic_source", "test/inversion_mse", "test/inverted_accuracy", "test/fid_inverted",
             "test/fid_samples"),
)

FAMILIES = (
    Family(
        name="generative", order=30, title="Generative models", experiment="generative",
        config=GenerativeConfig, sweep_config=SweepConfig,
        task_module="components.families.generative.task",
        headline="val/fid_evaluator",
        higher_is_better=frozenset({"is_evaluator", "is_inception",  # Inception Score
                                    "cond_accuracy"}),  # conditional models: samples classified as asked
        lower_is_better=frozenset({"fid_evaluator", "fid_inception", "recon", "recon_mse", "prior_nll"}),
        references=(("floor (real vs real)", "val/fid_evaluator_floor"),
                    ("untrained", "val/fid_evaluator_untrained")),
        stage_params=("fid", "backbone"),
        inputs=("models/evaluator",),
        shrink=shrink,
        curves=(Curve("val/fid_evaluator", "FID on evaluator features (lower is better)", log_y=True),),
        extra_stages=(EVALUATOR, LATENTS),
        check=check_sizes,
    ),
)
