"""What every generative model shares as the harness drives it: data, fixed sampling noise, FID/IS
evaluation with its reference points, sample figures.

Every evaluation scores ``generative.fid.num_generated`` samples from fixed noise against the real
images of ``generative.fid.reference_split``, and logs beside the model's scores two reference
points with the same sample counts: the real-vs-real floor (as many train images as samples) and
the untrained generator (the same network at initialisation, same noise). Under DDP every rank
scores its share of the samples and a strided shard of the real images; the metric states are
summed across ranks, so the scores are those of the whole sample.

A conditional model (cgan, cvae, sagan) also logs ``val/cond_accuracy``: the frozen evaluator's top-1
accuracy on those samples against the (balanced) labels they were generated for, counted over every
rank's share.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from components.data.schema import DatasetMeta
from components.data.tensors import load_classification_split as load_split
from components.errors import UserError
from components.families.generative.config import GenerativeConfig
from components.families.generative.evaluator import EvaluatorFeatures, evaluator_path, file_sha256, load_evaluator
from components.families.generative.figures import interpolation_figure, reconstruction_figure, sample_grid
from components.families.generative.inception import InceptionFeatures, check_inception_weights
from components.metrics.generative import FeatureFID, PosteriorInceptionScore
from components.runtime import resolve
from components.train.ranks import rank_world, sum_over_ranks
from components.train.task import ModuleTask, Wrap

EVALUATOR_DIR = "models/evaluator"  # the evaluator stage's output, relative to the repository root
# Figure layout (presentation, not training): a 10x10 sample grid, 4 interpolations of 10 steps.
GRID_SIDE = 10
INTERPOLATION_PAIRS = 4
INTERPOLATION_STEPS = 10


@torch.no_grad()
def conditional_accuracy(classifier: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> float:
    """Share of ``images`` (N, C, S, S) that ``classifier`` puts in the class ``labels`` (N,) asked
    for (top-1), over the images of every rank."""
    labels = labels.to(images.device)
    correct = sum(int((classifier(chunk).argmax(1) == wanted).sum())
                  for chunk, wanted in zip(images.split(batch_size), labels.split(batch_size), strict=True))
    counts = sum_over_ranks(torch.tensor([float(correct), float(len(images))], dtype=torch.float64,
                                          device=images.device))
    return float(counts[0] / counts[1])


@torch.no_grad()
def class_variance(images: Tensor, labels: Tensor, num_classes: int) -> float:
    """The diversity of class-conditional samples: for each class, the variance of each pixel over that
    class's samples (unbiased), averaged over pixels; then averaged over the classes that have at least
    two samples. Counts, sums and squared sums are added over ranks (float64), so it is the whole sample's."""
    flat = images.flatten(1).double()
    one_hot = torch.nn.functional.one_hot(labels.to(images.device), num_classes).double()  # (N, K)
    stats = sum_over_ranks(torch.cat([one_hot.sum(0)[:, None], one_hot.T @ flat, one_hot.T @ flat.square()], dim=1))
    counts, sums, squares = stats[:, :1], stats[:, 1 : 1 + flat.shape[1]], stats[:, 1 + flat.shape[1] :]
    present = counts[:, 0] >= 2
    variance = (squares - sums.square() / counts.clamp(min=1)) / (counts - 1).clamp(min=1)
    return float(variance[present].mean())


