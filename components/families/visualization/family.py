"""The visualization family's descriptor (see components/families/base.py).

It trains one network of its own, ``scene_cnn`` (which digits a scene holds, from image-level labels
only), and explains it and the adversarial family's undefended digit CNN in two stages:
``visualization_attribution`` (why a network decided: every attribution method scored by deletion /
insertion AUC on the digits and by the pointing game on the scenes) and ``visualization_units`` (what
a unit responds to: network dissection against the scenes' digit masks, max-activating patches,
nearest neighbours, t-SNE, class models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.families.base import Curve, Family, Stage
from components.families.visualization.config import VisualizationConfig
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params

# The attribution methods, in the course's order (components/families/visualization/attribution.py),
# and the two baselines every method is compared with.
METHODS = ("gradient", "gradient_x_input", "deconvnet", "guided_backprop", "grad_cam", "guided_grad_cam",
           "occlusion", "rise")
BASELINES = ("random", "intensity")
NETWORKS = ("trained", "random_init")  # network dissection: the scene classifier and its untrained twin
DIGITS_MODEL = "models/adversarial/cnn"  # the digit classifier explained (the adversarial family's)


def shrink(params: dict, sweep: dict) -> None:
    """Tests: one epoch of a narrow classifier, few images and masks."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=128, figure_every=1)
    params["models"]["scene_cnn"].update(epochs=1, channels=[8, 8, 8], convs_per_stage=1)
    params["attribution"].update(num_images=8, random_maps=2)
    for options in (params["attribution"]["digits"], params["attribution"]["scenes"]):
        options.update(rise_masks=32)
    params["units"].update(num_images=16, top_patches=3, neighbours=2, tsne_perplexity=3)
    params["units"]["class_model"].update(steps=5)
    sweep.update(num_samples=2, trial_epochs=1)


def method_rows(params: Params) -> dict[str, dict[str, Any]]:
    return {name: {"method": name} for name in (*METHODS, *BASELINES)}


def network_rows(params: Params) -> dict[str, dict[str, Any]]:
    return {name: {"weights": name} for name in NETWORKS}


_INPUTS = ("data/${adversarial.dataset}", DIGITS_MODEL, "data/${visualization.dataset}",
           "models/visualization/scene_cnn")

ATTRIBUTION = Stage(
    name="visualization_attribution", entry="pipelines.visualization_attribution",
    params=("seed", "runtime", "data.root", "trainer", "visualization.trainer", "adversarial.dataset",
            "visualization.dataset", "visualization.attribution"),  # trainer: its threads
    inputs=_INPUTS,
    outs=("figures/visualization_attribution",),
    metrics=tuple(f"metrics/visualization_attribution-{row}.json" for row in (*METHODS, *BASELINES)),
    report_params=("visualization.attribution.num_images",),
    title="Attribution: deletion / insertion AUC on the digit classifier, pointing game on the scene classifier",
    headline="test/deletion_auc", references=(("random saliency", "test/deletion_auc_random"),),
    rows=method_rows,
    columns=("test/insertion_auc", "test/pointing_accuracy", "test/pointing_chance"),
)

UNITS = Stage(
    name="visualization_units", entry="pipelines.visualization_units",
    params=("seed", "runtime", "data.root", "trainer", "visualization.trainer", "adversarial.dataset",
            "visualization.dataset", "visualization.units"),  # trainer: its threads
    inputs=_INPUTS,
    outs=("figures/visualization_units",),
    metrics=tuple(f"metrics/visualization_units-{row}.json" for row in NETWORKS),
    report_params=("visualization.units.min_iou", "visualization.units.dissection_quantile"),
    title="Network dissection of the scene classifier: units whose IoU with a digit's masks exceeds min_iou",
    headline="test/dissection_units",
    rows=network_rows,
    columns=("test/dissection_concepts", "test/best_iou", "test/knn_accuracy_features", "test/knn_accuracy_pixels",
             "test/tsne_trustworthiness", "test/class_model_probability"),
)

FAMILIES = (
    Family(
        name="visualization", order=75, title="Visualizing and understanding networks", experiment="visualization",
        config=VisualizationConfig, sweep_config=SweepConfig,
        task_module="components.families.visualization.task",
        headline="val/mean_ap",
        higher_is_better=frozenset({"mean_ap", "exact_match", "f1", "insertion_auc", "pointing_accuracy",
                                    "dissection_units", "dissection_concepts", "best_iou", "knn_accuracy_features",
                                    "knn_accuracy_pixels",
                                    "tsne_trustworthiness", "class_model_probability"}),
        lower_is_better=frozenset({"deletion_auc"}),
        references=(("exact match", "val/exact_match"),),
        stage_params=("attribution", "units"),
        shrink=shrink,
        curves=(Curve("val/mean_ap", "val mean average precision (digit presence)"),
                Curve("val/exact_match", "val exact match (all ten digits decided right)"),
                Curve("train/loss", "training loss (binary cross-entropy)")),
        extra_stages=(ATTRIBUTION, UNITS),
        columns=("val/f1", "val/loss"),
    ),
)
