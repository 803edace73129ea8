"""The translation and captioning stages end to end on local Ray: BLEU gathered across 2 DDP ranks,
the test report (beam search, length buckets, sacrebleu signature), figures and MLflow."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from components.families.sequence.batches import PairCollate, ParallelDataset, text
from components.families.sequence.decoding import greedy_decode
from components.families.sequence.translation import load_exported, max_lengths
from components.metrics.sequence import corpus_bleu, exact_match
from components.metrics_files import read_stage_metrics

pytestmark = pytest.mark.slow


def test_two_worker_attention_gru_stage_matches_single_process_bleu(prepared, ray_session):
    """The attention GRU with 2 DDP workers through the real entry point: the val BLEU the ranks
    computed together (each on half of the sentences) equals one process scoring the exported
    model on the whole split; the metrics file holds the test report by length bucket with
    sacrebleu's signature; MLflow has the per-epoch BLEU and the signature tag."""
    from mlflow import MlflowClient

    from pipelines import train

    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["translation"]["trainer"].update(num_workers=2, cpus_per_worker=1, batch_size=8)
    params["translation"]["models"]["attention_gru"].update(epochs=3, lr=0.005)
    (prepared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train.main(["translation", "attention_gru"])

    metrics = read_stage_metrics(prepared, "translation-attention_gru")
    for key in ("val/bleu", "val/chrf", "val/exact_match", "val/perplexity", "test/bleu", "test/chrf",
                "test/bleu_longer", "test/bleu/len_01-10", "test/bleu/len_over_10", "test/exact_match/len_over_10"):
        assert key in metrics, key
    assert "tok:13a" in metrics["test/bleu_signature"]
    assert metrics["test/sentences/len_01-10"] + metrics["test/sentences/len_over_10"] == 50  # 40 + 10 longer
    assert metrics["test/longest_train_source"] == 20  # the tiny corpus' max_words
    figures = prepared / "figures" / "translation-attention_gru"
    for name in ("samples", "attention_short", "attention_long", "test_bleu_by_length"):
        assert (figures / f"{name}.png").is_file(), name

    net, source_vocab, target_vocab = load_exported(
        torch.load(prepared / "models/translation/attention_gru/model.pt", weights_only=False))
    val = ParallelDataset(prepared / "data" / "grammar_en_de", "val", source_vocab, target_vocab)
    hyps = []
    with torch.no_grad():
        for b in DataLoader(val, 16, collate_fn=PairCollate(target_vocab.pad_id, target_vocab.bos_id)):
            tokens, _ = greedy_decode(net, b["src"], b["src_mask"], target_vocab.bos_id, target_vocab.eos_id,
                                      max_lengths(b["src_mask"], params["translation"]["decoding"]["max_length_ratio"]))
            hyps += [text(target_vocab, t) for t in tokens]
    refs = [[r] for r in val.references]
    assert metrics["val/bleu"] == pytest.approx(corpus_bleu(hyps, refs).value, abs=1e-9)
    assert metrics["val/exact_match"] == pytest.approx(exact_match(hyps, refs), abs=1e-9)
    assert any(c.isalpha() for h in hyps for c in h)  # the comparison is not between empty outputs

    client = MlflowClient(f"sqlite:///{prepared / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("translation").experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/bleu")] == [1, 2, 3]
    assert run.data.tags["test/bleu_signature"] == metrics["test/bleu_signature"]
    assert "test/bleu/len_over_10" in run.data.metrics


def test_show_attend_tell_stage_writes_caption_bleu_and_attention(prepared, ray_session):
    from pipelines import train

    train.main(["captioning", "show_attend_tell"])
    metrics = read_stage_metrics(prepared, "captioning-show_attend_tell")
    assert metrics["headline_metric"] == "val/bleu"
    for key in ("val/bleu", "val/bleu1", "val/perplexity", "test/bleu", "test/bleu1", "test/bleu3"):
        assert 0.0 <= metrics[key] <= 100.0 or key == "val/perplexity", key
    assert "nrefs:2" in metrics["test/bleu_signature"]  # every scene has two reference captions
    figures = prepared / "figures" / "captioning-show_attend_tell"
    for name in ("captions", "attention", "test_captions"):
        assert (figures / f"{name}.png").is_file(), name


def test_test_split_decoded_in_length_order_comes_back_in_split_order(prepared):
    """translate_test batches the test split by source length for speed; each hypothesis must
    still belong to its own sentence: equal to decoding the split in its own order."""
    from components.config import load_params
    from components.families.sequence import translation
    from components.families.sequence.decoding import beam_search
    from components.runtime import seed_everything, with_absolute_paths

    params = with_absolute_paths(load_params(prepared / "params.yaml"))
    seed_everything(params.seed)
    task = translation.build_task("transformer", params)
    # Untrained: every sentence decodes to its own string of tokens up to the length cap (a
    # briefly trained one may end every hypothesis at once, and then any order looks right).
    task.setup(torch.device("cpu"), wrap=lambda module, **_: module, steps_per_epoch=1)
    export = task.export()

    test, hyps = translation.translate_test(export, params)
    net, source_vocab, target_vocab = load_exported(export)
    decoding = params.translation.decoding
    expected: list[str] = []
    with torch.no_grad():
        for batch in DataLoader(test, batch_size=7, collate_fn=PairCollate(target_vocab.pad_id, target_vocab.bos_id)):
            tokens = beam_search(net, batch["src"], batch["src_mask"], target_vocab.bos_id, target_vocab.eos_id,
                                 max_lengths(batch["src_mask"], decoding.max_length_ratio), decoding.beam_width,
                                 decoding.length_penalty)
            expected += [text(target_vocab, t) for t in tokens]
    assert len(set(expected)) > len(expected) // 2  # hypotheses differ: a shuffled order would show
    assert hyps == expected
