"""The building blocks of ``params.yaml``'s schema: the strict base section, numeric types, and the
sections every stage shares (``runtime``) or every trained family repeats (``<family>.trainer``).

Family sections live in their family package (``components/families/<family>/config.py``), data
sections in ``components/data/config.py``, sweep sections in ``components/tune/config.py``;
``components/config.py`` assembles them into :class:`~components.config.Params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    """Unknown keys are errors, and types are strict: params.yaml is YAML, which already gives every
    value its type, so ``epochs: "3"``, ``epochs: 2.0``, ``lr: "1e-3"`` (PyYAML reads a number
    without a dot as a string: write ``1.0e-3``) and ``use_gpu: "no"`` are errors naming the key
    instead of being converted. An integer is still a valid float (pydantic's strict mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


KEYED_ERROR = "keyed"  # the error type of keyed_error


def keyed_error(key: str, message: str, got: Any) -> PydanticCustomError:
    """An error a section's validator raises about one of its keys (``key``, dotted, relative to the
    section): the one-line message names that key (components.config.format_validation_error)."""
    return PydanticCustomError(KEYED_ERROR, "{key}: {message}", {"key": key, "message": message, "got": got})


def first_error(err: ValidationError) -> str:
    """The first error's message, as the rest of a one-line error."""
    msg = err.errors()[0]["msg"].removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def integer_field(section: type[BaseModel], name: str) -> bool:
    """Whether ``section.<name>`` holds an integer (``int``, ``PositiveInt``, ``int | None``, ...)."""
    annotation = section.model_fields[name].annotation
    return annotation is int or (get_origin(annotation) in (Union, UnionType) and int in get_args(annotation))


def sampled_values(section: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Values a sweep sampled (or a tuned file holds), ready for the strict schema: ``quniform`` and
    ``qloguniform`` sample floats, so a whole float (``12.0``) for an integer field becomes ``12``.
    Only sweep values pass here; params.yaml's own ``epochs: 2.0`` stays an error."""
    return {key: int(value) if (isinstance(value, float) and value.is_integer() and key in section.model_fields
                                and integer_field(section, key)) else value
            for key, value in values.items()}


# --- runtime ----------------------------------------------------------------------------------


class RuntimeConfig(Section):
    ray_address: str | None  # None: RAY_ADDRESS if set, else a local Ray started by the stage
    storage_path: str  # Ray Train checkpoints; relative paths are resolved against the repo root
    mlflow_tracking_uri: str | None  # None: MLFLOW_TRACKING_URI if set, else sqlite:///<repo>/mlflow.db
    log_models: bool  # each trained network as an MLflow model, registered (components/model_logging.py)



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
