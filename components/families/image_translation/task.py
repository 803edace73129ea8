"""Image-to-image translation as the harness drives it: label maps -> scenes (VOC: -> photos).

- pix2pix (``pix2pix``, ``pix2pix_l1``, ``pix2pix_cgan``: the paper's ablation rows): a U-Net G
  trained on pairs to minimise ``gan_weight`` x cGAN + ``l1_weight`` x L1, a conditional PatchGAN D
  that sees the label map beside the real or generated scene (the non-saturating loss, D's halved).
- CycleGAN (``cyclegan``): G (labels -> scenes) and F (scenes -> labels), least-squares PatchGANs
  D_scenes and D_labels, cycle losses ||F(G(a)) - a||_1 and ||G(F(b)) - b||_1, identity losses
  ||G(b) - b||_1 and ||F(a) - a||_1; trained on label maps and scenes of disjoint halves of the
  training set (:func:`~components.families.image_translation.data.unpaired`).

Every evaluation translates the val label maps and scores the scenes (scoring.py): the FCN-score
(``fcn_pixel_accuracy``, ``fcn_class_accuracy``, ``fcn_miou``), ``fid_scenes`` (on the scenes) and
``l1`` against the hidden real image, with reference points logged beside them: the real images
(``*_real``: the FCN-score's ceiling), the untrained generator (``*_untrained``) and real-vs-real
FID (``fid_scenes_floor``: as many train scenes as val scenes). L1 is measured on the papers' [-1, 1]
scale (twice the [0, 1] difference), so lambda = 100 weighs as in the paper.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.figure
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from components.analysis import model_digest
from components.config import Params, model_trainer
from components.data.schema import DatasetMeta, read_meta
from components.errors import UserError
from components.families.image_translation.config import ImageTranslationConfig, TranslationBase
from components.families.image_translation.data import load_pairs, palette, render_labels, to_rgb, unpaired
from components.families.image_translation.figures import translation_figure
from components.families.image_translation.networks import ImagePool, PatchDiscriminator, UNetGenerator, init_weights
from components.families.image_translation.scoring import (
    SCENE_FEATURES,
    fcn_score,
    fid_of,
    load_scene_features,
    load_scorer,
    real_fid,
    scorer_folder,
)
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.ranks import rank_world, sum_over_ranks
from components.train.schedules import constant, hold_then_linear
from components.train.task import ModuleTask, Wrap, unwrap

FIGURE_ROWS = 6


def _all_sum(*values: float, device: torch.device) -> list[float]:
    return sum_over_ranks(torch.tensor(values, dtype=torch.float64, device=device)).tolist()


def l1_distance(fake: Tensor, real: Tensor) -> Tensor:
    """Mean absolute difference on the [-1, 1] scale pix2pix's lambda is set for."""
    return 2 * (fake - real).abs().mean()


@dataclass(frozen=True)
class CycleTerms:
    fake_scenes: Tensor  # G(a)
    fake_labels: Tensor  # F(b)
    cycle: Tensor  # ||F(G(a)) - a||_1 + ||G(F(b)) - b||_1 (means over pixels)
    identity: Tensor  # ||G(b) - b||_1 + ||F(a) - a||_1


def cycle_terms(g: Callable[[Tensor], Tensor], f: Callable[[Tensor], Tensor], labels: Tensor, scenes: Tensor
                ) -> CycleTerms:
    """CycleGAN's translations and its L1 terms for label maps a and scenes b, with g: labels -> scenes
    and f: scenes -> labels (image batches in [0, 1] to image batches). Each network runs on one
    concatenated batch where the inputs are known up front (G twice: G(a), G(b), then G(F(b)))."""
    fake_scenes, same_scenes = g(torch.cat([labels, scenes])).chunk(2)
    fake_labels, same_labels, cycled_labels = f(torch.cat([scenes, labels, fake_scenes])).chunk(3)
    cycled_scenes = g(fake_labels)
    return CycleTerms(
        fake_scenes=fake_scenes, fake_labels=fake_labels,
        cycle=(cycled_labels - labels).abs().mean() + (cycled_scenes - scenes).abs().mean(),
        identity=(same_scenes - scenes).abs().mean() + (same_labels - labels).abs().mean(),
    )


