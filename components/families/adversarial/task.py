"""Adversarial examples as the harness drives them: a digit classifier trained on clean (or, for
``adversarial_training``, PGD) images, scored each epoch by its accuracy under FGSM and PGD over
``adversarial.attacks.epsilons``, and once on the test split by the whole battery (``evaluate_test``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from components.config import Params
from components.data.schema import DatasetMeta, read_meta
from components.data.tensors import load_classification_split
from components.families.adversarial import attacks
from components.families.adversarial.config import AttackConfig, ClassifierBase
from components.families.adversarial.figures import examples_figure, robustness_figure, universal_figure
from components.families.adversarial.models import build_classifier
from components.families.generative.evaluator import random_shift
from components.model_logging import ServedModel
from components.runtime import resolve
from components.train.schedules import adamw_with_schedule
from components.train.task import ModuleTask, Wrap, unwrap

# Keys of a model's section that configure training rather than the network.
TRAINING_KEYS = ("epochs", "lr", "weight_decay", "lr_schedule", "warmup_fraction", "init_seed", "max_shift", "noise",
                 "adversarial_training")


def eps_key(epsilon: float) -> str:
    """``eps_0.2``: the metric-name suffix of a budget."""
    return f"eps_{epsilon:g}"


def attack_suite(config: AttackConfig, generator: torch.Generator | None) -> dict[str, attacks.Attack]:
    """Per name (``fgsm/eps_<e>``, ``pgd/eps_<e>``), the attacks every epoch's evaluation runs."""
    suite: dict[str, attacks.Attack] = {}
    for eps in config.epsilons:
        suite[f"fgsm/{eps_key(eps)}"] = lambda m, x, y, eps=eps: attacks.fgsm(m, x, y, eps)
        suite[f"pgd/{eps_key(eps)}"] = lambda m, x, y, eps=eps: attacks.pgd(
            m, x, y, eps, config.pgd_steps, config.step_ratio * eps / config.pgd_steps, generator=generator)
    return suite


def augment(images: Tensor, max_shift: int, noise: float, generator: torch.Generator) -> Tensor:
    """Random translations of up to ``max_shift`` px and random sign noise of L-infinity size
    ~ U(0, ``noise``) per image (clipped to [0, 1]); draws from ``generator`` (on the CPU)."""
    images = random_shift(images, max_shift, generator)
    if noise:
        size = torch.rand(len(images), 1, 1, 1, generator=generator) * noise
        signs = torch.randint(0, 2, images.shape, generator=generator) * 2.0 - 1.0
        images = torch.clamp(images + size * signs, 0.0, 1.0)
    return images


class _EvalMode:
    """The network in eval mode (BatchNorm's running statistics, no dropout) for a with-block."""

    def __init__(self, net: nn.Module) -> None:
        self.net, self.was_training = net, net.training

    def __enter__(self) -> nn.Module:
        self.net.eval()
        return self.net

    def __exit__(self, *exc: object) -> None:
        self.net.train(self.was_training)


