"""The language families' descriptors (see components/families/base.py).

``language`` pretrains language models on one side of a parallel corpus: character RNNs (Elman,
LSTM, GRU) by truncated BPTT and a GPT-style decoder, compared by val bits per character on the
same characters, and a BERT-style encoder by masked language modelling. ``text_classification``
trains recurrent classifiers and fine-tunes that encoder (against the same encoder from scratch)
on a labelled task; its BERT models read ``models/language/bert_mlm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.families.base import Curve, Family
from components.families.language.config import BertClassifierConfig, LanguageConfig, TextClassificationConfig
from components.tune.config import SweepConfig

if TYPE_CHECKING:
    from components.config import Params


def shrink_language(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 32-wide networks on short chunks."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=8, eval_batch_size=16, figure_every=1)
    params["val_segment"] = 128
    params["sampling"].update(length=40)
    for model in params["models"].values():
        model.update(epochs=1, batch_size=None)
        if "k1" in model:
            model.update(embed_dim=8, hidden_dim=32, k1=32, k2=48)
        else:
            model.update(d_model=32, num_heads=2, num_layers=1, ffn_dim=64, block_size=min(model["block_size"], 64))
    sweep.update(num_samples=2, trial_epochs=1)


def shrink_classification(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 32-wide recurrent networks (the BERT models take bert_mlm's size)."""
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=16, eval_batch_size=32, figure_every=1)
    for model in params["models"].values():
        model.update(epochs=1, batch_size=None)
        if "hidden_dim" in model:
            model.update(embed_dim=16, hidden_dim=32)
    sweep.update(num_samples=2, trial_epochs=1)


def check_pretrained(params: Params) -> None:
    """A listed BERT classifier (fine-tuned or its from-scratch control) reads bert_mlm's export."""
    section = params.text_classification.models
    berts = [m for m in params.pipeline.text_classification if isinstance(getattr(section, m), BertClassifierConfig)]
    if berts and "bert_mlm" not in params.pipeline.language:
        raise ValueError(f"pipeline.language: bert_mlm must be listed: pipeline.text_classification lists "
                         f"{', '.join(berts)}, which read{'s' if len(berts) == 1 else ''} models/language/bert_mlm")


FAMILIES = (
    Family(
        name="language", order=52, title="Language models: char-RNNs, GPT (bits per character), BERT (masked LM)",
        experiment="language", config=LanguageConfig, sweep_config=SweepConfig,
        task_module="components.families.language.lm_task",
        headline="val/bits_per_char",
        lower_is_better=frozenset({"bits_per_char", "perplexity", "mlm_perplexity"}),
        higher_is_better=frozenset({"mlm_accuracy"}),
        stage_params=("column", "tokenizer", "vocab_size", "val_segment", "sampling"),
        shrink=shrink_language,
        curves=(Curve("val/bits_per_char", "bits per character (val)"), Curve("train/loss", "training loss (nats)")),
        columns=("val/perplexity", "val/cell_correlation/line_position", "val/cell_correlation/comma_due",
                 "val/mlm_accuracy", "val/mlm_perplexity"),
    ),
    Family(
        name="text_classification", order=53, title="Text classification: recurrent models and BERT fine-tuning",
        experiment="language", config=TextClassificationConfig, sweep_config=SweepConfig,
        task_module="components.families.language.classification",
        headline="val/accuracy", higher_is_better=frozenset({"accuracy", "macro_f1"}),
        stage_params=("max_words",),
        inputs=("models/language",),  # bert_mlm's folder, for the BERT classifiers (check_pretrained)
        check=check_pretrained,
        shrink=shrink_classification,
        curves=(Curve("val/accuracy", "accuracy (val)"), Curve("train/loss", "training loss")),
        columns=("val/macro_f1", "test/accuracy", "test/macro_f1"),
    ),
)
