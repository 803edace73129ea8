"""The adversarial family through its real entry points on the tiny params: the four classifiers, then
the transfer stage, whose matrix diagonal must equal each model's own FGSM accuracy from its train stage."""

from __future__ import annotations

import json

import pytest
import torch

from components.families.adversarial.family import MODELS, RANDOM_SIGN

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_four_models_then_transfer(prepared):
    from mlflow import MlflowClient

    from pipelines import adversarial_transfer, train

    for model in MODELS:
        train.main(["adversarial", model])
    metrics = {m: json.loads((prepared / "metrics" / f"adversarial-{m}.json").read_text()) for m in MODELS}
    for model, values in metrics.items():
        for key in ("val/accuracy", "val/robust_accuracy", "test/accuracy", "test/robust_accuracy_strong",
                    "test/robust_accuracy/fgsm/eps_0.2", "test/robust_accuracy/random_sign/eps_0.05",
                    "test/least_likely_success/one_step", "test/least_likely_success/iterative",
                    "test/universal_fooling_rate", "test/universal_random_fooling_rate"):
            assert 0.0 <= values[key] <= 1.0, (model, key)
        assert values["val/robust_accuracy"] == values["val/robust_accuracy/pgd/eps_0.2"]
        for name in ("fgsm_examples", "test_robustness", "test_universal"):
            assert (prepared / "figures" / f"adversarial-{model}" / f"{name}.png").is_file(), (model, name)
    export = torch.load(prepared / "models" / "adversarial" / "cnn_pgd" / "model.pt", weights_only=True)
    assert export["model"] == "cnn_pgd" and "state_dict" in export

    adversarial_transfer.main([])
    rows = {row: json.loads((prepared / "metrics" / f"adversarial_transfer-{row}.json").read_text())
            for row in (*MODELS, RANDOM_SIGN)}
    for source in MODELS:  # white-box on the source itself: the train stage's own FGSM test accuracy
        assert rows[source][f"test/accuracy_of/{source}"] == pytest.approx(
            metrics[source]["test/robust_accuracy/fgsm/eps_0.2"], abs=1e-6)
        others = [rows[source][f"test/accuracy_of/{t}"] for t in MODELS if t != source]
        assert rows[source]["test/transfer_accuracy"] == pytest.approx(sum(others) / len(others))
    assert (prepared / "figures" / "adversarial_transfer" / "transfer.png").is_file()

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("adversarial")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([*MODELS, "transfer"])
    cnn = next(r for r in runs if r.info.run_name == "cnn")
    curve = client.get_metric_history(cnn.info.run_id, "test/accuracy_vs_eps_x1000/pgd")
    assert [m.step for m in curve] == [50, 100, 200, 300]  # accuracy against epsilon, a curve in MLflow
    assert curve[2].value == pytest.approx(metrics["cnn"]["test/robust_accuracy/pgd/eps_0.2"])