class TranslationTask(ModuleTask):
    """One generator (and its adversaries) translating colour label maps into scenes."""

    def __init__(self, model: str, config: TranslationBase, section: ImageTranslationConfig, directory: Path,
                 meta: DatasetMeta, root: Path, seed: int) -> None:
        if meta.task != "dense":
            raise UserError(f"image_translation.dataset: {meta.name} has no semantic masks (task {meta.task!r})")
        self.model_name, self.config, self.section = model, config, section
        self.directory, self.meta, self.root, self.seed = directory, meta, root, seed
        self.colours = palette(section.dataset)
        self.with_fid = section.dataset == "scenes"  # the scene classifier's features fit the scenes only
        self.cycle = model == "cyclegan"
        self._datasets: dict[str, Dataset] | None = None
        self._references: dict[str, float] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}

    # --- data and set-up ---------------------------------------------------------------------

    def datasets(self) -> Mapping[str, Dataset]:
        """``train``: pairs (pix2pix) or unpaired halves (CycleGAN); ``val``: pairs, for scoring."""
        if self._datasets is None:
            pairs = self.load("train")
            self._train_scenes = pairs.tensors[1]  # every train scene, for the real-vs-real FID floor
            self._datasets = {"train": unpaired(pairs) if self.cycle else pairs, "val": self.load("val")}
        return self._datasets

    def load(self, split: str) -> Dataset:
        """A split's (masks, images) pairs at the side they are translated at."""
        return load_pairs(self.directory, split, self.section.image_size)

    def render(self, masks: Tensor) -> Tensor:
        """Label maps in the dataset's colours: the generator's input."""
        return render_labels(masks, self.colours)

    def inputs(self) -> list[Path]:
        scorer = [self.directory, self.root / scorer_folder(self.section.scorer)]
        return scorer + [self.root / SCENE_FEATURES] if self.with_fid else scorer

    def build_generator(self) -> UNetGenerator:
        g = self.section.generator
        return UNetGenerator(3, 3, g.channels, g.depth, g.dropout)

    def _discriminator(self, in_channels: int) -> PatchDiscriminator:
        d = self.section.discriminator
        return PatchDiscriminator(in_channels, d.channels, d.layers)

    def _networks(self) -> dict[str, nn.Module]:
        """The networks by name: ``generator`` (labels -> scenes) and, when trained, its adversaries."""
        nets: dict[str, nn.Module] = {"generator": self.build_generator()}
        if self.cycle:
            nets.update(generator_back=self.build_generator(), discriminator=self._discriminator(3),
                        discriminator_back=self._discriminator(3))
        elif self.config.gan_weight > 0:
            nets["discriminator"] = self._discriminator(6)  # (label map, scene): a conditional D
        for net in nets.values():
            init_weights(net)
        return nets

    def prepare_scoring(self, device: torch.device) -> None:
        """The frozen scorer and FID feature network on ``device`` (they must exist before training)."""
        self.device = device
        self.rank, self.world = rank_world()
        section = self.section
        self.scorer = load_scorer(self.root, section.scorer, section.dataset, self.meta.class_names).to(device)
        self.features = load_scene_features(self.root).to(device) if self.with_fid else None

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.prepare_scoring(device)
        nets = self._networks()
        self._untrained = copy.deepcopy(nets["generator"]).to(device).eval()
        self.modules = {name: wrap(net.to(device)) for name, net in nets.items()}
        betas = tuple(self.config.betas)
        groups = {"generator": [n for n in self.modules if n.startswith("generator")],
                  "discriminator": [n for n in self.modules if n.startswith("discriminator")]}
        total = self.config.epochs * steps_per_epoch
        for name, members in groups.items():
            if not members:
                continue
            params = itertools.chain.from_iterable(self.modules[m].parameters() for m in members)
            self.optimizers[name] = torch.optim.Adam(params, lr=self.config.lr, betas=betas)
            factor = hold_then_linear(total) if self.config.lr_schedule == "linear_decay" else constant()
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[name], factor)
        self.pools = {}
        if self.cycle:
            self.pools = {name: ImagePool(self.config.pool_size, self.seed + i)
                          for i, name in enumerate(("discriminator", "discriminator_back"))}

    # --- training ----------------------------------------------------------------------------

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        masks, scenes = batch
        labels, real = self.render(masks.to(self.device)), to_rgb(scenes.to(self.device))
        return self._cycle_step(labels, real) if self.cycle else self._pix2pix_step(labels, real)

    def _pix2pix_step(self, labels: Tensor, real: Tensor) -> dict[str, Tensor]:
        """D on (labels, real) vs (labels, G(labels)), then G on gan_weight x cGAN + l1_weight x L1."""
        out: dict[str, Tensor] = {}
        with self.precision.autocast():
            fake = torch.sigmoid(self.modules["generator"](labels))
        discriminator = self.modules.get("discriminator")
        if discriminator is not None:
            with self.precision.autocast():  # one forward for both halves (instance norm: per sample)
                scores = discriminator(torch.cat([torch.cat([labels, real], 1), torch.cat([labels, fake.detach()], 1)]))
                real_scores, fake_scores = scores.float().chunk(2)
                loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores))
                                + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores)))
            self.precision.backward_step(loss_d, self.optimizers["discriminator"])
            self.schedulers["discriminator"].step()
            out["loss_d"] = loss_d.detach()
        with self.precision.autocast():
            l1 = l1_distance(fake.float(), real)
            loss = self.config.l1_weight * l1
            if discriminator is not None:
                scores = discriminator(torch.cat([labels, fake], 1)).float()
                gan = F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))
                loss = loss + self.config.gan_weight * gan
                out["loss_gan"] = gan.detach()
        self.precision.backward_step(loss, self.optimizers["generator"])
        self.schedulers["generator"].step()
        return {"loss": loss.detach(), "loss_l1": l1.detach(), **out}

    def _cycle_step(self, labels: Tensor, real: Tensor) -> dict[str, Tensor]:
        """G and F on adversarial (least squares) + cycle + identity losses, then both Ds on the real
        images and pooled fakes, as the CycleGAN reference implementation orders them."""
        d_scenes, d_labels = self.modules["discriminator"], self.modules["discriminator_back"]
        with self.precision.autocast():
            terms = cycle_terms(lambda x: torch.sigmoid(self.modules["generator"](x)).float(),
                                lambda x: torch.sigmoid(self.modules["generator_back"](x)).float(), labels, real)
            adversarial = sum(((d(fake).float() - 1) ** 2).mean()
                              for d, fake in ((d_scenes, terms.fake_scenes), (d_labels, terms.fake_labels)))
            loss = (adversarial + self.config.cycle_weight * terms.cycle
                    + self.config.cycle_weight * self.config.identity_weight * terms.identity)
        self.precision.backward_step(loss, self.optimizers["generator"])
        self.schedulers["generator"].step()
        with self.precision.autocast():
            loss_d = 0.0
            for name, real_images, fakes in (("discriminator", real, terms.fake_scenes),
                                             ("discriminator_back", labels, terms.fake_labels)):
                scores = self.modules[name](torch.cat([real_images, self.pools[name].query(fakes)])).float()
                real_scores, fake_scores = scores.chunk(2)
                loss_d = loss_d + 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())
        self.precision.backward_step(loss_d, self.optimizers["discriminator"])
        self.schedulers["discriminator"].step()
        return {"loss": loss.detach(), "loss_d": loss_d.detach(), "loss_cycle": terms.cycle.detach(),
                "loss_identity": terms.identity.detach(), "loss_gan": adversarial.detach()}

    # --- evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def translate(self, masks: Tensor, net: nn.Module | None = None) -> Tensor:
        """Scenes (N, 3, S, S) in [0, 1] that ``net`` (default: the trained G, in eval mode) makes of label maps."""
        net = unwrap(self.modules["generator"]) if net is None else net
        was_training = net.training
        net.eval()
        try:
            return torch.sigmoid(net(self.render(masks.to(self.device))))
        finally:
            net.train(was_training)

    def _floor_scenes(self, count: int) -> Tensor:
        """This rank's share of ``count`` train scenes (a fixed random subset): the real-vs-real FID."""
        self.datasets()
        scenes = self._train_scenes
        chosen = torch.randperm(len(scenes), generator=torch.Generator().manual_seed(self.seed))[:count]
        return to_rgb(scenes[chosen[self.rank :: self.world]]).to(self.device)

    def _scores(self, masks: list[Tensor], scenes: list[Tensor], real: list[Tensor]) -> dict[str, float]:
        out = {f"fcn_{key}": value for key, value in fcn_score(
            self.scorer, zip(scenes, masks, strict=True), self.meta.num_classes, self.meta.ignore_index).items()}
        if self.with_fid:
            out["fid_scenes"] = fid_of(self._fid, scenes)
        total, count = _all_sum(sum(float((s - r).abs().sum()) for s, r in zip(scenes, real, strict=True)),
                                sum(s.numel() for s in scenes), device=self.device)
        out["l1"] = 2 * total / count
        return out

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        pairs = [(masks.to(self.device), to_rgb(scenes.to(self.device))) for masks, scenes in batches]
        masks, real = [m for m, _ in pairs], [r for _, r in pairs]
        if self._references is None:  # the real statistics and reference points: once per run (and resume)
            if self.with_fid:
                self._fid = real_fid(self.features, real)
            refs = {f"{k}_real": v for k, v in self._scores(masks, real, real).items() if k.startswith("fcn_")}
            untrained = self._scores(masks, [self.translate(m, self._untrained) for m in masks], real)
            refs.update({f"{k}_untrained": v for k, v in untrained.items()})
            if self.with_fid:
                count = int(_all_sum(sum(len(m) for m in masks), device=self.device)[0])
                refs["fid_scenes_floor"] = fid_of(self._fid, [self._floor_scenes(count)])
            self._references = refs
        out = self._scores(masks, [self.translate(m) for m in masks], real)
        out.update(self._references)
        return out

    # --- figures and export ------------------------------------------------------------------

    def figures(self, batch: Any) -> Mapping[str, matplotlib.figure.Figure]:
        masks, scenes = batch[0][:FIGURE_ROWS], batch[1][:FIGURE_ROWS]
        labels = self.render(masks)
        figures = {"translations": translation_figure(
            [labels, self.translate(masks).cpu(), to_rgb(scenes)], ["label map", "generated", "real image"])}
        if self.cycle:
            back = unwrap(self.modules["generator_back"])
            was_training = back.training
            back.eval()
            with torch.no_grad():
                recovered = torch.sigmoid(back(to_rgb(scenes).to(self.device))).cpu()
            back.train(was_training)
            figures["scenes_to_labels"] = translation_figure(
                [to_rgb(scenes), recovered, labels], ["scene", "F(scene)", "label map"])
        return figures

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["pools"] = {name: pool.state_dict() for name, pool in self.pools.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name], self.device)

    def export(self) -> dict[str, Any]:
        return {
            "family": "image_translation",
            "model": self.model_name,
            "generator": self.section.generator.model_dump(),
            "class_names": self.meta.class_names,
            "dataset": self.section.dataset,  # the label maps' colours (data.palette)
            "image_size": self.section.image_size or self.meta.height,
            "state_dict": unwrap(self.modules["generator"]).state_dict(),
        }


