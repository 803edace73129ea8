"""Stage `visualization_units`: what does a unit respond to, and what do the features know?

    python -m pipelines.visualization_units [--params params.yaml]

Two rows, the trained networks and their untrained twins (the same architectures from seeded random
weights: what structure alone gives):
- network dissection (Bau et al. 2017) of the scene classifier on ``visualization.units.num_images``
  test scenes: each unit of each stage (conv1..convN) thresholded at its top ``dissection_quantile``
  level, upsampled, and scored by IoU against every digit's masks; a unit detects a digit when the IoU
  exceeds ``min_iou``. Counts per layer, the best unit per digit (dissection.md), max-activating patches;
- the digit classifier's penultimate features: k-nearest-neighbour accuracy on the test split (beside
  the same vote in pixel space), t-SNE and its trustworthiness, nearest neighbours;
- class models of the digit classifier (gradient ascent on the input) and their class probability.
Writes metrics/visualization_units-<trained|random_init>.json, figures/visualization_units/ and one
MLflow run ``units`` in ``visualization``.
"""

from __future__ import annotations

import torch

from components.data.tensors import load_classification_split
from components.errors import exit_on_user_error, run_and_exit
from components.families.adversarial.models import build_classifier
from components.families.adversarial.task import data_dir as digits_dir
from components.families.visualization import scores, units
from components.families.visualization.family import NETWORKS
from components.families.visualization.figures import (
    class_models_figure,
    dissection_figure,
    neighbours_figure,
    patches_figure,
    tsne_figure,
)
from components.families.visualization.models import build_scene_cnn
from components.families.visualization.stage import digit_classifier, scene_classifier, stage_run, start, subset
from components.families.visualization.task import data_dir as scenes_dir
from components.families.visualization.task import load_scenes

STAGE = "visualization_units"
SHOWN_UNITS = 6  # detector units of the last layer drawn with their max-activating patches
QUERIES = 6  # nearest-neighbour queries drawn


