"""The building blocks of ``params.yaml``'s schema: the strict base section, numeric types, and the
sections every stage shares (``runtime``) or every trained family repeats (``<family>.trainer``).

Family sections live in their family package (``components/families/<family>/config.py``), data
sections in ``components/data/config.py``, sweep sections in ``components/tune/config.py``;
``components/config.py`` assembles them into :class:`~components.config.Params`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- runtime ----------------------------------------------------------------------------------


class RuntimeConfig(Section):
    ray_address: str | None  # None: RAY_ADDRESS if set, else a local Ray started by the stage
    storage_path: str  # Ray Train checkpoints; relative paths are resolved against the repo root
    mlflow_tracking_uri: str | None  # None: MLFLOW_TRACKING_URI if set, else sqlite:///<repo>/mlflow.db



# --- the Ray Train harness ----------------------------------------------------------------------


class TrainerConfig(Section):
    """Scaling and loop knobs shared by every model of a family."""

    num_workers: NonNegativeInt  # 0: Ray Train's local mode, the loop in the stage's own process (no Ray
    # start-up; see components/train/harness.py); >= 1: that many Ray Train workers (DDP from 2; a cluster
    # through RAY_ADDRESS). placement_strategy, resources_per_worker, max_failures and controller_poll_s
    # apply to workers only
    use_gpu: bool
    cpus_per_worker: PositiveFloat
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    eval_every: PositiveInt  # run the task's evaluation every N epochs (and after the last), like
    # Lightning's check_val_every_n_epoch: val/* metrics exist only on those epochs
    figure_every: PositiveInt  # log the prediction figure every N epochs (and after the last)
    max_failures: NonNegativeInt  # Ray Train restarts from the last checkpoint up to this often
    channels_last: bool  # NHWC memory format for conv nets (faster on CPU and on tensor cores)
    precision: Literal["fp32", "bf16", "fp16"]  # training forward passes under autocast (see
    # components/train/precision.py); fp16 adds loss scaling; evaluation always runs in fp32
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]  # of the workers on
    # the cluster's nodes (Ray placement groups): PACK fills a node first, SPREAD puts them on different nodes
    gpus_per_worker: PositiveFloat  # with use_gpu: 1 = a GPU each; 0.5 = two workers share one
    resources_per_worker: dict[str, PositiveFloat]  # extra Ray resources per worker, e.g. a node label
    # {"accelerator_type:A10G": 0.001} or a custom resource; a name the cluster lacks is an error
    loader_workers: NonNegativeInt  # DataLoader worker processes per training worker (0: in-process)
    controller_poll_s: PositiveFloat  # how often Ray Train's controller polls the workers (and so takes
    # each epoch's report); short epochs want it short, long Python-bound epochs long (each poll costs the GIL)