class GenerativeTask(ModuleTask):
    """What GANs and VAEs share: data, sampling from fixed noise, FID/IS evaluation, figures.

    Subclasses build ``modules``/``optimizers`` in :meth:`_build`, set ``self._untrained`` (the sampling
    network at initialisation) and implement :meth:`_sampling_net` and :meth:`_decode`.
    """

    conditional = False
    interpolates = True  # figures() draws decoded linear paths between codes

    def __init__(self, model: str, config: Any, section: GenerativeConfig, directory: Path, meta: DatasetMeta,
                 evaluator_dir: Path, seed: int) -> None:
        self.model_name, self.config, self.section = model, config, section
        self.directory, self.meta, self.seed = directory, meta, seed
        self.inception_weights = check_inception_weights(  # user mistakes fail here, before Ray starts
            None if section.fid.inception_weights is None else str(resolve(section.fid.inception_weights)))
        self.evaluator_file = evaluator_path(evaluator_dir)
        if section.fid.num_generated > meta.sizes["train"]:
            raise UserError(
                f"generative.fid.num_generated ({section.fid.num_generated}) exceeds the {meta.sizes['train']} "
                f"train images the real-vs-real floor is drawn from; lower it in params.yaml")
        self._datasets: dict[str, Dataset] | None = None
        self._references: dict[str, float] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    # --- data and set-up ---------------------------------------------------------------------

    def datasets(self) -> Mapping[str, Dataset]:
        """``train``: the training split; ``val``: the real images samples are scored against."""
        if self._datasets is None:
            self._datasets = {"train": load_split(self.directory, "train"),
                              "val": load_split(self.directory, self.section.fid.reference_split)}
        return self._datasets

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        self.rank, self.world = rank_world()
        self._build(device, wrap, steps_per_epoch)
        latent = self.section.backbone.latent_dim
        codes = torch.Generator().manual_seed(self.seed)
        self.figure_codes = torch.randn(GRID_SIDE**2, latent, generator=codes)
        self.interpolation_ends = torch.randn(INTERPOLATION_PAIRS, 2, latent, generator=codes)
        self.evaluator = load_evaluator(self.evaluator_file.parent).to(device)
        self.inception = InceptionFeatures(self.inception_weights).to(device) if self.inception_weights else None
        if self.rank == 0 and self.inception is None:
            print(f"[generative/{self.model_name}] generative.fid.inception_weights is null: logging the "
                  "evaluator-feature metrics only (val/fid_evaluator, val/is_evaluator)", file=sys.__stdout__,
                  flush=True)

    def inputs(self) -> list[Path]:
        """The dataset, the FID evaluator and, when set, the Inception weights."""
        weights = [Path(self.inception_weights)] if self.inception_weights else []
        return [self.directory, self.evaluator_file.parent, *weights]

    def _build(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        raise NotImplementedError

    # --- sampling ----------------------------------------------------------------------------

    def _sampling_net(self) -> nn.Module:
        raise NotImplementedError

    def _decode(self, net: nn.Module, codes: Tensor, labels: Tensor) -> Tensor:
        """Images (N, C, S, S) in [0, 1] from codes (N, latent_dim) and labels (N,) (unused unless conditional)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, codes: Tensor, labels: Tensor, net: nn.Module | None = None) -> Tensor:
        """Decode ``codes`` with ``net`` (default: the current sampling network) in eval mode, in batches."""
        net = self._sampling_net() if net is None else net
        was_training = net.training
        net.eval()
        try:
            size = self.section.trainer.eval_batch_size
            return torch.cat([
                self._decode(net, codes[i : i + size].to(self.device), labels[i : i + size].to(self.device))
                for i in range(0, len(codes), size)
            ])
        finally:
            net.train(was_training)

    def _evaluation_codes(self) -> tuple[Tensor, Tensor]:
        """This rank's share of the fixed evaluation noise (the same every epoch) and balanced labels."""
        total = self.section.fid.num_generated
        ids = torch.arange(self.rank, total, self.world)
        codes = torch.randn(total, self.section.backbone.latent_dim, generator=torch.Generator().manual_seed(
            self.seed + 1))
        return codes[ids], ids % self.meta.num_classes

    # --- evaluation --------------------------------------------------------------------------

    def _score(self, fid: FeatureFID, fakes: Tensor, inception_score: bool = True) -> tuple[float, float]:
        """(FID against the real features already in ``fid``, IS) of ``fakes`` (N, C, S, S)."""
        fid.reset()  # keeps the real statistics (reset_real_features=False)
        posterior_is = PosteriorInceptionScore(self.meta.num_classes).to(self.device)
        for chunk in fakes.split(self.section.trainer.eval_batch_size):
            fid.update(chunk, real=False)
            if inception_score:
                posterior_is.update(self.evaluator(chunk))
        return float(fid.compute()), float(posterior_is.compute()) if inception_score else float("nan")

    def _floor_images(self) -> Tensor:
        """This rank's share of ``num_generated`` train images (a fixed random subset)."""
        images = self.datasets()["train"].tensors[0]
        chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        return images[chosen[: self.section.fid.num_generated][self.rank :: self.world]].to(self.device)

    def _real_fid(self, extractor: nn.Module, real: list[Tensor]) -> FeatureFID:
        fid = FeatureFID(extractor, reset_real_features=False).to(self.device)
        for images in real:
            fid.update(images, real=True)
        return fid

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        batches = [(images.to(self.device), labels) for images, labels in batches]
        real = [images for images, _ in batches]
        codes, labels = self._evaluation_codes()
        fakes = self.sample(codes, labels)
        if self._references is None:  # the real statistics and reference points: once per run (and resume)
            fid = self._evaluator_fid = self._real_fid(EvaluatorFeatures(self.evaluator), real)
            floor_fid, floor_is = self._score(fid, self._floor_images())
            untrained_fid, untrained_is = self._score(fid, self.sample(codes, labels, self._untrained))
            self._references = {
                "fid_evaluator_floor": floor_fid, "is_evaluator_floor": floor_is,
                "fid_evaluator_untrained": untrained_fid, "is_evaluator_untrained": untrained_is,
                "fid_num_real": float(len(self.datasets()["val"])),
                "fid_num_generated": float(self.section.fid.num_generated),
            }
            if self.inception is not None:
                self._inception_fid = self._real_fid(self.inception, real)
                self._references["fid_inception_floor"] = self._score(
                    self._inception_fid, self._floor_images(), inception_score=False)[0]
        fid_value, is_value = self._score(self._evaluator_fid, fakes)
        out = {"fid_evaluator": fid_value, "is_evaluator": is_value}
        out.update(self._references)
        if self.conditional:
            out.update(self._conditional_metrics(fakes, labels))
        if self.inception is not None:
            out["fid_inception"] = self._score(self._inception_fid, fakes, inception_score=False)[0]
        out.update(self._evaluate_extra(batches))
        return out

    def _conditional_metrics(self, fakes: Tensor, labels: Tensor) -> dict[str, float]:
        """A conditional model's scores of this rank's samples ``fakes`` generated for ``labels``:
        ``cond_accuracy``, whole-sample (every rank's counts)."""
        return {"cond_accuracy": conditional_accuracy(self.evaluator, fakes, labels,
                                                      self.section.trainer.eval_batch_size)}

    def _evaluate_extra(self, batches: list[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """Family-specific metrics on this rank's reference batches (images on the device, labels)."""
        return {}

    # --- figures and export ------------------------------------------------------------------

    def figures(self, batch: Any) -> Mapping[str, Any]:
        grid_labels = torch.arange(GRID_SIDE**2) // GRID_SIDE  # one class per row when conditional
        samples = self.sample(self.figure_codes, grid_labels).cpu()
        row_labels = self.meta.class_names[:GRID_SIDE] if self.conditional else None
        figures = {"samples": sample_grid(samples, GRID_SIDE, row_labels)}
        if self.interpolates:
            steps = torch.linspace(0, 1, INTERPOLATION_STEPS)[None, :, None]
            start, end = self.interpolation_ends[:, :1], self.interpolation_ends[:, 1:]
            path = ((1 - steps) * start + steps * end).flatten(0, 1)  # (pairs * steps, latent)
            path_labels = torch.arange(INTERPOLATION_PAIRS).repeat_interleave(INTERPOLATION_STEPS)
            frames = self.sample(path, path_labels).cpu().unflatten(0, (INTERPOLATION_PAIRS, INTERPOLATION_STEPS))
            figures["interpolation"] = interpolation_figure(frames)
        return figures

    def _reconstruction_figure(self, batch: Any, reconstruct: Callable[[Tensor, Tensor], Tensor]) -> Any:
        """Up to four rows of ``batch``'s images, each above its reconstructions ``reconstruct(images, labels)``."""
        ncols = min(GRID_SIDE, len(batch[0]))
        keep = min(4 * GRID_SIDE, len(batch[0])) // ncols * ncols  # whole rows
        images, labels = batch[0][:keep], batch[1][:keep]
        return reconstruction_figure(images, reconstruct(images, labels).cpu(), ncols)

    def _export_common(self) -> dict[str, Any]:
        return {
            "family": "generative",
            "model": self.model_name,
            "backbone": self.section.backbone.model_dump(),
            "channels": self.meta.channels,
            "image_size": self.meta.height,
            "class_names": self.meta.class_names,
            "evaluator_sha256": file_sha256(self.evaluator_file),
        }