def untrained(build, seed: int) -> torch.nn.Module:
    """A network from ``build()`` with seeded random weights, frozen, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
    return net.eval().requires_grad_(False)


def dissection_table(results: dict, class_names: list[str], min_iou: float) -> str:
    """Markdown: per layer the detector count, per digit its best unit (layer, unit, IoU)."""
    lines = [f"# Network dissection of the scene classifier (IoU > {min_iou:g})", ""]
    for network, layers in results.items():
        lines += [f"## {network}", "", "| layer | units | detectors | digits detected |", "|---|---|---|---|"]
        for layer, result in layers.items():
            found = sorted({class_names[c] for _, c, _ in result.detectors(min_iou)})
            lines.append(f"| {layer} | {len(result.best_iou)} | {result.count(min_iou)} | {' '.join(found) or '-'} |")
        lines += ["", "| digit | best unit | IoU |", "|---|---|---|"]
        for c, name in enumerate(class_names):
            layer, unit, iou = max(((layer, int(r.iou[:, c].argmax()), float(r.iou[:, c].max()))
                                    for layer, r in layers.items()), key=lambda item: item[2])
            lines.append(f"| {name} | {layer} #{unit} | {iou:.3f} |")
        lines.append("")
    return "\n".join(lines)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    params, root, generator = start(argv, __doc__.splitlines()[0])
    config = params.visualization.units
    digit_net, digit_export = digit_classifier(root)
    scene_net, scene_export = scene_classifier(root)
    scene_nets = {"trained": scene_net, "random_init": untrained(
        lambda: build_scene_cnn(scene_export["arch"], scene_export["in_channels"], len(scene_export["class_names"])),
        params.seed)}
    digit_nets = {"trained": digit_net, "random_init": untrained(
        lambda: build_classifier(digit_export["arch"], digit_export["in_channels"], len(digit_export["class_names"]),
                                 digit_export["image_size"]), params.seed)}

    images, _, semantic = load_scenes(scenes_dir(params), "test", with_masks=True).tensors
    chosen = subset(len(images), config.num_images, generator)
    images, semantic = images[chosen], semantic[chosen]
    class_names = scene_export["class_names"]
    concepts = semantic[:, None] == torch.arange(1, len(class_names) + 1)[None, :, None, None]
    train_digits, train_labels = load_classification_split(digits_dir(params), "train").tensors
    test_digits, test_labels = load_classification_split(digits_dir(params), "test").tensors
    mean_digit = train_digits.mean(0)  # where class models start (Simonyan et al.'s zero image)
    pixels_knn = units.knn_accuracy(train_digits, train_labels, test_digits, test_labels, config.neighbours)

    identity = {"seed": params.seed, "units": config.model_dump()}
    with stage_run(params, root, STAGE, "units", identity) as run:
        rows, dissections = {}, {}
        for network in NETWORKS:
            activations = units.batched(scene_nets[network].features, images)
            dissections[network] = {layer: scores.dissect(value, concepts, config.dissection_quantile)
                                    for layer, value in activations.items()}
            counts = {layer: result.count(config.min_iou) for layer, result in dissections[network].items()}
            concepts_found = {c for result in dissections[network].values() for _, c, _ in
                              result.detectors(config.min_iou)}
            digit_net = digit_nets[network]
            train_features = units.batched(digit_net.embed, train_digits)
            test_features = units.batched(digit_net.embed, test_digits)
            points, trust = units.tsne(test_features, config.tsne_perplexity, params.seed, config.neighbours)
            models = torch.cat([units.class_model(digit_net, c, mean_digit, config.class_model)
                                for c in range(len(digit_export["class_names"]))])
            with torch.no_grad():
                probability = torch.softmax(digit_net(models), 1).diagonal()
            rows[network] = {
                "test/dissection_units": float(sum(counts.values())),
                **{f"test/dissection_units/{layer}": float(n) for layer, n in counts.items()},
                "test/dissection_concepts": float(len(concepts_found)),
                "test/best_iou": max(float(result.best_iou.max()) for result in dissections[network].values()),
                "test/knn_accuracy_features": units.knn_accuracy(train_features, train_labels, test_features,
                                                                 test_labels, config.neighbours),
                "test/knn_accuracy_pixels": pixels_knn,
                "test/tsne_trustworthiness": trust,
                "test/class_model_probability": float(probability.mean()),
            }
            run.figures[f"tsne_{network}"] = tsne_figure(
                points, test_labels.numpy(), digit_export["class_names"],
                f"t-SNE of the digit classifier's features ({network}; trustworthiness {trust:.3f})")
            run.figures[f"class_models_{network}"] = class_models_figure(models, probability.tolist(),
                                                                         digit_export["class_names"])
            if network == "trained":
                last = list(activations)[-1]
                shown = dissections[network][last].detectors(config.min_iou)[:SHOWN_UNITS]
                if shown:
                    run.figures["max_activating_patches"] = patches_figure(
                        {unit: units.max_activating_patches(images, activations[last], unit, config.top_patches)
                         for unit, _, _ in shown},
                        {unit: f"{last} #{unit}: digit {class_names[c]} (IoU {iou:.2f})" for unit, c, iou in shown})
                queries = test_digits[:QUERIES]
                run.figures["nearest_neighbours"] = neighbours_figure(
                    queries, train_digits[units.nearest(train_features, test_features[:QUERIES], config.neighbours)],
                    train_digits[units.nearest(train_digits, queries, config.neighbours)])
        run.figures["dissection"] = dissection_figure(
            {network: {layer: r.count(config.min_iou) for layer, r in layers.items()}
             for network, layers in dissections.items()},
            f"scene classifier units with IoU > {config.min_iou:g} against a digit's masks")
        run.texts["dissection.md"] = dissection_table(dissections, class_names, config.min_iou)
        run.write(rows, "test/dissection_units")
    for network, row in rows.items():
        per_layer = " ".join(f"{key.rsplit('/', 1)[1]} {int(v)}" for key, v in row.items()
                             if key.startswith("test/dissection_units/"))
        print(f"[{STAGE}] {network:11s} dissection {int(row['test/dissection_units'])} units ({per_layer}), "
              f"{int(row['test/dissection_concepts'])} digits, best IoU {row['test/best_iou']:.3f}; "
              f"kNN features {row['test/knn_accuracy_features']:.3f} (pixels {row['test/knn_accuracy_pixels']:.3f}); "
              f"t-SNE trust {row['test/tsne_trustworthiness']:.3f}; "
              f"class models p {row['test/class_model_probability']:.3f}",
              flush=True)


if __name__ == "__main__":
    run_and_exit(main)
