"""Stage `generative_latents`: GAN inversion and latent arithmetic on the trained generative models.

    python -m pipelines.generative_latents [--params params.yaml]

For each model ``pipeline.generative`` lists with a latent space (``LATENT_MODELS``,
components/families/generative/family.py) the test images get
codes: the VAEs' posterior means (a trained encoder), the GANs' by optimising z
(``generative.latents.steps`` Adam steps at ``lr``, components/families/generative/latents.py).
Each row scores the decoded codes (per-pixel MSE against the images, FID of the inverted set and,
beside it, of as many random samples, the evaluator's accuracy on them) and the arithmetic: every
image moved to every other class (class-mean difference; conditional models: the label swapped),
scored by the evaluator's accuracy at the target class. Writes metrics/generative_latents/<model>.json,
figures/generative_latents/ (inversions, arithmetic grids) and one MLflow run ``latents`` in ``generative``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components import analysis
from components.data.tensors import load_classification_split
from components.errors import exit_on_user_error, run_and_exit
from components.families.generative.base import EVALUATOR_DIR
from components.families.generative.evaluator import EvaluatorFeatures, load_evaluator
from components.families.generative.family import latent_models
from components.families.generative.figures import arithmetic_figure, reconstruction_figure
from components.families.generative.latents import (
    Decoder,
    arithmetic_success,
    class_means,
    invert,
    shift_to_every_class,
)
from components.families.generative.task import Sampler, load_exported
from components.metrics.generative import FeatureFID

STAGE = "generative_latents"
FIGURE_IMAGES = 10  # per figure: the first test image of each class


def fid(features: EvaluatorFeatures, real: torch.Tensor, fake: torch.Tensor) -> float:
    metric = FeatureFID(features)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def decoder(export: dict) -> Decoder:
    """Images in [0, 1] from (codes (N, latent_dim), labels (N,)): the served sampler of an export, the
    one-hot label appended for a conditional model."""
    sampler, classes = Sampler(load_exported(export).requires_grad_(False), export["kind"]), len(export["class_names"])

    def decode(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if export["conditional"]:
            codes = torch.cat([codes, F.one_hot(labels, classes).to(codes.dtype)], dim=1)
        return sampler(codes)

    return decode


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    params, root, generator = analysis.start(argv, __doc__.splitlines()[0],
                                             lambda p: p.generative.trainer.cpus_per_worker)
    section, config = params.generative, params.generative.latents
    images, labels = load_classification_split(root / params.data.root / section.dataset, "test").tensors
    evaluator = load_evaluator(root / EVALUATOR_DIR)
    features = EvaluatorFeatures(evaluator)
    models = latent_models(params)
    folders = tuple(f"models/generative/{model}" for model in models)
    exports = {model: analysis.load_export(root, folder, f"train_generative@{model}")
               for model, folder in zip(models, folders, strict=True)}
    identity = {"seed": params.seed, "dataset": section.dataset, "latents": config.model_dump()}
    num_classes = len(next(iter(exports.values()))["class_names"])
    shown = torch.stack([torch.nonzero(labels == k)[0, 0] for k in range(num_classes)])[:FIGURE_IMAGES]
    with analysis.stage_run(params, root, "generative", STAGE, "latents", identity, folders) as run:
        rows = {}
        for model, export in exports.items():
            decode, width = decoder(export), export["backbone"]["latent_dim"]
            if export["kind"] == "vae":  # a trained encoder: the posterior means
                net = load_exported(export)
                with torch.no_grad():
                    codes = net.encode(images, labels if export["conditional"] else None)[0]
                    decoded = decode(codes, labels)
                extra = {}
            else:
                inversion = invert(decode, images, labels, width, config.steps, config.lr, generator)
                codes, decoded = inversion.codes, inversion.images
                extra = {"test/inversion_start_mse": inversion.start_mse}
            with torch.no_grad():
                samples = decode(torch.randn(len(images), width, generator=generator),
                                 torch.arange(len(images)) % num_classes)
                inverted_accuracy = float((evaluator(decoded).argmax(1) == labels).float().mean())
            success, source = arithmetic_success(evaluator, decode, codes, labels, num_classes, export["conditional"])
            rows[model] = {"test/arithmetic_success": success, "test/arithmetic_source": source,
                           "test/arithmetic_chance": 1 / num_classes,
                           "test/inversion_mse": F.mse_loss(decoded, images).item(), **extra,
                           "test/fid_inverted": fid(features, images, decoded), "test/fid_samples": fid(
                               features, images, samples), "test/inverted_accuracy": inverted_accuracy}
            run.figures[f"inversion_{model}"] = reconstruction_figure(images[shown], decoded[shown], len(shown))
            means = torch.zeros(num_classes, width) if export["conditional"] else class_means(codes, labels,
                                                                                                num_classes)
            moved, _, targets = shift_to_every_class(codes[shown], labels[shown], means)
            with torch.no_grad():
                run.figures[f"arithmetic_{model}"] = arithmetic_figure(images[shown], decode(moved, targets),
                                                                       num_classes, export["conditional"])
        run.write(rows, "test/arithmetic_success")
    for model, row in rows.items():
        start = row.get("test/inversion_start_mse", float("nan"))  # GANs only: their codes' starting point
        print(f"[{STAGE}] {model:9s} arithmetic {row['test/arithmetic_success']:.3f} (still the source "
              f"{row['test/arithmetic_source']:.3f}, chance {1 / num_classes:.3f})  inversion MSE "
              f"{row['test/inversion_mse']:.4f} (start {start:.4f})  FID inverted "
              f"{row['test/fid_inverted']:.1f} / samples {row['test/fid_samples']:.1f}  evaluator accuracy on the "
              f"inverted {row['test/inverted_accuracy']:.3f}", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
