"""Datasets and batching for the sequence family: parallel sentences and captioned images.

A batch is a dict of tensors, batch first: ``src`` (B, S) token ids (or ``images`` (B, C, H, W)),
``src_mask`` (B, S) bool (True = real token), ``tgt_in`` (B, T) = ``<bos> y_1 .. y_n`` and
``tgt_out`` (B, T) = ``y_1 .. y_n <eos>`` (teacher forcing), padded with ``<pad>``, and ``index``
(B,) the rows' positions in their dataset (to find their references).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from components.data.schema import iter_split, read_split
from components.data.tensors import images_at
from components.data.text import Vocabulary, plain_tokens, tokenize
from components.errors import UserError


class ParallelDataset(Dataset):
    """One split of a ``PARALLEL`` dataset, encoded with the given vocabularies.

    Items are ``(source ids (S,) ending in <eos>, target ids (T,) ending in <eos>, index)``.
    ``references[i]`` holds row i's target sentence as text; ``source_lengths[i]`` its source
    length in words (without <eos>; words whatever the vocabulary's tokenizer), which the length
    buckets use. Each vocabulary's own tokenizer (words or subwords) splits its side's text.
    """

    def __init__(self, directory: Path, split: str, source_vocab: Vocabulary, target_vocab: Vocabulary):
        table = read_split(directory, split)
        self.sources: list[str] = table.column("source").to_pylist()
        self.references: list[str] = table.column("target").to_pylist()
        self.source_lengths = [len(tokenize(s)) for s in self.sources]
        self.src = [torch.tensor(source_vocab.encode_text(s), dtype=torch.long) for s in self.sources]
        self.tgt = [torch.tensor(target_vocab.encode_text(t), dtype=torch.long) for t in self.references]
        self.lengths = [len(s) + len(t) for s, t in zip(self.src, self.tgt, strict=True)]  # for length grouping

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.src[index], self.tgt[index], index


def teacher_forcing(targets: list[torch.Tensor], pad_id: int, bos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tgt_in, tgt_out)`` (B, T) from targets that end in <eos>: input shifted right behind <bos>."""
    tgt_out = pad_sequence(targets, batch_first=True, padding_value=pad_id)
    inputs = [torch.cat([torch.tensor([bos_id]), t[:-1]]) for t in targets]
    tgt_in = pad_sequence(inputs, batch_first=True, padding_value=pad_id)
    return tgt_in, tgt_out


class PairCollate:
    """Pads a list of :class:`ParallelDataset` items into one batch dict (picklable for DataLoader)."""

    def __init__(self, pad_id: int, bos_id: int):
        self.pad_id, self.bos_id = pad_id, bos_id

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        sources, targets, index = zip(*items, strict=True)
        src = pad_sequence(list(sources), batch_first=True, padding_value=self.pad_id)
        tgt_in, tgt_out = teacher_forcing(list(targets), self.pad_id, self.bos_id)
        return {"src": src, "src_mask": src != self.pad_id, "tgt_in": tgt_in, "tgt_out": tgt_out,
                "index": torch.tensor(index)}


CAPTION_DROPPED = frozenset(".!?\"'`")  # sentence-final marks and quotes


def caption_tokens(caption: str) -> list[str]:
    """A caption's tokens: its lower-cased words and punctuation marks (:func:`plain_tokens`, no
    spacing markers: captions are scored space-joined) without ``. ! ?`` and quotes, as COCO's
    evaluation tokenizer drops them (COCO's captions end in a full stop or not, at random). The
    scenes' captions, stored space-tokenized in lower case (``two digits : a small 3 left of a
    large 7``), come back as ``caption.split()``."""
    return [token for token in plain_tokens(caption.lower()) if token not in CAPTION_DROPPED]


IMAGE_COLUMNS = ["image", "height", "width", "channels"]
LOAD_ROWS = 64  # images decoded (and resized) at a time: COCO at 640 px is 1.2 MB an image (4.9 MB as floats)


class CaptionDataset(Dataset):
    """One split of a ``DENSE`` dataset's images and captions.

    ``pairs=True`` (training): one item per (image, caption), so every caption teaches.
    ``pairs=False`` (evaluation): one item per image, with its first caption; ``references[i]``
    holds every caption of image i (BLEU with multiple references; COCO's images have 5 to 7) as
    :func:`caption_tokens` reads it, space-joined (the form greedy and beam captions are scored in).
    Items are ``(image (C, H, W) float in [0, 1], caption ids (T,) ending in <eos>, image index)``.
    Images are held as ``uint8``, ``LOAD_ROWS`` decoded at a time and resized to ``image_size``
    square (bilinear, antialiased) when given: 20k COCO images at 224 px hold 3 GB, not 98.
    Every image needs a caption: one without is a UserError naming the file and the rows.
    """

    def __init__(self, directory: Path, split: str, vocab: Vocabulary, pairs: bool, image_size: int | None = None):
        captions = read_split(directory, split, columns=["captions"]).column("captions").to_pylist()
        self.references: list[list[str]] = [
            [" ".join(tokens) for c in caps if (tokens := caption_tokens(c))] for caps in captions
        ]
        uncaptioned = [i for i, caps in enumerate(self.references) if not caps]
        if uncaptioned or not captions:
            rows = ", ".join(map(str, uncaptioned[:5])) + (", ..." if len(uncaptioned) > 5 else "")
            what = f"{len(uncaptioned)} of its {len(captions)} images have no caption (rows {rows})"
            raise UserError(f"{Path(directory) / split}.parquet: {what if captions else 'no images'}; captioning "
                            "needs every image captioned")
        self.images = torch.cat([images_at(table, image_size)
                                 for table in iter_split(directory, split, IMAGE_COLUMNS, LOAD_ROWS)])
        self.items = [(i, k) for i, caps in enumerate(self.references) for k in range(len(caps) if pairs else 1)]
        self.captions = {
            (i, k): torch.tensor(vocab.encode(self.references[i][k].split()), dtype=torch.long)
            for i, k in self.items
        }
        self.lengths = [len(self.captions[item]) for item in self.items]  # for length grouping

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, k = self.items[index]
        return self.images[image].float() / 255.0, self.captions[(image, k)], image


class CaptionCollate:
    def __init__(self, pad_id: int, bos_id: int):
        self.pad_id, self.bos_id = pad_id, bos_id

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        images, captions, index = zip(*items, strict=True)
        tgt_in, tgt_out = teacher_forcing(list(captions), self.pad_id, self.bos_id)
        return {"images": torch.stack(images), "tgt_in": tgt_in, "tgt_out": tgt_out, "index": torch.tensor(index)}


def text(vocab: Vocabulary, ids: list[int], captions: bool = False) -> str:
    """Token ids -> detokenized text, by the vocabulary's tokenizer (captions keep their
    space-separated form)."""
    return " ".join(vocab.decode(ids)) if captions else vocab.decode_text(ids)
