"""The detection family's descriptor (see components/families/base.py)."""

from components.families.base import Curve, Family
from components.families.detection.config import DetectionConfig
from components.tune.config import SweepConfig


def shrink(params: dict, sweep: dict) -> None:
    """Tests: one epoch of narrow backbones (FCOS's and RetinaNet's GroupNorm heads need 32 channels)."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    models = params["models"]
    for model in models.values():
        model["epochs"] = 1
        if "channels" in model:
            model["channels"] = [8, 16, 16, 16][: len(model["channels"])]
        if "fpn_channels" in model:
            model["fpn_channels"] = 16
    for name in ("fcos", "retinanet"):
        models[name]["fpn_channels"] = 32
    models["yolo"]["base_channels"] = 8
    models["detr"].update(base_channels=8, d_model=16, dim_feedforward=32, batch_size=16)
    models["sliding_window"].update(window_sizes=[20], aspect_ratios=[1.0], stride=8, representation_size=16)
    models["rcnn"].update(representation_size=16, svm_images=16, initial_negatives=50, mining_rounds=1)
    models["fast_rcnn"].update(channels=[8, 16], representation_size=16)
    sweep.update(num_samples=2, trial_epochs=1)


FAMILIES = (
    Family(
        name="detection", order=20, title="Object detection", experiment="detection",
        config=DetectionConfig, sweep_config=SweepConfig,
        task_module="components.families.detection.task",
        headline="val/map",
        higher_is_better=frozenset({"map", "map_50", "map_75", "map_small", "mar_100", "voc_map",  # COCO / VOC AP
                                    "mask_map", "mask_map_50", "mask_map_75", "mask_map_small", "mask_mar_100"}),
        references=(("untrained", "val/map_untrained"), ("ceiling", 1.0)),
        shrink=shrink,
        curves=(Curve("val/map", "COCO AP@[.5:.95] (val)"),),
        # the course's comparison (sliding window, R-CNN, Fast R-CNN, Faster R-CNN): accuracy beside the
        # detector's time per validation image and, for R-CNN and Fast R-CNN, selective search's (prepare's)
        columns=("val/map50", "val/inference_ms_per_image", "val/proposal_ms_per_image"),
    ),
)
