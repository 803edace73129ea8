"""Synthetic stand-ins for PASCAL VOC 2012 segmentation, COCO 2017 instances, MNIST, CIFAR-10, PASCAL
VOC 2007 detection and Multi30k (one module each; ``base`` and ``dense`` hold what they share).

``data.<name>.synthetic: true`` makes the prepare stage generate (seeded, nothing downloaded) a
dataset with the real one's split sizes, classes, image shape and objects per image, written as
the real loader writes it: the same folder, schema, ``meta.json`` fields and side files. A family
reads it unchanged (``segmentation.dataset: voc``, ``detection.dataset: coco``,
``generative.dataset: mnist`` / ``cifar10``, ``detection.dataset: voc_detection``, ``translation.dataset:
parallel``), so a GPU profile measures throughput and memory at real scale
without the real data. ``synthetic_fraction`` draws ``round(real count * fraction)`` images (pairs) per
split instead (at least what non-empty splits need), so CI runs the same code at tiny scale.

The images are learnable, not noise: every object is one of scikit-learn's real handwritten
digits (``digits.py``), and the train, val and test splits draw on disjoint digits
(``split_digit_ids``), so val and test digits are unseen; CIFAR-10's objects are drawn shapes.

- VOC, VOC detection and COCO: a class is a (digit, colour) pair named like ``"3-red"``: 10 digits x
  VOC_COLOURS = 20 classes, x COCO_COLOURS = 80, plus background. An object is its digit resized
  bilinearly (aspect ratio jittered), tinted in its class colour and alpha-blended over a
  textured background (a smooth random colour field half-way to grey, so the saturated colours
  belong to objects), with pixel noise over all; telling classes apart needs colour and shape.
  Objects are drawn largest first and may overlap, a later one occluding an earlier one. An
  object's instance mask is the visible part of its pixels above MASK_THRESHOLD of its peak
  intensity, its box the tight box of that mask; an object left with no visible pixel is dropped.
- VOC: 1 + Poisson objects per image (mean VOC_OBJECTS_PER_IMAGE), mask areas log-uniform in
  VOC_AREA_RANGE. As in VOC, the semantic mask is IGNORE_INDEX (255) on a band along every object
  outline (VOC_BOUNDARY of the image side wide) and the instance masks leave the band out (as
  ``SegmentationObject`` does). Written as :func:`components.data.voc.load_voc_segmentation` writes
  it (``DENSE``, no side files); ``meta.name`` is ``voc2012`` whatever ``data.voc.year`` says.
- COCO: negative-binomial objects per image (mean COCO_OBJECTS_PER_IMAGE, some images empty),
  mask areas drawn from COCO_SIZES (COCO's small / medium / large shares, areas scaled from
  640x480 to the image). Written as :func:`components.data.coco.load_coco_instances` writes it
  (``DENSE_CROWD``, every ``iscrowd`` 0, and ``instances_{val,test}.json``), with five English
  captions per image written from its objects (``captions``: colours, digits, counts, sizes,
  coarse positions, COCO's sentence lengths; their own generator, so the images are unchanged).
- MNIST: one digit per 28x28 grey image, its 8x8 box scaled to MNIST's 20x20 and jittered by a
  random affine map (scale, rotation, shift), so no two samples are the same picture; labels
  cycle through 0..9 (balanced). Written as :func:`components.data.mnist.load_mnist` writes it
  (``CLASSIFICATION``; train/val split stratified and seeded; row ids index the 60,000 "source").
- CIFAR-10: one shape per 32x32 RGB image, the class's shape or texture (disc, square, triangle,
  ring, plus, star, bar, striped disc, checkered square, square frame for classes 0..9, named as
  CIFAR-10's), in a random saturated colour, size, angle and place over a colour wave half-way to
  grey, with pixel noise: the class is in the shape, never in the colour. Labels cycle through
  0..9. Written through :func:`components.data.cifar10.write_cifar10`, as ``load_cifar10`` writes
  CIFAR-10 (``CLASSIFICATION``; upsampled bilinearly to ``image_size`` above 32; train/val split
  stratified and seeded; row ids index the 50,000 "training batches").
- VOC detection: VOC's objects (1 + Poisson, mean VOC2007_OBJECTS_PER_IMAGE) without the band, a
  box the tight box of the object's visible pixels. Written as
  :func:`components.data.voc_detection.load_voc_detection` writes it (``DENSE`` with no instance
  masks, the semantic mask all 255, ``instances_{val,test}.json`` without segmentation, every
  ``iscrowd`` 0: no difficult objects); ``meta.name`` is ``voc2007_detection``.
- Multi30k: English->German pairs from the grammar corpus's generator
  (:func:`components.data.translation.generator.pairs_of_lengths`), English lengths drawn around
  MULTI30K_MEAN_TOKENS (:func:`parallel.sentence_lengths`), no English sentence twice. Written as
  :func:`components.data.translation.load_parallel_corpus` writes a corpus with val files
  (``PARALLEL``, row ids = line numbers); the languages must be en and de, either way round.

Splits are sized as the real loaders size them (see each builder). Every split has its own
generator, spawned from ``seed`` and the dataset's stream, so the same seed gives byte-identical
files. Dense splits are streamed to Parquet ROW_GROUP rows at a time: COCO at 512 px is far
larger than memory.
"""

