"""The self-supervised family's descriptor (see components/families/base.py).

``train_selfsup@<method>`` pretrains one encoder per method (and the ``supervised`` reference) on
augmented views of the digits; stage ``selfsup_probe`` judges every encoder, an untrained one and
the raw pixels by linear probes on frozen features; stage ``selfsup_transfer`` fine-tunes each encoder
on few labelled scenes (segmentation) against training from scratch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.families.base import Curve, Family, Stage
from components.families.selfsup.config import SelfSupConfig, SelfSupModels
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params

METHODS = tuple(SelfSupModels.model_fields)
REFERENCES = ("random_init", "pixels")  # the probe's rows besides the trained encoders


def shrink(params: dict, sweep: dict) -> None:
    """Tests: one epoch of a narrow encoder; a probe of few draws; two fine-tuning steps."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=64, eval_batch_size=128, figure_every=1)
    params["encoder"].update(channels=[8, 8])
    for model in params["models"].values():
        model.update(epochs=1)
    params["probe"].update(c_grid=[1.0], draws=2, max_iter=100, random_inits=2)
    params["transfer"].update(label_fraction=0.01, steps=2, draws=1)
    sweep.update(num_samples=2, trial_epochs=1)


def listed_methods(params: Params) -> tuple[str, ...]:
    """The encoders ``dvc repro`` trains (``pipeline.selfsup``), which the probe and transfer stages read."""
    return tuple(params.pipeline.selfsup)


def probe_rows(params: Params) -> dict[str, dict[str, Any]]:
    return {name: {"encoder": name} for name in (*listed_methods(params), *REFERENCES)}


PROBE = Stage(
    name="selfsup_probe", entry="pipelines.selfsup_probe",
    params=("seed", "runtime", "data.root", "trainer", "selfsup.trainer", "selfsup.dataset", "selfsup.encoder",
            "selfsup.probe", "pipeline.selfsup"),  # trainer: its threads
    inputs=("data/${selfsup.dataset}", "models/selfsup"),  # the listed encoders' folders
    outs=("figures/selfsup_probe",),
    metrics=(), row_folder=True,
    report_params=("selfsup.probe.labels_per_class", "selfsup.probe.draws", "selfsup.probe.random_inits"),
    title="Linear probes on frozen features: test accuracy with 10 labels per class and with every label",
    headline="test/probe_accuracy_few", references=(("random encoder", "test/probe_accuracy_few_random"),),
    rows=probe_rows,
    columns=("test/probe_accuracy_few_std", "test/probe_accuracy", "test/probe_accuracy_conv_few",
             "test/probe_accuracy_conv", "test/probe_accuracy_mid_few", "test/probe_accuracy_mid"),
)

def transfer_rows(params: Params) -> dict[str, dict[str, Any]]:
    return {name: {"init": name} for name in (*listed_methods(params), "scratch")}


TRANSFER = Stage(
    name="selfsup_transfer", entry="pipelines.selfsup_transfer",
    # trainer: its threads; selfsup.dataset: the untrained encoder is built for its images
    params=("seed", "runtime", "data.root", "trainer", "selfsup.dataset", "selfsup.encoder", "selfsup.transfer",
            "pipeline.selfsup"),
    inputs=("data/${selfsup.transfer.dataset}", "data/${selfsup.dataset}", "models/selfsup",
            "metrics/details/selfsup_probe"),  # the probe's columns
    outs=("figures/selfsup_transfer",),
    metrics=(), row_folder=True,
    report_params=("selfsup.transfer.label_fraction", "selfsup.transfer.draws"),
    title="The course's table: transfer to few-label scene segmentation (test mIoU) beside the linear probes",
    headline="test/transfer_miou", references=(("from scratch", "test/transfer_miou_scratch"),),
    rows=transfer_rows,
    columns=("test/transfer_miou_std", "test/probe_accuracy_few", "test/probe_accuracy",
             "test/transfer_pixel_accuracy", "test/labelled_scenes"),
)

FAMILIES = (
    Family(
        name="selfsup", order=78, title="Self-supervised learning", experiment="selfsup",
        config=SelfSupConfig, sweep_config=SweepConfig,
        task_module="components.families.selfsup.task",
        headline="val/knn_accuracy",
        higher_is_better=frozenset({"knn_accuracy", "pretext_accuracy", "cluster_nmi", "probe_accuracy",
                                    "probe_accuracy_few",
                                    "probe_accuracy_conv", "probe_accuracy_conv_few", "probe_accuracy_mid",
                                    "probe_accuracy_mid_few", "transfer_miou", "transfer_pixel_accuracy"}),
        references=(("pretext accuracy", "val/pretext_accuracy"),),
        stage_params=("encoder", "augment"),
        shrink=shrink,
        curves=(Curve("val/knn_accuracy", "val 5-NN accuracy of the features (labels only to score)"),
                Curve("val/pretext_accuracy", "val pretext accuracy"), Curve("train/loss", "pretext loss")),
        extra_stages=(PROBE, TRANSFER),
    ),
)
