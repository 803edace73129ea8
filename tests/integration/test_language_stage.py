"""The language stages end to end on local Ray: a character LSTM by truncated BPTT on 2 DDP
workers scored like one process, BERT pretrained and fine-tuned through the real entry point."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from components.config import load_params
from components.metrics_files import read_stage_metrics

pytestmark = pytest.mark.slow


def test_two_worker_char_lstm_scores_like_one_process(prepared, ray_session):
    """2 ranks each carry their own streams; the val bits per character they reduce together
    equals one process scoring the exported model on the whole split."""
    from components.families.language.lm_task import build_task
    from pipelines import train

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["language"]["trainer"].update(num_workers=2, cpus_per_worker=1)
    params["language"]["models"]["char_lstm"].update(epochs=2, k1=16, k2=24)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["language", "char_lstm"])

    metrics = read_stage_metrics(prepared, "language-char_lstm")
    for key in ("val/bits_per_char", "val/perplexity", "test/bits_per_char", "val/cell_correlation/line_position"):
        assert key in metrics, key
    assert metrics["val/perplexity"] == pytest.approx(2 ** metrics["val/bits_per_char"], rel=1e-9)
    assert metrics["val/bits_per_char"] < math.log2(30)  # it learned something: below uniform over characters
    for name in ("samples", "interpretable_cells"):
        assert (prepared / "figures" / "language-char_lstm" / f"{name}.png").is_file(), name

    export = torch.load(prepared / "models/language/char_lstm/model.pt", weights_only=True)
    task = build_task("char_lstm", load_params(prepared / "params.yaml"))
    net = task.build_network()
    net.load_state_dict(export["state_dict"])
    task.device, task.modules = torch.device("cpu"), {"net": net}
    alone = task.evaluate(DataLoader(task.datasets()["val"], batch_size=7))
    assert metrics["val/bits_per_char"] == pytest.approx(alone["bits_per_char"], rel=1e-5)


def test_bert_pretrained_then_fine_tuned_against_scratch(prepared, ray_session):
    """bert_mlm through its stage; the classifiers then start from its encoder (bert) or from the
    same architecture and vocabulary at random (bert_scratch), and report test accuracy and F1."""
    from components.families.language.classification import build_task
    from pipelines import train

    params = load_params(prepared / "params.yaml")
    with pytest.raises(SystemExit):  # no pretrained model yet: one line naming the stage to run
        train.main(["text_classification", "bert"])
    train.main(["language", "bert_mlm"])
    mlm = read_stage_metrics(prepared, "language-bert_mlm")
    assert 0 <= mlm["val/mlm_accuracy"] <= 1 and "test/mlm_accuracy" in mlm

    export = torch.load(prepared / "models/language/bert_mlm/model.pt", weights_only=True)
    pretrained = build_task("bert", params).build_network().encoder.state_dict()
    scratch = build_task("bert_scratch", params).build_network().encoder.state_dict()
    for name, value in pretrained.items():
        assert torch.equal(value, export["state_dict"][f"encoder.{name}"]), name
    assert not torch.equal(scratch["token_embed.weight"], pretrained["token_embed.weight"])

    for model in ("bert", "lstm"):
        train.main(["text_classification", model])
        metrics = read_stage_metrics(prepared, f"text_classification-{model}")
        for key in ("val/accuracy", "val/macro_f1", "test/accuracy", "test/macro_f1"):
            assert 0 <= metrics[key] <= 1, key
        assert (prepared / "figures" / f"text_classification-{model}" / "predictions.png").is_file()
