"""A trained network as an MLflow model: the PyTorch flavour with a signature and an input example,
registered in the model registry as ``<family>.<model>`` (one version per training run).

A family's task module opts in with ``serving_model(export) -> ServedModel``: the network that maps
one float tensor to one tensor (images to logits or features, noise to images), an example batch
and which dimensions vary (the batch always; height and width for fully convolutional networks).
MLflow saves it as a ``torch.export`` program ("pt2": loading it runs no pickled code), the varying
dimensions exported as dynamic. A network whose ``forward`` loops on its own outputs (a
detector's NMS, greedy decoding) says ``traceable=False`` and is saved in MLflow's pickle format
(loading it needs ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` and this repository importable); so
is a network ``torch.export`` fails on, said in one line. ``runtime.log_models`` turns it off (the
tests' tiny runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_NAME = "served_model"  # the logged model's name in its run (beside the model/model.pt artifact)


@dataclass
class ServedModel:
    module: Any  # torch.nn.Module in eval mode: one float tensor in, one tensor out
    example: Any  # torch.Tensor: an input batch of >= 2 rows (a size-1 dimension exports as static)
    input_dynamic: tuple[int, ...] = (0,)  # input dimensions of any size
    output_dynamic: tuple[int, ...] = (0,)
    traceable: bool = True  # False: data-dependent control flow, saved as pickle (see the module docstring)


def registered_name(family: str, model: str) -> str:
    return f"{family}.{model}"


def _spec(tensor: Any, dynamic: tuple[int, ...]) -> Any:
    import numpy as np
    from mlflow.types import TensorSpec

    shape = tuple(-1 if i in dynamic else int(size) for i, size in enumerate(tensor.shape))
    return TensorSpec(np.dtype(str(tensor.dtype).removeprefix("torch.")), shape)


def log_trained_model(family: str, model: str, export_path: Path) -> str | None:
    """Log ``export_path`` (the stage's ``model.pt``) as an MLflow model into the active run and
    register it; returns its URI, or None when the family serves no single-tensor network."""
    import mlflow
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema

    from components.families import get_family

    hook = getattr(get_family(family).task(), "serving_model", None)
    if hook is None:
        return None
    served = hook(torch.load(export_path, weights_only=True))
    with torch.no_grad():
        output = served.module(served.example)
    signature = ModelSignature(inputs=Schema([_spec(served.example, served.input_dynamic)]),
                               outputs=Schema([_spec(output, served.output_dynamic)]))
    common = {"name": ARTIFACT_NAME, "signature": signature, "input_example": served.example.numpy(),
              "registered_model_name": registered_name(family, model), "await_registration_for": 0,
              "pip_requirements": [f"torch=={torch.__version__.split('+')[0]}"]}
    if not served.traceable:
        return mlflow.pytorch.log_model(served.module, serialization_format="pickle", **common).model_uri
    try:
        info = mlflow.pytorch.log_model(served.module, serialization_format="pt2", **common)
    except Exception as err:  # noqa: BLE001 - torch.export's many tracing errors: the pickle format still serves
        print(f"[{family}/{model}] torch.export could not trace the network ({type(err).__name__}); "
              "logged in MLflow's pickle format", flush=True)
        info = mlflow.pytorch.log_model(served.module, serialization_format="pickle", **common)
    return info.model_uri
