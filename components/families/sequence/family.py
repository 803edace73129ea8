"""The translation and captioning families' descriptors (see components/families/base.py)."""

from components.families.base import Curve, Family
from components.families.sequence.config import CaptioningConfig, TranslationConfig
from components.tune.config import SweepConfig

SEQUENCE_METRICS = frozenset({"bleu", "bleu1", "bleu2", "bleu3", "chrf", "exact_match"})


def _shrink_trainer(params: dict, sweep: dict) -> None:
    params["trainer"].update(num_workers=0, cpus_per_worker=1, batch_size=32, eval_batch_size=64, figure_every=1)
    params["decoding"]["beam_width"] = 2
    for model in params["models"].values():
        model["epochs"] = 1
    sweep.update(num_samples=2, trial_epochs=1)


def shrink_translation(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 16/32-wide networks, one length bucket."""
    _shrink_trainer(params, sweep)
    params["length_buckets"] = [10]
    for model in params["models"].values():
        if "hidden_dim" in model:
            model.update(embed_dim=16, hidden_dim=32, attn_dim=16 if model["attn_dim"] else None)
        else:
            model.update(d_model=32, num_heads=2, ffn_dim=64)


def shrink_captioning(params: dict, sweep: dict) -> None:
    """Tests: one epoch of 8-channel encoders and 32-wide decoders."""
    _shrink_trainer(params, sweep)
    for model in params["models"].values():
        model.update(channels=[8, 8, 8], embed_dim=16, hidden_dim=32, attn_dim=16 if model["attn_dim"] else None)


FAMILIES = (
    Family(
        name="translation", order=40, title="Translation (English -> German)", experiment="translation",
        config=TranslationConfig, sweep_config=SweepConfig,
        task_module="components.families.sequence.translation",
        headline="val/bleu", higher_is_better=SEQUENCE_METRICS, lower_is_better=frozenset({"perplexity"}),
        references=(("ceiling", 100.0),),
        stage_params=("decoding", "min_freq", "tokenizer", "vocab_size", "length_buckets"),
        shrink=shrink_translation,
        curves=(Curve("val/bleu", "BLEU (val, greedy)"),),
    ),
    Family(
        name="captioning", order=50, title="Image captioning", experiment="captioning",
        config=CaptioningConfig, sweep_config=SweepConfig,
        task_module="components.families.sequence.captioning",
        headline="val/bleu",  # BLEU-4
        higher_is_better=SEQUENCE_METRICS, lower_is_better=frozenset({"perplexity"}),
        references=(("ceiling", 100.0),),
        stage_params=("decoding", "image_size", "min_freq"),
        shrink=shrink_captioning,
        curves=(Curve("val/bleu", "BLEU-4 (val, greedy)"),),
    ),
)
