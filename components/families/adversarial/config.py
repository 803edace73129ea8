"""``adversarial`` in params.yaml: the dataset, the attacks every model is scored by, the trainer and
one section per classifier."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.schema import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section, TrainerConfig

Epsilon = Annotated[float, Field(gt=0, le=1)]  # an L-infinity budget on images in [0, 1]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class UniversalConfig(Section):
    """The universal perturbation (Moosavi-Dezfooli et al. 2017), built on training images."""

    xi: Epsilon  # its L-infinity bound
    max_passes: PositiveInt  # passes over the training images
    max_images: PositiveInt | None  # a seeded subset of the training images it is built on; None: all
    target_fooling_rate: Annotated[float, Field(gt=0, le=1)]  # stop once the training fooling rate reaches it
    overshoot: NonNegativeFloat  # DeepFool's overshoot of each minimal step
    deepfool_norm: Literal["l2", "linf"]  # the norm of each image's minimal (DeepFool) step
    check_every: PositiveInt  # images between checks of v's training fooling rate (the best v is kept)
    deepfool_max_iter: PositiveInt  # steps of each image's DeepFool (10 in the authors' code)
    random_vectors: PositiveInt  # random sign vectors of norm xi it is compared with (their mean fooling rate)


class AttackConfig(Section):
    """How every model is attacked: each epoch on val (FGSM and PGD over ``epsilons``) and once on test
    (the whole battery); the transfer stage crafts at ``transfer_epsilon``."""

    epsilons: Annotated[list[Epsilon], Field(min_length=1)]  # val/robust_accuracy/<attack>/eps_<e>
    headline_epsilon: Epsilon  # val/robust_accuracy: PGD at this budget (one of epsilons)
    pgd_steps: PositiveInt  # PGD-<steps>, from a random start in the ball
    step_ratio: PositiveFloat  # every iterative attack's step size = step_ratio * epsilon / steps (Madry: 2.5)
    strong_steps: PositiveInt  # the gradient-masking check: PGD-<strong_steps> ...
    strong_restarts: PositiveInt  # ... with this many random restarts
    least_likely_steps: Annotated[int, Field(ge=2)]  # the iterative least-likely-class attack (one step is the other)
    transfer_epsilon: Epsilon  # FGSM crafted on each model, scored on every other (stage adversarial_transfer)
    universal: UniversalConfig

    @model_validator(mode="after")
    def _headline_in_sweep(self) -> AttackConfig:
        if self.headline_epsilon not in self.epsilons:
            raise ValueError(f"headline_epsilon: {self.headline_epsilon} is not one of epsilons {self.epsilons}")
        return self


class AdversarialTraining(Section):
    """Madry et al.'s adversarial training: each batch replaced by its PGD adversarial examples."""

    epsilon: Epsilon
    steps: PositiveInt
    step_ratio: PositiveFloat  # step size = step_ratio * epsilon / steps
    random_start: bool
    ramp_epochs: NonNegativeInt  # epsilon grows linearly from 0 over these first epochs (0: full from the start)


class ClassifierBase(Section):
    epochs: PositiveInt
    lr: PositiveFloat  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat
    lr_schedule: Literal["cosine", "constant"]  # cosine: linear warm-up, then cosine decay to 0
    warmup_fraction: Fraction  # of all steps (cosine schedule only)
    dropout: Fraction
    init_seed: NonNegativeInt  # added to the top-level seed for the initial weights and augmentation draws
    max_shift: NonNegativeInt  # random translations of up to this many pixels (augmentation)
    noise: Annotated[float, Field(ge=0, le=1)]  # random sign noise of L-infinity size ~ U(0, noise) per image
    adversarial_training: AdversarialTraining | None  # None: trained on clean (augmented) images only


class CNNConfig(ClassifierBase):
    """The generative family's digit classifier (its evaluator's architecture): two 3x3 conv-BN-ReLU
    and a 2x2 max-pool per width, a linear layer to ``feature_dim``, dropout, a linear classifier."""

    channels: Annotated[list[PositiveInt], Field(min_length=1)]
    feature_dim: PositiveInt


class MLPConfig(ClassifierBase):
    hidden: Annotated[list[PositiveInt], Field(min_length=1)]  # widths of the ReLU layers


class AdversarialModels(Section):
    cnn: CNNConfig  # undefended: the model every attack is crafted on
    cnn_b: CNNConfig  # the same CNN from another init_seed: transfer between equal architectures
    mlp: MLPConfig  # another architecture: transfer across architectures
    cnn_pgd: CNNConfig  # adversarially trained (adversarial_training set)


class AdversarialConfig(Section):
    dataset: Literal["digits", "mnist"]
    attacks: AttackConfig
    trainer: TrainerConfig
    models: AdversarialModels
