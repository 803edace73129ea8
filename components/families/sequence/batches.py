"""Datasets and batching for the sequence family: parallel sentences and captioned images.

A batch is a dict of tensors, batch first: ``src`` (B, S) token ids (or ``images`` (B, C, H, W)),
``src_mask`` (B, S) bool (True = real token), ``tgt_in`` (B, T) = ``<bos> y_1 .. y_n`` and
``tgt_out`` (B, T) = ``y_1 .. y_n <eos>`` (teacher forcing), padded with ``<pad>``, and ``index``
(B,) the rows' positions in their dataset (to find their references).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from components.data.schema import decode_images, read_split
from components.data.text import Vocabulary, tokenize


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


def caption_tokens(caption: str) -> list[str]:
    """Scene captions are stored space-tokenized (``two digits : a small 3 left of a large 7``)."""
    return caption.split()


class CaptionDataset(Dataset):
    """One split of a ``DENSE`` dataset's images and captions.

    ``pairs=True`` (training): one item per (image, caption), so every caption teaches.
    ``pairs=False`` (evaluation): one item per image, with its first caption; ``references[i]``
    holds every caption of image i (BLEU with multiple references).
    Items are ``(image (C, H, W) float in [0, 1], caption ids (T,) ending in <eos>, image index)``.
    """

    def __init__(self, directory: Path, split: str, vocab: Vocabulary, pairs: bool):
        table = read_split(directory, split)
        images = decode_images(table).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.references: list[list[str]] = table.column("captions").to_pylist()
        if not self.references or not all(self.references):
            raise ValueError(f"{directory / split}.parquet: every image needs at least one caption")
        self.items = [(i, k) for i, caps in enumerate(self.references) for k in range(len(caps) if pairs else 1)]
        self.captions = {
            (i, k): torch.tensor(vocab.encode(caption_tokens(self.references[i][k])), dtype=torch.long)
            for i, k in self.items
        }
        self.lengths = [len(self.captions[item]) for item in self.items]  # for length grouping

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, k = self.items[index]
        return self.images[image], self.captions[(image, k)], image


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
