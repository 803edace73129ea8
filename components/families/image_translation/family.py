"""The image-translation family's descriptor (see components/families/base.py).

Label maps -> scenes on the embedded scenes (VOC's label maps -> photos in the GPU profile):
pix2pix's ablation (L1 only, cGAN only, L1 + cGAN) and CycleGAN trained without pairs, all scored by
the FCN-score (the segmentation family's network labels the generated images) and, on the scenes,
FID on the visualization family's scene-classifier features; the stages read both trained networks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.families.base import Curve, Family
from components.families.image_translation.config import ImageTranslationConfig
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params


def shrink(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 4-channel networks."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    params["generator"].update(channels=4)
    params["discriminator"].update(channels=4)
    for model in params["models"].values():
        model.update(epochs=1)
    sweep.update(num_samples=2, trial_epochs=1)


def image_side(params: Params) -> int:
    """The side the family's images are translated at: ``image_size``, else the prepared dataset's."""
    section = params.image_translation
    data = getattr(params.data, section.dataset)
    return section.image_size or getattr(data, "canvas_size", None) or data.image_size


def check(params: Params) -> None:
    """The scorer labels the family's dataset: it must be trained on it (its classes are checked
    again when a stage loads it); the U-Net halves the images ``depth`` times."""
    section = params.image_translation
    if params.segmentation.dataset != section.dataset:
        raise ValueError(f"image_translation.dataset: {section.dataset}, but its scorer models/segmentation/"
                         f"{section.scorer} trains on segmentation.dataset: {params.segmentation.dataset}; "
                         f"set both to the same dataset")
    side, depth = image_side(params), section.generator.depth
    if side % 2**depth:
        fits = [d for d in range(2, 9) if side % 2**d == 0]
        raise ValueError(f"image_translation.generator.depth: {depth} halvings of the {side}-px images need a side "
                         f"divisible by {2**depth}; allowed: {', '.join(map(str, fits))}")


FAMILIES = (
    Family(
        name="image_translation", order=35, title="Image-to-image translation: pix2pix and CycleGAN (FCN-score)",
        experiment="image_translation", config=ImageTranslationConfig, sweep_config=SweepConfig,
        task_module="components.families.image_translation.task",
        headline="val/fcn_miou",
        higher_is_better=frozenset({"fcn_miou", "fcn_pixel_accuracy", "fcn_class_accuracy"}),
        lower_is_better=frozenset({"fid_scenes", "l1"}),
        references=(("real scenes (ceiling)", "val/fcn_miou_real"), ("untrained generator", "val/fcn_miou_untrained")),
        stage_params=("image_size", "scorer", "generator", "discriminator"),
        inputs=("models/segmentation/${image_translation.scorer}", "models/visualization/scene_cnn"),
        shrink=shrink,
        curves=(Curve("val/fcn_miou", "FCN-score mIoU (val)"), Curve("val/fid_scenes", "FID on scene features (val)",
                                                                      log_y=True)),
        check=check,
        columns=("val/fcn_pixel_accuracy", "val/fcn_class_accuracy", "val/fid_scenes", "val/l1",
                 "test/fcn_pixel_accuracy", "test/fcn_class_accuracy", "test/fcn_miou", "test/fid_scenes"),
    ),
)
