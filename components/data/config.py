"""``data`` in params.yaml: the embedded datasets' generators and the real datasets' local paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.runtime import resolve
from components.schema import Fraction, NonNegativeInt, PositiveInt, Section, keyed_error

# The real datasets read from a local folder: data.<name>.root
SOURCES = ("voc", "mnist", "coco", "voc_detection", "parallel", "cifar10", "labelled_text")
# The real datasets with a generated stand-in (components/data/synthetic/): data.<name>.synthetic
SYNTHETIC = ("voc", "mnist", "coco", "voc_detection", "parallel", "cifar10")

# Of a real dataset's image counts: (0, 1], 1.0 = the real scale
Share = Annotated[float, Field(gt=0, le=1)]

# --- data -------------------------------------------------------------------------------------


class DigitsConfig(Section):
    image_size: Annotated[int, Field(ge=8, le=64)]  # 8 = native; larger = bilinear upsampling
    val_fraction: Fraction
    test_fraction: Fraction


class ScenesConfig(Section):
    num_train: PositiveInt
    num_val: PositiveInt
    num_test: PositiveInt
    canvas_size: Annotated[int, Field(ge=32, le=512, multiple_of=16)]
    min_digits: PositiveInt
    max_digits: PositiveInt
    min_digit_size: Annotated[int, Field(ge=8)]
    max_digit_size: Annotated[int, Field(ge=8)]
    max_box_iou: Annotated[float, Field(ge=0, le=1)]
    mask_threshold: Fraction
    captions_per_scene: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _ranges(self) -> ScenesConfig:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) must be <= max_digits ({self.max_digits})")
        if self.min_digit_size > self.max_digit_size:
            raise ValueError(
                f"min_digit_size ({self.min_digit_size}) must be <= max_digit_size ({self.max_digit_size})"
            )
        if self.max_digit_size > self.canvas_size:
            raise ValueError(f"max_digit_size ({self.max_digit_size}) must fit the canvas ({self.canvas_size})")
        return self


class VocConfig(Section):
    root: str | None  # path to VOCdevkit (or its parent); None = not used
    year: str
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction
    synthetic: bool  # generate the VOC 2012 stand-in instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real image counts the stand-in draws


class MnistConfig(Section):
    root: str | None  # folder with the four idx files (optionally .gz); None = not used
    val_fraction: Fraction
    synthetic: bool  # generate the MNIST stand-in instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real image counts the stand-in draws


class Cifar10Config(Section):
    root: str | None  # the cifar-10-batches-py folder (python version's pickled batches); None = not used
    image_size: Annotated[int, Field(ge=32, le=256)]  # 32 = native; larger = bilinear upsampling (64: DCGAN's)
    val_fraction: Fraction  # of the 50,000 training images
    synthetic: bool  # generate the CIFAR-10 stand-in instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real image counts the stand-in draws


class CocoConfig(Section):
    root: str | None  # folder holding annotations/ and the image folders; None = not used
    train_set: str  # annotations/instances_<train_set>.json + <train_set>/: split into train/val
    test_set: str  # annotations/instances_<test_set>.json + <test_set>/: the test split
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction
    max_train_images: PositiveInt | None  # seeded subset of train_set before the split; None = all
    max_test_images: PositiveInt | None
    drop_empty_boxes: bool  # drop zero-width/height boxes (train2017 has two) instead of rejecting them
    synthetic: bool  # generate the COCO 2017 stand-in instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real image counts the stand-in draws (before the caps)


class VocDetectionConfig(Section):
    root: str | None  # path to VOCdevkit (or its parent); None = not used
    year: str
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=16)]
    val_fraction: Fraction
    synthetic: bool  # generate the VOC 2007 detection stand-in instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real image counts the stand-in draws


class GrammarEnDeConfig(Section):
    """The embedded English->German corpus, generated from a small grammar."""

    num_train: PositiveInt
    num_val: PositiveInt
    num_test: PositiveInt  # in-distribution test pairs, lengths in [min_words, max_words]
    min_words: PositiveInt  # English source length in tokens (punctuation counts)
    max_words: PositiveInt  # the longest training sentence
    num_longer: NonNegativeInt  # extra test pairs longer than any training sentence
    longer_max_words: PositiveInt
    lexicon_fraction: Annotated[float, Field(gt=0, le=1)]  # the first part of each word table (1 = all)

    @model_validator(mode="after")
    def _lengths(self) -> GrammarEnDeConfig:
        if not self.min_words < self.max_words < self.longer_max_words:
            raise ValueError(
                f"need min_words < max_words < longer_max_words (got {self.min_words}, {self.max_words}, "
                f"{self.longer_max_words})"
            )
        return self


class ParallelConfig(Section):
    """A real parallel corpus from local files: <root>/{train,val,test}.<lang>, one sentence per line."""

    root: str | None
    source_lang: str
    target_lang: str
    val_fraction: Fraction  # of train, when there are no val.<lang> files
    synthetic: bool  # generate the Multi30k stand-in (en/de) instead of reading root (which must be None)
    synthetic_fraction: Share  # of the real pair counts the stand-in draws


class WordOrderConfig(Section):
    """The embedded grammaticality dataset: grammar_en_de's English sentences, half with two adjacent words swapped."""

    num_train: PositiveInt  # sentences drawn from grammar_en_de's train split (half swapped)
    num_val: PositiveInt
    num_test: PositiveInt
    min_words: PositiveInt  # word tokens (punctuation not counted)