from components.data.synthetic.base import COLOURS, IGNORE_INDEX, MASK_THRESHOLD, class_names
from components.data.synthetic.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_SIZE,
    CIFAR10_TEST_IMAGES,
    CIFAR10_TRAIN_IMAGES,
    build_synthetic_cifar10,
    cifar10_source_count,
)
from components.data.synthetic.coco import (
    COCO_OBJECTS_PER_IMAGE,
    COCO_REFERENCE_AREA,
    COCO_SIZES,
    COCO_TEST_IMAGES,
    COCO_TRAIN_IMAGES,
    build_synthetic_coco,
    coco_counts,
)
from components.data.synthetic.mnist import (
    MNIST_CLASSES,
    MNIST_SIZE,
    MNIST_TEST_IMAGES,
    MNIST_TRAIN_IMAGES,
    build_synthetic_mnist,
    mnist_source_count,
)
from components.data.synthetic.parallel import (
    MULTI30K_MEAN_TOKENS,
    MULTI30K_SIZES,
    build_synthetic_parallel,
    parallel_counts,
)
from components.data.synthetic.voc import (
    VOC_BOUNDARY,
    VOC_OBJECTS_PER_IMAGE,
    VOC_TEST_IDS,
    VOC_TRAIN_IDS,
    build_synthetic_voc,
    voc_counts,
)
from components.data.synthetic.voc_detection import (
    VOC2007_OBJECTS_PER_IMAGE,
    VOC2007_TEST_IDS,
    VOC2007_TRAIN_IDS,
    build_synthetic_voc_detection,
    voc_detection_counts,
)

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_SIZE",
    "CIFAR10_TEST_IMAGES",
    "CIFAR10_TRAIN_IMAGES",
    "COCO_OBJECTS_PER_IMAGE",
    "COCO_REFERENCE_AREA",
    "COCO_SIZES",
    "COCO_TEST_IMAGES",
    "COCO_TRAIN_IMAGES",
    "COLOURS",
    "IGNORE_INDEX",
    "MASK_THRESHOLD",
    "MNIST_CLASSES",
    "MNIST_SIZE",
    "MNIST_TEST_IMAGES",
    "MNIST_TRAIN_IMAGES",
    "MULTI30K_MEAN_TOKENS",
    "MULTI30K_SIZES",
    "VOC2007_OBJECTS_PER_IMAGE",
    "VOC2007_TEST_IDS",
    "VOC2007_TRAIN_IDS",
    "VOC_BOUNDARY",
    "VOC_OBJECTS_PER_IMAGE",
    "VOC_TEST_IDS",
    "VOC_TRAIN_IDS",
    "build_synthetic_cifar10",
    "build_synthetic_coco",
    "build_synthetic_mnist",
    "build_synthetic_parallel",
    "build_synthetic_voc",
    "build_synthetic_voc_detection",
    "cifar10_source_count",
    "class_names",
    "coco_counts",
    "mnist_source_count",
    "parallel_counts",
    "voc_counts",
    "voc_detection_counts",
]
