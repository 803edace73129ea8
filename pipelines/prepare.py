"""Stage `prepare`: write every configured dataset under ``data.root`` as Parquet.

    python -m pipelines.prepare [--params params.yaml]

Embedded datasets (``digits``, ``scenes``, ``grammar_en_de``, then ``word_order`` from
``grammar_en_de``'s English side) are generated from the seed; ``voc``, ``voc_detection``, ``coco``,
``mnist``, ``cifar10``, ``parallel`` and ``labelled_text`` are read from local paths when their
``data.<name>.root`` is set. With ``data.<name>.synthetic: true`` (root null), each is instead
generated from the seed as a stand-in of the real dataset's size, in its loader's format
(``components.data.synthetic``); with neither (the default) it is not built at all. Order: the
real datasets (a wrong path fails before minutes of generation), the embedded datasets
(seconds), then the stand-ins (up to minutes). The datasets in ``data.proposals.datasets`` get
their selective-search region proposals cached beside them (R-CNN, Fast R-CNN). Each dataset
directory is written to a temporary path and renamed on success.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

from components.config import load_params
from components.data.cifar10 import load_cifar10
from components.data.coco import load_coco_instances
from components.data.config import ProposalsConfig
from components.data.digits import build_digits
from components.data.labelled_text import load_labelled_text
from components.data.mnist import load_mnist
from components.data.proposals import write_proposals
from components.data.scenes import build_scenes
from components.data.synthetic import (
    build_synthetic_cifar10,
    build_synthetic_coco,
    build_synthetic_mnist,
    build_synthetic_parallel,
    build_synthetic_voc,
    build_synthetic_voc_detection,
)
from components.data.translation import build_grammar_corpus, load_parallel_corpus
from components.data.voc import load_voc_segmentation
from components.data.voc_detection import load_voc_detection
from components.data.word_order import build_word_order
from components.errors import exit_on_user_error, run_and_exit
from components.io import atomic_directory
from components.runtime import resolve


def _build(name: str, root: Path, builder, keep: tuple[Path, ...], proposals: ProposalsConfig | None = None) -> None:
    """``builder(tmp)`` writes dataset ``name``; with ``name`` in ``data.proposals.datasets`` its selective-search
    proposals are cached beside it, inside the same atomic rename."""
    started = time.perf_counter()
    with atomic_directory(root / name, keep=keep) as tmp:  # never replaces a source folder (params check it too)
        meta = builder(tmp)
        if proposals is not None and name in proposals.datasets:
            searched = time.perf_counter()
            mean = write_proposals(tmp, proposals.search())
            per_split = ", ".join(f"{split} {n:.1f}" for split, n in mean.items())
            print(f"prepare: {name}: selective search ({proposals.strategy}, x{proposals.upscale}): "
                  f"{per_split} proposals per image ({time.perf_counter() - searched:.1f}s)", flush=True)
    sizes = ", ".join(f"{split} {n}" for split, n in meta.sizes.items())
    print(f"prepare: {name}: {sizes} ({time.perf_counter() - started:.1f}s) -> {root / name}", flush=True)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    data, seed = params.data, params.seed
    root = resolve(data.root)
    keep = tuple(data.source_roots().values())
    build = functools.partial(_build, root=root, keep=keep, proposals=data.proposals)

    # Real datasets first: a wrong path should fail before minutes of generation.
    if data.voc.root:
        voc = data.voc
        build("voc", builder=lambda out: load_voc_segmentation(
            resolve(voc.root), out, year=voc.year, image_size=voc.image_size,
            val_fraction=voc.val_fraction, seed=seed))
    if data.coco.root:
        build("coco", builder=lambda out: load_coco_instances(
            resolve(data.coco.root), out, seed=seed,
            **data.coco.model_dump(exclude={"root", "synthetic", "synthetic_fraction"})))
    if data.voc_detection.root:
        vd = data.voc_detection
        build("voc_detection", builder=lambda out: load_voc_detection(
            resolve(vd.root), out, year=vd.year, image_size=vd.image_size, val_fraction=vd.val_fraction, seed=seed))
    if data.mnist.root:
        build("mnist", builder=lambda out: load_mnist(
            resolve(data.mnist.root), out, seed=seed, val_fraction=data.mnist.val_fraction))
    if data.cifar10.root:
        cf = data.cifar10
        build("cifar10", builder=lambda out: load_cifar10(
            resolve(cf.root), out, seed=seed, image_size=cf.image_size, val_fraction=cf.val_fraction))
    if data.parallel.root:
        pc = data.parallel
        build("parallel", builder=lambda out: load_parallel_corpus(
            resolve(pc.root), out, source_lang=pc.source_lang, target_lang=pc.target_lang, seed=seed,
            val_fraction=pc.val_fraction))
    if data.labelled_text.root:
        lt = data.labelled_text
        build("labelled_text", builder=lambda out: load_labelled_text(
            resolve(lt.root), out, seed=seed, text_column=lt.text_column, label_column=lt.label_column,
            val_fraction=lt.val_fraction))
    build("digits", builder=lambda out: build_digits(out, seed=seed, **data.digits.model_dump()))
    build("scenes", builder=lambda out: build_scenes(
        out, seed=seed, val_fraction=data.digits.val_fraction, test_fraction=data.digits.test_fraction,
        **data.scenes.model_dump()))
    build("grammar_en_de", builder=lambda out: build_grammar_corpus(out, seed=seed, **data.grammar_en_de.model_dump()))
    build("word_order", builder=lambda out: build_word_order(
        out, root / "grammar_en_de", seed=seed, **data.word_order.model_dump()))
    # Stand-ins of real datasets last: at real scale they take the longest (minutes).
    if data.voc.synthetic:
        build("voc", builder=lambda out: build_synthetic_voc(
            out, seed=seed, image_size=data.voc.image_size, val_fraction=data.voc.val_fraction,
            fraction=data.voc.synthetic_fraction))
    if data.coco.synthetic:
        cc = data.coco
        build("coco", builder=lambda out: build_synthetic_coco(
            out, seed=seed, image_size=cc.image_size, val_fraction=cc.val_fraction,
            max_train_images=cc.max_train_images, max_test_images=cc.max_test_images, fraction=cc.synthetic_fraction))
    if data.mnist.synthetic:
        build("mnist", builder=lambda out: build_synthetic_mnist(
            out, seed=seed, val_fraction=data.mnist.val_fraction, fraction=data.mnist.synthetic_fraction))
    if data.cifar10.synthetic:
        cf = data.cifar10
        build("cifar10", builder=lambda out: build_synthetic_cifar10(
            out, seed=seed, image_size=cf.image_size, val_fraction=cf.val_fraction, fraction=cf.synthetic_fraction))
    if data.voc_detection.synthetic:
        vd = data.voc_detection
        build("voc_detection", builder=lambda out: build_synthetic_voc_detection(
            out, seed=seed, image_size=vd.image_size, val_fraction=vd.val_fraction, fraction=vd.synthetic_fraction))
    if data.parallel.synthetic:
        pc = data.parallel
        build("parallel", builder=lambda out: build_synthetic_parallel(
            out, seed=seed, source_lang=pc.source_lang, target_lang=pc.target_lang, fraction=pc.synthetic_fraction))


if __name__ == "__main__":
    run_and_exit(main)