class LabelledTextConfig(Section):
    """Labelled text from local files: <root>/{train,val,test}.{csv,tsv}, a header row."""

    root: str | None  # None = not used
    text_column: str
    label_column: str
    val_fraction: Fraction  # of train, when there is no val file


class ProposalsConfig(Section):
    """Selective-search region proposals (components/data/proposals.py), cached by prepare for the
    detection datasets R-CNN and Fast R-CNN train on."""

    datasets: list[Literal["scenes", "coco", "voc_detection"]]  # each gets <dataset>/proposals/<split>.npz
    strategy: Literal["lab", "fast", "quality"]  # lab: Lab colour + `scales`; fast / quality: OpenCV's presets
    scales: Annotated[list[PositiveInt], Field(min_length=1)]  # lab: Felzenszwalb segmentation scales (k)
    sigma: Annotated[float, Field(gt=0)]  # lab: the segmentation's Gaussian smoothing
    upscale: Annotated[int, Field(ge=1, le=8)]  # search an image this many times larger (small images)

    def search(self) -> dict:
        """:func:`components.data.proposals.selective_search`'s keyword arguments."""
        return self.model_dump(exclude={"datasets"})


class DataConfig(Section):
    root: str  # where prepared datasets are written, relative to the repo root
    digits: DigitsConfig
    scenes: ScenesConfig
    voc: VocConfig
    mnist: MnistConfig
    cifar10: Cifar10Config
    coco: CocoConfig
    voc_detection: VocDetectionConfig
    grammar_en_de: GrammarEnDeConfig
    parallel: ParallelConfig
    word_order: WordOrderConfig
    labelled_text: LabelledTextConfig
    proposals: ProposalsConfig

    def source_roots(self) -> dict[str, Path]:
        """``{name: resolved folder}`` of every real dataset whose ``data.<name>.root`` is set."""
        return {name: resolve(getattr(self, name).root).resolve() for name in SOURCES if getattr(self, name).root}

    @model_validator(mode="after")
    def _synthetic_or_root(self) -> DataConfig:
        """A stand-in is generated, never read: ``data.<name>.synthetic`` excludes ``data.<name>.root``.
        Checked before the source folders are (a stand-in has none)."""
        for name in SYNTHETIC:
            section = getattr(self, name)
            if section.synthetic and section.root:
                raise keyed_error(f"{name}.synthetic", f"true generates a stand-in and reads no files, but "
                                                       f"data.{name}.root is set: set data.{name}.root to null "
                                                       f"or data.{name}.synthetic to false", section.root)
        return self

    @model_validator(mode="after")
    def _sources_outside_root(self) -> DataConfig:
        """No source folder overlaps ``root``: DVC empties ``root`` before ``dvc repro prepare`` and
        the prepare stage replaces ``root/<name>`` whole, so a corpus kept there would be deleted.
        Checked here, before any stage touches a file (symlinks resolved)."""
        prepared = resolve(self.root).resolve()
        for name, source in self.source_roots().items():
            key, given = f"{name}.root", getattr(self, name).root
            where = f"{source}" if str(source) == os.path.normpath(resolve(given)) else f"{source} (through a symlink)"
            if source == prepared or prepared in source.parents:
                relation = "is data.root" if source == prepared else f"lies inside data.root ({prepared})"
                raise keyed_error(key, f"{where} {relation}, which DVC empties before `dvc repro prepare` and "
                                       f"the prepare stage rewrites: move it outside {self.root}/ and point "
                                       f"data.{key} there", given)
            if source in prepared.parents:
                raise keyed_error(key, f"{where} holds data.root ({prepared}), which DVC empties before "
                                       f"`dvc repro prepare` and the prepare stage rewrites: point data.root "
                                       f"outside it (or move the dataset elsewhere)", given)
        return self
