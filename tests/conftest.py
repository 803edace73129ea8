"""Shared fixtures: the real params.yaml, shrunk, and isolated tool state for each test."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest
import yaml

from components.families import FAMILIES

REPO = Path(__file__).resolve().parents[1]


def tiny_params_dict() -> dict:
    """The repository's params.yaml shrunk to seconds: same keys, small data, one or two epochs."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = copy.deepcopy(raw)
    params["data"]["scenes"].update(num_train=96, num_val=32, num_test=32)
    params["data"]["grammar_en_de"].update(num_train=300, num_val=40, num_test=40, max_words=20, num_longer=10,
                                           longer_max_words=26)
    params["data"]["word_order"].update(num_train=100, num_val=20, num_test=20)
    for family in FAMILIES.values():  # each family's own rule, its sweep too (a test may enable a disabled one)
        family.shrink(params[family.name], params["tune"][family.name])
    # The e2e repro's sweep: two concurrent one-worker trials of 2 tiny epochs. Tiny data teaches
    # U-Net too little for val/miou to separate trials (ties go to the default), while the training
    # loss falls strictly faster with a larger learning rate: every lr above the default's wins, so
    # a new search range always yields new tuned values (tests/e2e checks which stages rerun).
    params["tune"]["segmentation"].update(
        trial_epochs=2, metric="train/loss", min_improvement=0.0,
        search_space={"lr": {"distribution": "loguniform", "low": 0.003, "high": 0.01}},
    )
    params["tune"]["rl"].update(min_improvement=0.0)  # two 1000-step trials: any gain counts
    params["runtime"]["log_models"] = False  # ~3 s a stage; tests/unit/test_model_logging.py logs each kind
    return params


@pytest.fixture(scope="session")
def prepare_data(tmp_path_factory):
    """``prepare_data(root)``: the real prepare stage for ``root`` (the repository root the process
    runs in: cwd and ``COURSELAB_ROOT``), memoised per params.yaml text within one pytest worker.
    Prepare is a function of its params (seeded generation; the tiny scenes' selective search alone
    is ~3 s), so a later test with the same params.yaml gets a copy of the data the first one's
    prepare wrote. A root that already holds a data folder always runs prepare itself (what prepare
    does to earlier data is under test)."""
    from components.runtime import repo_root
    from pipelines import prepare

    cache, by_params = tmp_path_factory.mktemp("prepared"), {}

    def run(root: Path) -> None:
        assert repo_root() == root.resolve(), f"prepare would write under {repo_root()}, not {root}"
        text = (root / "params.yaml").read_text()
        data = root / yaml.safe_load(text)["data"]["root"]
        if data.exists():
            prepare.main([])
        elif text in by_params:
            shutil.copytree(by_params[text], data)
        else:
            prepare.main([])
            by_params[text] = shutil.copytree(data, cache / str(len(by_params)))

    return run


@pytest.fixture(autouse=True)
def _isolated_tool_state(tmp_path_factory, monkeypatch):
    """Keep MLflow, DVC and matplotlib state out of the developer's repo during tests."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MPLCONFIGDIR", str(state / "mpl"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one torch thread is faster, and leaves the other core to the rest of the machine
    (a module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_params() -> dict:
    return tiny_params_dict()


@pytest.fixture
def workdir(tmp_path, tiny_params, monkeypatch) -> Path:
    """A temporary repository root with the tiny params.yaml; stages run with it as cwd."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSELAB_ROOT", str(tmp_path))
    return tmp_path


def run_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COURSELAB_ROOT"] = str(root)
    return env
