"""A request the Ray cluster can never satisfy fails at once with one line naming what was asked
and what the cluster has, instead of waiting for resources forever."""

import pytest
import ray

from components.config import load_params
from components.errors import UserError
from components.train.harness import check_resources
from tests.conftest import REPO

CLUSTER = {"CPU": 2.0, "memory": 1e9, "node:127.0.0.1": 1.0}


@pytest.fixture
def trainer(monkeypatch):
    monkeypatch.setattr(ray, "cluster_resources", lambda: dict(CLUSTER))
    return load_params(REPO / "params.yaml").segmentation.trainer


def test_the_default_request_fits(trainer):
    check_resources(trainer)


@pytest.mark.parametrize(("update", "message"), [
    ({"use_gpu": True, "num_workers": 1}, "need 1 GPU(s), but the Ray cluster has 0 GPU(s) and 2 CPU(s)"),
    ({"use_gpu": True, "num_workers": 2, "cpus_per_worker": 1, "gpus_per_worker": 0.5}, "need 1 GPU(s)"),
    ({"num_workers": 2, "cpus_per_worker": 2}, "num_workers x cpus_per_worker = 4 CPUs"),
    ({"num_workers": 1, "resources_per_worker": {"accelerator_type:A10G": 0.001}},
     "'accelerator_type:A10G' per worker x 1"),
    # the local path (num_workers 0): no Ray cluster involved, the stage's own process must see the GPU
    ({"use_gpu": True, "num_workers": 0}, "no CUDA GPU is visible"),
    ({"num_workers": 0, "resources_per_worker": {"accelerator_type:A10G": 0.001}},
     "resources_per_worker applies to Ray Train workers"),
])
def test_unsatisfiable_requests_are_one_line_errors(trainer, update, message):
    if update.get("use_gpu") and not update["num_workers"]:
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("this machine has a GPU")
    with pytest.raises(UserError) as error:
        check_resources(trainer.model_copy(update=update))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_fractional_gpus_fit_when_the_cluster_has_enough(trainer, monkeypatch):
    monkeypatch.setattr(ray, "cluster_resources", lambda: {**CLUSTER, "GPU": 1.0})
    check_resources(trainer.model_copy(update={"use_gpu": True, "num_workers": 2, "cpus_per_worker": 1,
                                                "gpus_per_worker": 0.5}))
