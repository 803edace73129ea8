"""Each family logs its trained network as a registered MLflow model: PyTorch flavour, tensor
signature with the dynamic dimensions, input example; loading it back gives the same outputs as the
network, at another batch size (and another image size for the FCNs)."""

from __future__ import annotations

import os

import pytest
import torch
import yaml

from components.model_logging import ARTIFACT_NAME, log_trained_model, registered_name

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

SERVED = [("segmentation", "unet"), ("adversarial", "cnn"), ("visualization", "scene_cnn"), ("selfsup", "simclr"),
          ("generative", "dcgan"), ("generative", "cvae"), ("generative", "autoencoder"), ("generative", "vqvae"),
          ("generative", "progan"), ("generative", "stylegan"), ("detection", "fcos"), ("detection", "rcnn"),
          ("translation", "attention_gru"),
          ("captioning", "show_tell")]
PICKLED = {"detection", "translation", "captioning"}  # data-dependent loops (NMS, greedy decoding)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, prepare_data):
    """An export of each SERVED model (initial weights, the task's own export()), written by its task on
    the tiny data of the real prepare and evaluator stages."""
    from components.config import load_params
    from components.families import get_family
    from components.runtime import with_absolute_paths
    from pipelines import evaluator
    from tests.conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("model-logging")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    old = os.getcwd(), dict(os.environ)
    os.chdir(root)
    os.environ.update(COURSELAB_ROOT=str(root), MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
    try:
        prepare_data(root)
        evaluator.main([])
        params = with_absolute_paths(load_params(root / "params.yaml"))
        paths = {}
        for family, model in SERVED:
            task = get_family(family).task().build_task(model, params)
            task.setup(torch.device("cpu"), wrap=lambda net, **_: net, steps_per_epoch=1)
            paths[family, model] = root / f"{family}-{model}.pt"
            torch.save(task.export(), paths[family, model])
        yield {"root": root, "paths": paths}
    finally:
        os.chdir(old[0])
        os.environ.clear()
        os.environ.update(old[1])


@pytest.mark.parametrize(("family", "model"), SERVED, ids=[f"{f}-{m}" for f, m in SERVED])
def test_a_trained_network_is_a_registered_mlflow_model_that_serves_the_same_outputs(exports, family, model):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{exports['root'] / 'mlflow.db'}")
    try:
        _check_logged_model(family, model, exports["paths"][family, model])
    finally:  # this process's MLflow state as it was (later tests in this worker reopen runs by id)
        mlflow.set_tracking_uri(previous)


def _check_logged_model(family: str, model: str, path) -> None:
    import mlflow

    from components.families import get_family

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(family)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(family)
    with mlflow.start_run(experiment_id=experiment_id) as run:  # no set_experiment: it is process-global
        uri = log_trained_model(family, model, path)
    served = get_family(family).task().serving_model(torch.load(path, weights_only=True))
    info = mlflow.models.get_model_info(uri)
    assert info.flavors["pytorch"] and info.signature.inputs.inputs[0].shape[0] == -1  # any batch size
    assert info.saved_input_example_info is not None
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true" if family in PICKLED else "false"
    try:
        loaded = mlflow.pytorch.load_model(uri)  # the others load with pickles refused: torch.export programs
    finally:
        os.environ.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    example = torch.cat([served.example, served.example[:1]])  # a batch size the example did not have
    if family == "segmentation":
        example = torch.rand(3, example.shape[1], 48, 40)  # fully convolutional: another image size
    with torch.no_grad():
        torch.testing.assert_close(loaded(example), served.module(example), rtol=1e-4, atol=1e-5)
    if family == "detection":
        assert served.module(example).shape == (3, 100, 6)
    [version] = client.search_model_versions(f"name = '{registered_name(family, model)}'")
    logged = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert version.run_id == run.info.run_id and ARTIFACT_NAME in {m.name for m in logged}


