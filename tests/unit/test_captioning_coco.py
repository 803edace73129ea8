"""Captioning on COCO: the stand-in's captions and real COCO's caption files through the family's task
(tokens, vocabulary threshold, resized images), and the one-line refusal
of a dataset without captions."""

from __future__ import annotations

import collections

import pytest
import torch

from components.config import parse_params
from components.data.coco import load_coco_instances
from components.data.synthetic import build_synthetic_coco
from components.errors import UserError
from components.families.sequence.batches import caption_tokens
from components.families.sequence.captioning import build_task, run_params
from tests.unit.test_data_coco import make_coco

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(raw: dict, **captioning):
    raw["captioning"].update(dataset="coco", **captioning)
    return parse_params(raw)


def test_caption_tokens_read_coco_and_leave_the_scenes_alone():
    assert caption_tokens("A  man's dog, riding a Horse.\n") == ["a", "man", "s", "dog", ",", "riding", "a", "horse"]
    assert caption_tokens('Two "big" cats!') == ["two", "big", "cats"]
    scene = "four digits from left to right : a small 3 , a small 8 , a large 1 and a large 8"
    assert caption_tokens(scene) == scene.split()


def test_the_task_reads_the_stand_in_at_its_own_size_and_vocabulary(workdir, tiny_params):
    meta = build_synthetic_coco(workdir / "data" / "coco", seed=0, image_size=SIZE, val_fraction=0.2,
                                max_train_images=None, max_test_images=None, fraction=0.0002)
    params = _params(tiny_params, image_size=16, min_freq=3)
    assert run_params("show_attend_tell", params) | {"max_length": 0} == {"max_length": 0, "min_freq": 3,
                                                                            "image_size": 16}
    task = build_task("show_attend_tell", params)
    train = task.datasets()["train"]
    assert len(train) == 5 * meta.sizes["train"]  # one item per (image, caption)
    assert train.images.shape == (meta.sizes["train"], 3, 16, 16) and train.images.dtype == torch.uint8
    image, caption, index = train[0]
    assert image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    counts = collections.Counter(t for caps in train.references for c in caps for t in c.split())
    vocab = task.target_vocab
    assert all(counts[t] >= 3 for t in vocab.itos[4:]) and any(n < 3 for n in counts.values())  # rarer: <unk>
    for caps in task.datasets()["val"].references:
        assert len(caps) == 5 and all(c == " ".join(caption_tokens(c)) for c in caps)  # lower case, no full stops

    task.setup(torch.device("cpu"), wrap=lambda m, **_: m, steps_per_epoch=1)
    batch = task.collate_fn([train[i] for i in range(4)])
    assert batch["images"].shape == (4, 3, 16, 16)
    assert torch.isfinite(task.train_step(batch)["loss"])
    val = torch.utils.data.DataLoader(task.datasets()["val"], batch_size=8, collate_fn=task.collate_fn)
    metrics = task.evaluate(val)
    assert {"bleu", "bleu1", "perplexity"} <= set(metrics)


def _prepare_real(workdir, tiny_params, source, **fixture):
    root = make_coco(source / "coco", **fixture)  # outside data.root, as params require
    load_coco_instances(root, workdir / "data" / "coco", train_set="train", test_set="test", image_size=SIZE,
                        val_fraction=0.25, seed=0)
    tiny_params["data"]["coco"].update(root=str(root), train_set="train", test_set="test")
    return root


def test_a_dataset_without_captions_is_refused_in_one_line(workdir, tiny_params, tmp_path_factory):
    root = _prepare_real(workdir, tiny_params, tmp_path_factory.mktemp("source"), captions=())
    with pytest.raises(UserError) as err:
        build_task("show_tell", _params(tiny_params))
    message = str(err.value)
    assert message.startswith(f"captioning.dataset coco: {workdir / 'data' / 'coco' / 'train.parquet'} has no "
                              "captions (its 'captions' column is empty)")
    assert str(root / "annotations" / "captions_train.json") in message and "\n" not in message


def test_a_split_with_uncaptioned_images_is_refused_before_training(workdir, tiny_params, tmp_path_factory):
    root = _prepare_real(workdir, tiny_params, tmp_path_factory.mktemp("source"))  # its test image t2: no caption
    with pytest.raises(UserError) as err:
        build_task("show_tell", _params(tiny_params))
    message = str(err.value)
    assert message.startswith(f"captioning.dataset coco: {workdir / 'data' / 'coco' / 'test.parquet'} has 1 of "
                              "its 2 images without a caption")
    assert str(root / "annotations" / "captions_test.json") in message and "\n" not in message
