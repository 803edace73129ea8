"""Self-supervised pretraining as the harness drives it: one encoder, one pretext (or, for the
``supervised`` reference, the labels), augmented views of the training digits. Each evaluation
reports the pretext's own val accuracy and a label-light read of the features: the accuracy of a
5-nearest-neighbour vote among the training images' features (``val/knn_accuracy``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from components.config import Params
from components.data.schema import DatasetMeta, read_meta
from components.data.tensors import load_classification_split
from components.families.generative.evaluator import EvaluatorFeatures
from components.families.selfsup import pretext
from components.families.selfsup.augment import augment
from components.families.selfsup.config import AugmentConfig, EncoderConfig, MethodBase
from components.families.selfsup.deepcluster import Clustering, balancing_weights, cluster, nmi
from components.families.selfsup.models import KeyQueue, build_encoder, build_head
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

TRAINING_KEYS = ("epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction", "init_seed")
KNN = 5


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.selfsup.dataset


class SelfSupTask(ModuleTask):
    """One encoder pretrained by ``method`` (a model of ``selfsup.models``)."""

    def __init__(self, method: str, config: MethodBase, encoder: EncoderConfig, augmentation: AugmentConfig,
                 directory: Path, meta: DatasetMeta, seed: int) -> None:
        self.model_name = method
        self.config = config
        self.encoder_config = encoder
        self.augmentation = augmentation
        self.directory = directory
        self.meta = meta
        self.seed = seed + config.init_seed
        self.head_config = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self._datasets: dict[str, Dataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}
        self.generator = torch.Generator().manual_seed(self.seed)  # augmentations (CPU)

    def datasets(self) -> Mapping[str, Dataset]:
        """The digits; DeepCluster's training items are (image, index): its targets are the image's cluster."""
        if self._datasets is None:
            self._datasets = {split: load_classification_split(self.directory, split) for split in ("train", "val")}
            self.train_images, self.train_labels = self._datasets["train"].tensors
            if self.model_name == "deepcluster":
                self._datasets["train"] = TensorDataset(self.train_images, torch.arange(len(self.train_images)))
        return self._datasets

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder = build_encoder(self.encoder_config.model_dump(), self.meta.channels, self.meta.height)
            head = build_head(self.model_name, self.head_config, encoder.num_features, self.meta.num_classes,
                              self.meta.height)
        self.modules = {"encoder": wrap(EvaluatorFeatures(encoder).to(device)), "head": wrap(head.to(device))}
        if self.model_name == "moco":  # the key encoder and head: moving averages, never trained by gradients
            key = nn.Sequential(copy.deepcopy(EvaluatorFeatures(encoder)), copy.deepcopy(head)).to(device)
            self.modules["key"] = key.requires_grad_(False)
            self.modules["queue"] = KeyQueue(self.head_config["queue_size"], self.head_config["projection_dim"],
                                             self.generator).to(device)
        parameters = [*self.modules["encoder"].parameters(), *self.modules["head"].parameters()]
        optimizer, scheduler = adamw_with_schedule(parameters, self.config, steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        if self.model_name == "jigsaw":  # fixed for the run: drawn from the seed, not checkpointed
            self.permutations = pretext.hamming_permutations(self.head_config["grid"] ** 2,
                                                             self.head_config["permutations"],
                                                             torch.Generator().manual_seed(self.seed))
        self.clustering: Clustering | None = None  # DeepCluster's, of the current epoch
        self.optimizers, self.schedulers = {"net": optimizer}, {"net": scheduler}

    def view(self, images: Tensor) -> Tensor:
        return augment(images, self.augmentation, self.generator).to(self.device)

    def features(self, images: Tensor) -> Tensor:
        """The final features, through the (DDP-wrapped) encoder's forward."""
        return self.modules["encoder"](images)

    def pretext_loss(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The method's loss on one batch of training images, and its pretext accuracy."""
        head = self.modules["head"]
        if self.model_name == "rotation":  # all four rotations of each view in one batch
            turned, targets = pretext.rotations(self.view(images))
            logits = head(self.features(turned))
            return F.cross_entropy(logits, targets.to(self.device)), (logits.argmax(1) == targets.to(self.device))
        if self.model_name == "jigsaw":
            view, shuffles = self.view(images), self.head_config["shuffles"]
            grid = self.head_config["grid"]
            targets = pretext.draw_shuffles(len(view), len(self.permutations), shuffles, self.generator)
            view = view.repeat_interleave(shuffles, 0)  # each view under several permutations, as rotation's turns
            tiles = pretext.shuffle_tiles(pretext.to_tiles(view, grid), self.permutations, targets.to(view.device))
            if self.head_config["encode"] == "tiles":  # each tile alone, scaled to the encoder's input size
                inputs = F.interpolate(tiles.flatten(0, 1), scale_factor=grid, mode="nearest")
            else:
                inputs = pretext.from_tiles(tiles)
            logits = head(self.features(inputs).reshape(len(view), -1))
            targets = targets.to(self.device)
            return F.cross_entropy(logits, targets), (logits.argmax(1) == targets)
        if self.model_name == "context":  # the centre patch and a neighbour, each encoded alone
            config = self.head_config
            centres, neighbours, targets = pretext.context_pairs(self.view(images), config["patch"], config["gap"],
                                                                 config["jitter"], self.generator)
            first, second = self.features(torch.cat([centres, neighbours])).chunk(2)
            logits = head(torch.cat([first, second], dim=1))
            targets = targets.to(self.device)
            return F.cross_entropy(logits, targets), (logits.argmax(1) == targets)
        if self.model_name == "inpainting":  # L2 on the hole; "accuracy": hole pixels painted within 0.1
            view = self.view(images)
            holed, masks = pretext.cut_holes(view, self.head_config["hole"], self.generator)
            painted = head(self.features(holed))
            error = (painted - view)[masks]
            return error.pow(2).mean(), error.abs() < 0.1
        if self.model_name == "simclr":
            first, second = self.view(images), self.view(images)
            projections = head(self.features(torch.cat([first, second])))
            a, b = projections.chunk(2)
            loss = pretext.nt_xent(a, b, self.head_config["temperature"])
            return loss, contrastive_hits(a.detach(), b.detach())
        if self.model_name == "moco":
            queries = head(self.features(self.view(images)))
            with torch.no_grad():
                keys = self.modules["key"](self.view(images))
            queue = self.modules["queue"]
            negatives = queue.keys.clone()  # before this batch's keys join it: a key is no negative of itself
            loss = pretext.moco_loss(queries, keys, negatives, self.head_config["temperature"])
            if self.modules["key"].training:  # training: the keys join the queue (evaluation leaves it)
                queue.push(all_gather(keys))
            return loss, moco_hits(queries.detach(), keys, negatives)
        if self.model_name == "deepcluster":  # ``labels`` are the images' indices: their clusters are the targets
            targets = self.pseudo_labels[labels].to(self.device)
            logits = head(self.features(self.view(images)))
            loss = F.cross_entropy(logits, targets, weight=self.cluster_weights.to(self.device))
            return loss, (logits.argmax(1) == targets)
        labels = labels.to(self.device)  # supervised
        logits = head(self.features(self.view(images)))
        return F.cross_entropy(logits, labels), (logits.argmax(1) == labels)

    @torch.no_grad()
    def train_features(self, encoder: nn.Module) -> Tensor:
        """The final features of every (unaugmented) training image."""
        return torch.cat([encoder.embed(self.train_images[i:i + 512].to(self.device))
                          for i in range(0, len(self.train_images), 512)])

    @torch.no_grad()
    def recluster(self) -> None:
        """DeepCluster's clustering (every ``recluster_every`` epochs, and after a resume): k-means on the
        current features of the (unaugmented) training images gives every image a pseudo-label, and the
        classifier restarts from new random weights."""
        encoder = unwrap(self.modules["encoder"]).evaluator
        encoder.eval()
        features = self.train_features(encoder).cpu().numpy()
        encoder.train()
        epoch = self.schedulers["net"].last_epoch // self.steps_per_epoch
        self.clustering = cluster(features, self.head_config["clusters"], self.head_config["pca_dim"],
                                  self.seed + epoch)
        self.pseudo_labels = torch.as_tensor(self.clustering.labels, dtype=torch.long)
        self.cluster_weights = torch.as_tensor(balancing_weights(self.clustering.labels, self.head_config["clusters"]),
                                               dtype=torch.float32)
        head = unwrap(self.modules["head"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + epoch)
            head.reset_parameters()
        for parameter in head.parameters():  # and forgets its Adam moments
            self.optimizers["net"].state.pop(parameter, None)

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        images, labels = batch
        if self.model_name == "deepcluster":
            every = self.head_config["recluster_every"] * self.steps_per_epoch
            if self.clustering is None or self.schedulers["net"].last_epoch % every == 0:
                self.recluster()
        with self.precision.autocast():
            loss, hits = self.pretext_loss(images, labels)
        self.precision.backward_step(loss, self.optimizers["net"])
        self.schedulers["net"].step()
        if self.model_name == "moco":  # after the query encoder's step, as in He et al.'s pseudo-code
            query = nn.Sequential(unwrap(self.modules["encoder"]), unwrap(self.modules["head"]))
            pretext.momentum_update(self.modules["key"], query, self.head_config["momentum"])
        return {"loss": loss.detach(), "pretext_accuracy": hits.float().mean().detach()}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Pretext accuracy on val views (their own seeded draws) and the k-NN read of the features."""
        encoder, head = unwrap(self.modules["encoder"]).evaluator, unwrap(self.modules["head"])
        encoder.eval()
        head.eval()
        if "key" in self.modules:
            self.modules["key"].eval()
        saved, self.generator = self.generator, torch.Generator().manual_seed(self.seed + 1)
        self.datasets()
        bank = self.train_features(encoder)
        sums = torch.zeros(4, dtype=torch.float64)  # pretext hits, pretext count, knn hits, images
        assigned, truth = [], []
        for images, labels in batches:
            features = encoder.embed(images.to(self.device))
            if self.model_name == "deepcluster":  # the pretext: the cluster of the nearest centroid
                if self.clustering is None:
                    self.recluster()
                clusters = torch.as_tensor(self.clustering.assign(features.cpu().numpy()), dtype=torch.long)
                hits = head(features).argmax(1).cpu() == clusters
                assigned.append(clusters)
                truth.append(labels)
            else:
                _, hits = self.pretext_loss(images, labels)
            votes = knn_predict(bank, self.train_labels.to(self.device), features, KNN)
            sums += torch.tensor([float(hits.sum()), hits.numel(), float((votes.cpu() == labels).sum()),
                                  len(labels)], dtype=torch.float64)
        self.generator = saved
        encoder.train()
        head.train()
        if "key" in self.modules:
            self.modules["key"].train()
        if dist.is_available() and dist.is_initialized():
            sums = sums.to(self.device)
            dist.all_reduce(sums)
            sums = sums.cpu()
        out = {"pretext_accuracy": float(sums[0] / sums[1]), "knn_accuracy": float(sums[2] / sums[3])}
        if assigned:  # this rank's val images: how well DeepCluster's clusters match the digits
            out["cluster_nmi"] = nmi(torch.cat(assigned).numpy(), torch.cat(truth).numpy())
        return out

    def figures(self, batch: Any) -> Mapping[str, Any]:
        from components.families.selfsup.figures import views_figure

        images, _ = batch
        images = images[:8]
        return {"views": views_figure(images, augment(images, self.augmentation, torch.Generator().manual_seed(0)))}

    def export(self) -> dict[str, Any]:
        return {
            "family": "selfsup",
            "model": self.model_name,
            "encoder": self.encoder_config.model_dump(),
            "in_channels": self.meta.channels,
            "image_size": self.meta.height,
            "class_names": self.meta.class_names,
            "state_dict": unwrap(self.modules["encoder"]).evaluator.state_dict(),
        }


def contrastive_hits(first: Tensor, second: Tensor) -> Tensor:
    """Per view of the 2N, whether its most similar other view is its positive (SimCLR's top-1)."""
    views = F.normalize(torch.cat([first, second]), dim=1)
    n = len(first)
    similarity = (views @ views.T).fill_diagonal_(float("-inf"))
    return similarity.argmax(1).cpu() == torch.cat([torch.arange(n, 2 * n), torch.arange(n)])


def moco_hits(queries: Tensor, keys: Tensor, queue: Tensor) -> Tensor:
    """Per query, whether its own key is more similar to it than every key of the queue."""
    queries, keys = F.normalize(queries, dim=1), F.normalize(keys, dim=1)
    positive = (queries * keys).sum(1)
    return (positive > (queries @ F.normalize(queue, dim=1).T).max(1).values).cpu()


def all_gather(tensor: Tensor) -> Tensor:
    """``tensor`` from every rank, concatenated (this rank's alone outside a process group): MoCo's queue
    takes every worker's keys."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def knn_predict(bank: Tensor, bank_labels: Tensor, queries: Tensor, k: int) -> Tensor:
    """The majority label of each query's ``k`` nearest bank features by cosine similarity (ties: the
    smaller label)."""
    similarity = F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T
    nearest = bank_labels[similarity.topk(k, dim=1).indices]
    return torch.mode(nearest, dim=1).values


def build_task(model: str, params: Params) -> SelfSupTask:
    directory = data_dir(params)
    section = params.selfsup
    return SelfSupTask(model, getattr(section.models, model), section.encoder, section.augment, directory,
                       read_meta(directory), params.seed)


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """The pretrained encoder from :meth:`SelfSupTask.export` output, in eval mode."""
    encoder = build_encoder(export["encoder"], export["in_channels"], export["image_size"])
    encoder.load_state_dict(export["state_dict"])
    return encoder.eval().requires_grad_(False)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """What MLflow serves (components/model_logging.py): digits (N, C, S, S) in [0, 1] -> the
    encoder's final features (N, D), what the probes read."""
    size = export["image_size"]
    example = torch.rand(2, export["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    return ServedModel(load_exported(export), example)
