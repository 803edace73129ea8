"""The segmentation family's descriptor (see components/families/base.py)."""

from components.families.base import Curve, Family
from components.families.segmentation.config import SegmentationConfig
from components.tune.config import SweepConfig


def shrink(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 8-channel networks."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    for model in params["models"].values():
        model.update(epochs=1, base_channels=8)
    sweep.update(num_samples=2, trial_epochs=1)


FAMILIES = (
    Family(
        name="segmentation", order=10, title="Semantic segmentation", experiment="segmentation",
        config=SegmentationConfig, sweep_config=SweepConfig,
        task_module="components.families.segmentation.task",
        headline="val/miou", higher_is_better=frozenset({"miou", "pixel_accuracy"}),
        references=(("ceiling", 1.0),),
        shrink=shrink,
        curves=(Curve("val/miou", "val mIoU"), Curve("train/loss", "training loss")),
    ),
)