def build_task(model: str, params: Params) -> TranslationTask:
    section = params.image_translation
    directory = resolve(params.data.root) / section.dataset
    return TranslationTask(model, getattr(section.models, model), section, directory, read_meta(directory),
                           resolve("."), params.seed)


def run_params(model: str, params: Params) -> dict[str, Any]:
    """What a run reads besides its model section and trainer: the networks' shapes, the scorer and
    the digests of the two networks it is scored by (retraining either starts a fresh run)."""
    section, root = params.image_translation, resolve(".")
    needed = {scorer_folder(section.scorer): f"train_segmentation@{section.scorer}"}
    if section.dataset == "scenes":
        needed[SCENE_FEATURES] = "train_visualization@scene_cnn"
    for folder, stage in needed.items():
        if not (root / folder / "model.pt").is_file():
            raise UserError(f"{root / folder / 'model.pt'} not found: image_translation is scored by it "
                            f"(dvc repro {stage})")
    return {"image_size": section.image_size, "generator": section.generator.model_dump(),
            "discriminator": section.discriminator.model_dump(), "scorer": section.scorer,
            "scored_by": model_digest(root, tuple(needed))}


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """The trained generator (colour label maps (N, 3, S, S) -> scene logits), in eval mode."""
    g = export["generator"]
    net = UNetGenerator(3, 3, g["channels"], g["depth"], g["dropout"])
    net.load_state_dict(export["state_dict"])
    return net.eval()


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """The trained generator's scores on the test split's label maps (as val's: ``test/fcn_miou``...)."""
    task = build_task(export["model"], params)
    task.prepare_scoring(torch.device("cpu"))
    task.modules = {"generator": load_exported(export)}
    torch.manual_seed(params.seed)  # the untrained reference: the generator as the stage built it (after seeding)
    task._untrained = task._networks()["generator"].eval()
    trainer = model_trainer(params, "image_translation", export["model"])
    loader = DataLoader(task.load("test"), batch_size=trainer.eval_batch_size)
    return {"metrics": {f"test/{k}": v for k, v in task.evaluate(loader).items()}}


class Translator(nn.Module):
    """What MLflow serves: colour label maps (N, 3, S, S) in [0, 1] (data.palette) -> images in [0, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, labels: Tensor) -> Tensor:
        return torch.sigmoid(self.net(labels))


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    side = export["image_size"]
    masks = torch.randint(0, len(export["class_names"]), (2, side, side), generator=torch.Generator().manual_seed(0))
    return ServedModel(Translator(load_exported(export)).eval(),
                       render_labels(masks, palette(export.get("dataset", "scenes"))))
