"""Stage `visualization_attribution`: why did the network decide, and which explanation is right?

    python -m pipelines.visualization_attribution [--params params.yaml]

Every attribution method of components/families/visualization/attribution.py explains two trained
networks on seeded test subsets (``visualization.attribution.num_images`` each), for the class each
network predicts:
- the digit classifier (models/adversarial/cnn): deletion and insertion AUC (Petsiuk et al. 2018:
  the class probability as the most salient pixels are removed first, or inserted into a blurred
  copy first), beside a random-saliency and a pixel-intensity baseline;
- the scene classifier (models/visualization/scene_cnn): the pointing game (Zhang et al. 2016: does
  the map's maximum fall inside the target digit's mask, which the classifier never saw), beside the
  chance rate given by the mask's area.
Writes (each atomically) metrics/visualization_attribution-<method>.json per method and baseline,
figures/visualization_attribution/, and one MLflow run ``attribution`` in ``visualization``.
"""

from __future__ import annotations

import torch

from components.data.tensors import load_classification_split
from components.errors import exit_on_user_error, run_and_exit
from components.families.adversarial.task import data_dir as digits_dir
from components.families.visualization import scores
from components.families.visualization.attribution import attribute
from components.families.visualization.config import MethodOptions
from components.families.visualization.family import BASELINES, METHODS
from components.families.visualization.figures import attribution_grid, causal_curves_figure
from components.families.visualization.stage import (
    digit_classifier,
    last_conv_block,
    scene_classifier,
    stage_run,
    start,
    subset,
)
from components.families.visualization.task import data_dir as scenes_dir
from components.families.visualization.task import load_scenes

STAGE = "visualization_attribution"
BATCH = 500  # images per forward pass of the causal curves and RISE


def method_options(options: MethodOptions, layer: torch.nn.Module, generator: torch.Generator) -> dict:
    return {"layer": layer, "patch": options.occlusion_patch, "stride": options.occlusion_stride,
            "num_masks": options.rise_masks, "cell_size": options.rise_cell_size, "p": options.rise_p,
            "generator": generator, "batch_size": BATCH}


@torch.no_grad()
def predicted(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return net(images).argmax(1)


def saliency_maps(net, images, targets, options: dict) -> dict[str, torch.Tensor]:
    return {name: attribute(name, net, images, targets, **options) for name in METHODS}


def pointing_targets(probabilities: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per scene, the digit it holds that the classifier scores highest (the decision explained)."""
    return torch.where(present > 0.5, probabilities, torch.full_like(probabilities, -1.0)).argmax(1)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    params, root, generator = start(argv, __doc__.splitlines()[0])
    config = params.visualization.attribution
    digit_net, digit_export = digit_classifier(root)
    scene_net, _ = scene_classifier(root)

    images = load_classification_split(digits_dir(params), "test").tensors[0]
    images = images[subset(len(images), config.num_images, generator)]
    targets = predicted(digit_net, images)

    scenes = load_scenes(scenes_dir(params), "test", with_masks=True).tensors
    chosen = subset(len(scenes[0]), config.num_images, generator)
    scene_images, present, semantic = (t[chosen] for t in scenes)
    with torch.no_grad():
        scene_targets = pointing_targets(torch.sigmoid(scene_net(scene_images)), present)
    target_masks = semantic == (scene_targets + 1)[:, None, None]  # semantic masks hold digit + 1

    identity = {"seed": params.seed, "attribution": config.model_dump()}
    with stage_run(params, root, STAGE, "attribution", identity) as run:
        digit_maps = saliency_maps(digit_net, images, targets,
                                   method_options(config.digits, last_conv_block(digit_net), generator))
        digit_random = [scores.random_saliency(images[:, 0].shape, generator) for _ in range(config.random_maps)]
        digit_maps["intensity"] = scores.intensity_saliency(images)
        scene_maps = saliency_maps(scene_net, scene_images, scene_targets,
                                   method_options(config.scenes, scene_net.last_conv, generator))
        scene_maps["random"] = scores.random_saliency(scene_images[:, 0].shape, generator)
        scene_maps["intensity"] = scores.intensity_saliency(scene_images)

        rows, curves = {}, {"deletion": {}, "insertion": {}}
        chance = scores.pointing_chance(target_masks, config.pointing_tolerance)
        black, blurred = torch.zeros_like(images), scores.blur(images, config.insertion_sigma)
        for name in (*METHODS, *BASELINES):
            maps = digit_random if name == "random" else [digit_maps[name]]  # random: the mean over its maps
            deletion = torch.stack([scores.causal_curve(digit_net, images, targets, m, images, black,
                                                        config.causal_steps, BATCH) for m in maps]).mean(0)
            insertion = torch.stack([scores.causal_curve(digit_net, images, targets, m, blurred, images,
                                                         config.causal_steps, BATCH) for m in maps]).mean(0)
            curves["deletion"][name], curves["insertion"][name] = deletion.mean(0).numpy(), insertion.mean(0).numpy()
            hits = scores.pointing_hits(scene_maps[name], target_masks, config.pointing_tolerance)
            rows[name] = {"test/deletion_auc": float(scores.auc(deletion).mean()),
                          "test/insertion_auc": float(scores.auc(insertion).mean()),
                          "test/pointing_accuracy": float(hits.float().mean()),
                          "test/pointing_chance": float(chance.mean())}
        for row in rows.values():
            row["test/deletion_auc_random"] = rows["random"]["test/deletion_auc"]
            row["test/insertion_auc_random"] = rows["random"]["test/insertion_auc"]

        shown = slice(0, 8)
        names = digit_export["class_names"]
        run.figures["digits_maps"] = attribution_grid(
            images[shown], {n: digit_maps[n][shown] for n in (*METHODS, "intensity")},
            [f"{names[int(t)]}" for t in targets[shown]])
        run.figures["scenes_pointing"] = attribution_grid(
            scene_images[shown], {n: scene_maps[n][shown] for n in METHODS},
            [f"target {int(t)}" for t in scene_targets[shown]], masks=target_masks[shown])
        for kind, kind_curves in curves.items():
            run.figures[f"{kind}_curves"] = causal_curves_figure(kind_curves, kind)
        run.write(rows, "test/deletion_auc")
    width = max(len(name) for name in rows)
    for name, row in rows.items():
        print(f"[{STAGE}] {name:{width}s}  deletion {row['test/deletion_auc']:.3f}  "
              f"insertion {row['test/insertion_auc']:.3f}  pointing {row['test/pointing_accuracy']:.3f} "
              f"(chance {row['test/pointing_chance']:.3f})", flush=True)


if __name__ == "__main__":
    run_and_exit(main)