class AdversarialTask(ModuleTask):
    """One classifier of the adversarial family (``cnn``, ``cnn_b``, ``mlp``, ``cnn_pgd``)."""

    def __init__(self, model: str, config: ClassifierBase, attack_config: AttackConfig, directory: Path,
                 meta: DatasetMeta, seed: int) -> None:
        self.model_name = model
        self.config = config
        self.attack_config = attack_config
        self.directory = directory
        self.meta = meta
        self.seed = seed + config.init_seed  # this model's init and draws: cnn_b differs from cnn only here
        self.arch = {k: v for k, v in config.model_dump().items() if k not in TRAINING_KEYS}
        self._datasets: dict[str, Dataset] | None = None
        self.modules, self.optimizers, self.schedulers = {}, {}, {}
        self.generator = torch.Generator().manual_seed(self.seed)  # augmentation and PGD starts (CPU)

    def datasets(self) -> Mapping[str, Dataset]:
        if self._datasets is None:
            self._datasets = {split: load_classification_split(self.directory, split) for split in ("train", "val")}
        return self._datasets

    def setup(self, device: torch.device, wrap: Wrap, steps_per_epoch: int) -> None:
        self.device = device
        self.steps_per_epoch = steps_per_epoch
        with torch.random.fork_rng(devices=[]):  # this model's own initial weights; the harness's stream untouched
            torch.manual_seed(self.seed)
            net = build_classifier(self.arch, self.meta.channels, self.meta.num_classes, self.meta.height)
        self.modules = {"net": wrap(net.to(device))}
        optimizer, scheduler = adamw_with_schedule(self.modules["net"].parameters(), self.config, steps_per_epoch)
        self.optimizers, self.schedulers = {"net": optimizer}, {"net": scheduler}

    @property
    def net(self) -> nn.Module:
        """The network without its DDP wrapper: attacks differentiate it with respect to its input only."""
        return unwrap(self.modules["net"])

    def training_epsilon(self) -> float:
        """Adversarial training's budget at the current step (linear ramp over ``ramp_epochs``)."""
        training = self.config.adversarial_training
        if training is None:
            return 0.0
        ramp_steps = training.ramp_epochs * self.steps_per_epoch
        step = self.schedulers["net"].last_epoch
        return training.epsilon * min(1.0, (step + 1) / ramp_steps) if ramp_steps else training.epsilon

    def train_step(self, batch: Any) -> Mapping[str, Tensor]:
        images, labels = batch
        images = augment(images, self.config.max_shift, self.config.noise, self.generator).to(self.device)
        labels = labels.to(self.device)
        metrics: dict[str, Tensor] = {}
        training = self.config.adversarial_training
        if training is not None:  # Madry et al.: train on the PGD examples of the current network
            eps = self.training_epsilon()
            step = training.step_ratio * eps / training.steps
            with _EvalMode(self.net) as net:
                images = attacks.pgd(net, images, labels, eps, training.steps, step,
                                     random_init=training.random_start, generator=self.generator)
            metrics["train_epsilon"] = torch.tensor(eps)
        with self.precision.autocast():
            logits = self.modules["net"](images)
            loss = F.cross_entropy(logits, labels)
        self.precision.backward_step(loss, self.optimizers["net"])
        self.schedulers["net"].step()
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == labels).float().mean().detach(), **metrics}

    def evaluate(self, batches: Iterable[Any]) -> Mapping[str, float]:
        """Clean accuracy and loss, and accuracy under each attack of :func:`attack_suite`; summed over
        ranks. ``robust_accuracy`` is PGD's at ``headline_epsilon``."""
        suite = attack_suite(self.attack_config, torch.Generator().manual_seed(self.seed))
        names = ["accuracy", "loss", *suite]
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        with _EvalMode(self.net) as net:
            for images, labels in batches:
                images, labels = images.to(self.device), labels.to(self.device)
                with torch.no_grad():
                    logits = net(images)
                row = [float((logits.argmax(1) == labels).sum()),
                       float(F.cross_entropy(logits, labels, reduction="sum"))]
                row += [attacks.attacked_accuracy(net, images, labels, attack) * len(labels)
                        for attack in suite.values()]
                sums += torch.tensor([*row, len(labels)], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            sums = sums.to(self.device)
            dist.all_reduce(sums)
            sums = sums.cpu()
        values = (sums[:-1] / sums[-1]).tolist()
        out = {name if name in ("accuracy", "loss") else f"robust_accuracy/{name}": value
               for name, value in zip(names, values, strict=True)}
        out["robust_accuracy"] = out[f"robust_accuracy/pgd/{eps_key(self.attack_config.headline_epsilon)}"]
        return out

    def figures(self, batch: Any) -> Mapping[str, Any]:
        images, labels = batch
        images, labels = images[:8].to(self.device), labels[:8].to(self.device)
        eps = self.attack_config.headline_epsilon
        with _EvalMode(self.net) as net:
            adversarial = attacks.fgsm(net, images, labels, eps)
            with torch.no_grad():
                clean_pred, adv_pred = net(images).argmax(1), net(adversarial).argmax(1)
        return {"fgsm_examples": examples_figure(images.cpu(), adversarial.cpu(), labels.cpu(), clean_pred.cpu(),
                                                 adv_pred.cpu(), f"FGSM, epsilon {eps:g}")}

    def export(self) -> dict[str, Any]:
        return {
            "family": "adversarial",
            "model": self.model_name,
            "arch": self.arch,
            "in_channels": self.meta.channels,
            "image_size": self.meta.height,
            "class_names": self.meta.class_names,
            "state_dict": self.net.state_dict(),
        }


def data_dir(params: Params) -> Path:
    return resolve(params.data.root) / params.adversarial.dataset


def build_task(model: str, params: Params) -> AdversarialTask:
    directory = data_dir(params)
    section = params.adversarial
    return AdversarialTask(model, getattr(section.models, model), section.attacks, directory, read_meta(directory),
                           params.seed)


def run_params(model: str, params: Params) -> dict[str, Any]:
    """What a run reads besides its model section and trainer: the attacks it is scored by."""
    return {"attacks": params.adversarial.attacks.model_dump()}


def load_exported(export: Mapping[str, Any]) -> nn.Module:
    """The trained classifier from :meth:`AdversarialTask.export` output (``model.pt``), in eval mode."""
    net = build_classifier(export["arch"], export["in_channels"], len(export["class_names"]), export["image_size"])
    net.load_state_dict(export["state_dict"])
    return net.eval().requires_grad_(False)


def serving_model(export: Mapping[str, Any]) -> ServedModel:
    """What MLflow serves (components/model_logging.py): digits (N, C, S, S) in [0, 1] -> class logits (N, 10)."""
    size = export["image_size"]
    example = torch.rand(2, export["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    return ServedModel(load_exported(export), example)


# --- the test split's battery ---------------------------------------------------------------------


def evaluate_test(export: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """Every attack of the course on the test split, and the figures; ``series`` are the curves over
    epsilon that MLflow draws (step = epsilon x 1000)."""
    config = params.adversarial.attacks
    net = load_exported(export)
    directory = data_dir(params)
    images, labels = load_classification_split(directory, "test").tensors
    seed = params.seed + export_seed(export, params)
    generator = torch.Generator().manual_seed(seed)
    accuracy = attacks.attacked_accuracy
    metrics: dict[str, float] = {"test/accuracy": accuracy(net, images, labels, None)}
    curves: dict[str, list[tuple[int, float]]] = {"fgsm": [], "pgd": [], "random_sign": []}
    for eps in config.epsilons:
        step = config.step_ratio * eps / config.pgd_steps
        for name, attack in (
            ("fgsm", lambda m, x, y, eps=eps: attacks.fgsm(m, x, y, eps)),
            ("pgd", lambda m, x, y, eps=eps, step=step: attacks.pgd(m, x, y, eps, config.pgd_steps, step,
                                                                     generator=generator)),
            ("random_sign", lambda m, x, y, eps=eps: attacks.random_sign(x, eps, generator)),
        ):
            value = accuracy(net, images, labels, attack)
            metrics[f"test/robust_accuracy/{name}/{eps_key(eps)}"] = value
            curves[name].append((round(eps * 1000), value))
    eps = config.headline_epsilon
    metrics["test/robust_accuracy"] = metrics[f"test/robust_accuracy/pgd/{eps_key(eps)}"]
    metrics["test/random_sign_accuracy"] = metrics[f"test/robust_accuracy/random_sign/{eps_key(eps)}"]
    strong = config.step_ratio * eps / config.strong_steps
    metrics["test/robust_accuracy_strong"] = accuracy(net, images, labels, lambda m, x, y: attacks.pgd(
        m, x, y, eps, config.strong_steps, strong, restarts=config.strong_restarts, generator=generator))

    for name, steps in (("one_step", 1), ("iterative", config.least_likely_steps)):
        adversarial, targets = attacks.least_likely(net, images, eps, steps, config.step_ratio * eps / steps)
        with torch.no_grad():
            metrics[f"test/least_likely_success/{name}"] = float((net(adversarial).argmax(1) == targets).float().mean())

    universal = config.universal
    train_images = load_classification_split(directory, "train").tensors[0]
    if universal.max_images is not None and universal.max_images < len(train_images):
        train_images = train_images[torch.randperm(len(train_images), generator=generator)[:universal.max_images]]
    result = attacks.universal_perturbation(
        net, train_images, len(export["class_names"]), universal.xi, universal.max_passes,
        universal.target_fooling_rate, universal.overshoot, generator, universal.deepfool_norm,
        universal.check_every, universal.deepfool_max_iter)
    clean = attacks.predictions(net, images)
    metrics["test/universal_fooling_rate"] = attacks.fooling_rate(net, images, result.perturbation, clean)
    random_rates = [attacks.fooling_rate(net, images, attacks.sign_vector(result.perturbation, universal.xi, generator),
                                         clean) for _ in range(universal.random_vectors)]
    metrics["test/universal_random_fooling_rate"] = sum(random_rates) / len(random_rates)
    metrics["train/universal_fooling_rate"] = result.train_fooling_rate

    sample = slice(0, 8)
    adversarial = attacks.fgsm(net, images[sample], labels[sample], eps)
    with torch.no_grad():
        clean_pred, adv_pred = net(images[sample]).argmax(1), net(adversarial).argmax(1)
        universal_pred = net(torch.clamp(images[sample] + result.perturbation, 0, 1)).argmax(1)
    figures = {
        "test_robustness": robustness_figure(curves, metrics["test/accuracy"], export["model"]),
        "test_fgsm_examples": examples_figure(images[sample], adversarial, labels[sample], clean_pred, adv_pred,
                                              f"FGSM, epsilon {eps:g} (test)"),
        "test_universal": universal_figure(result.perturbation, images[sample], clean_pred, universal_pred,
                                           universal.xi, metrics["test/universal_fooling_rate"]),
    }
    series = {f"test/accuracy_vs_eps_x1000/{name}": points for name, points in curves.items()}
    return {"metrics": metrics, "figures": figures, "series": series}


def export_seed(export: Mapping[str, Any], params: Params) -> int:
    """The model's ``init_seed`` (its attacks' random starts differ between models as their inits do)."""
    return getattr(params.adversarial.models, export["model"]).init_seed
