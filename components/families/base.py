"""The family descriptor: everything the pipeline knows about one family, in one typed place.

Each family package has a light ``family.py`` (it imports the family's params schema and nothing
heavy) that defines ``FAMILIES``, a tuple of descriptors. ``components.families`` discovers them;
the params schema (``components.config``), metric directions, the tune stage, the report, the
generated dvc.yaml (``tools/dvc_yaml.py``) and the tests' tiny params all read them. The code
that trains (torch, the networks) sits in the descriptor's ``task_module`` and is imported only
by a stage that trains.

Two kinds of family exist:

- :class:`Family`: trained by the Ray Train harness, one stage ``train_<family>@<model>``
  (``python -m pipelines.train <family> <model>``), swept by ``tune_<family>`` over one model's
  section and the trainer, trials compared after equal epochs;
- :class:`RLFamily`: reinforcement learning, one stage ``rl@<algo>`` (``python -m pipelines.rl``),
  the models are ``rl.algos``; its sweep's trials are RLlib algorithms compared after equal env steps.

Both answer the same questions (see the methods), so no caller asks which kind it holds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from components.config import Params
    from components.schema import TrainerConfig

TRAINER_PREFIX = "trainer."  # a search key or tuned value for <family>.trainer.<key>


@dataclass(frozen=True)
class Curve:
    """One learning-curve panel: a column of ``plots/<family>-<model>.csv`` against the family's
    x (epochs or env steps), drawn by the report and by ``dvc plots show`` (dvc.yaml's ``plots``)."""

    y: str
    title: str
    log_y: bool = False


@dataclass(frozen=True)
class Stage:
    """A stage a family owns besides ``tune_<family>`` and its train stage (generative's
    ``evaluator``): dvc.yaml's entry for it and, when it writes a metrics file, its rows in the report."""

    name: str
    entry: str  # the stage runs python -m <entry>
    params: tuple[str, ...]  # params.yaml keys it reads
    inputs: tuple[str, ...]  # data it reads (DVC deps besides its code)
    outs: tuple[str, ...]
    metrics: tuple[str, ...]  # metrics files (cache: false)
    report_params: tuple[str, ...]  # the params the report reads for its rows (the report stage's params)
    title: str  # report heading of its rows
    headline: str  # the metric its rows are ranked by
    references: tuple[tuple[str, str | float], ...] = ()
    rows: Callable[[Params], dict[str, dict[str, Any]]] | None = None  # {row: the params it ran with}
    columns: tuple[str, ...] = ()  # metrics the report shows beside the headline (when a row has them)
    # the numbers of metrics/<name>-<row>.json besides the headline and its references (None: the
    # columns and the report's shared ones; components/metrics_files.py)
    summary: tuple[str, ...] | None = None
    # True: the rows follow the pipeline's lists (one per listed model, say), so their files share a
    # folder, metrics/<name>/<row>.json, which is the DVC output (``metrics`` is then empty)
    row_folder: bool = False


@dataclass(frozen=True)
class Family:
    """A family trained by the Ray Train harness."""

    name: str  # the params.yaml section, the stage suffix, the metrics/plots/figures prefix
    order: int  # where the course meets it: the report's and the schema's order
    title: str  # report heading
    experiment: str  # MLflow experiment
    config: type[BaseModel]  # the schema of params.yaml's <name> section
    sweep_config: type[BaseModel]  # the schema of tune.<name>
    task_module: str  # build_task(model, params); optional evaluate_test, run_params, load_exported
    headline: str  # the metric the report ranks models by (the summary's headline_metric)
    higher_is_better: frozenset[str] = frozenset()  # metric names (after "<split>/") with a direction
    lower_is_better: frozenset[str] = frozenset()
    references: tuple[tuple[str, str | float], ...] = ()  # (label, metrics-file key or constant) of the headline
    stage_params: tuple[str, ...] = ()  # keys of the <name> section every stage reads besides dataset/trainer/models
    inputs: tuple[str, ...] = ()  # files or folders the stages read besides data/<dataset> (DVC deps)
    shrink: Callable[[dict, dict], None] | None = None  # tests: shrink <name> and tune.<name> (raw dicts) to seconds
    curves: tuple[Curve, ...] = ()  # learning-curve panels; the first is the train stage's DVC plot
    uncurved: tuple[str, ...] = ()  # models whose CSV has no rows (nothing to plot)
    extra_stages: tuple[Stage, ...] = field(default=())  # other stages the family owns
    # cross-section checks of params (the section against the rest, e.g. a network against its dataset's
    # image size), run whenever params are validated; raises ValueError("<full key>: <message>")
    check: Callable[[Params], None] | None = None
    columns: tuple[str, ...] = ()  # metrics the report shows beside the headline (when a model has them)
    # the numbers of metrics/<name>-<model>.json besides the headline and its references (None: the
    # columns and the report's shared ones; components/metrics_files.py)
    summary: tuple[str, ...] | None = None

    models_key: ClassVar[str] = "models"  # <name>.<models_key>: one section per model
    sweep_model_key: ClassVar[str] = "model"  # tune.<name>.<sweep_model_key>: the model it searches
    matrix_key: ClassVar[str] = "model"  # the stage's matrix variable
    entry: ClassVar[str] = "pipelines.train"  # the stage's module
    curve_x: ClassVar[str] = "epoch"
    sweep_unit: ClassVar[str] = "epochs"  # what trials are compared after

    # --- names -------------------------------------------------------------------------------

    @property
    def stage(self) -> str:
        """The DVC stage (a matrix over the models): ``train_<name>``."""
        return f"train_{self.name}"

    @property
    def command(self) -> str:
        return f"python -m {self.entry} {self.name} ${{item.{self.matrix_key}}}"

    def stage_of(self, model: str) -> str:
        return f"{self.stage}@{model}"

    @property
    def models(self) -> tuple[str, ...]:
        """The models params.yaml must configure (the fields of ``<name>.<models_key>``)."""
        return tuple(self.config.model_fields[self.models_key].annotation.model_fields)

    def listed(self, params: Params) -> tuple[str, ...]:
        """The models ``dvc repro`` trains (``pipeline.<name>``; dvc.yaml's matrix reads the same list)."""
        return tuple(getattr(params.pipeline, self.name))

    @property
    def panels(self) -> tuple[Curve, ...]:
        return self.curves or (Curve(self.headline, self.headline),)

    # --- params ------------------------------------------------------------------------------

    def section(self, params: Params) -> BaseModel:
        return getattr(params, self.name)

    def model_config(self, params: Params, model: str) -> BaseModel:
        return getattr(getattr(self.section(params), self.models_key), model)

    def model_sections(self, params: Params) -> dict[str, dict[str, Any]]:
        """``{model: its params}`` as params.yaml gives them."""
        return getattr(self.section(params), self.models_key).model_dump()

    def sweep(self, params: Params) -> BaseModel:
        return getattr(params.tune, self.name)

    def with_values(self, params: Params, model: str, values: Mapping[str, Any], source: str) -> Params:
        """``params`` with ``values`` applied to the model's section (plain keys) and the trainer
        (``trainer.<key>``), validated by the same schema as params.yaml; a violation is a
        UserError naming ``source`` and the key. Only this process sees the result: a stage
        trains one model, so a trainer override reaches that model alone."""
        section = self.section(params)
        model_cfg = self.model_config(params, model)
        model_values = {k: v for k, v in values.items() if not k.startswith(TRAINER_PREFIX)}
        trainer_values = {k.removeprefix(TRAINER_PREFIX): v for k, v in values.items() if k.startswith(TRAINER_PREFIX)}
        model_cfg = _revalidate(model_cfg, model_values, f"{source}: {model}")
        trainer = _revalidate(section.trainer, trainer_values, f"{source}: {model}.trainer")
        models = getattr(section, self.models_key).model_copy(update={model: model_cfg})
        return params.model_copy(update={self.name: section.model_copy(
            update={self.models_key: models, "trainer": trainer})})

    # --- sweeps --------------------------------------------------------------------------------

    not_searched: ClassVar[tuple[str, ...]] = ("epochs",)

    def not_searched_reason(self) -> str:
        return f"each trial trains tune.{self.name}.trial_epochs epochs"

    def trial_trainer(self, params: Params) -> TrainerConfig:
        """The trainer as the sweep's trials use it (``tune.<name>.trial_trainer`` applied)."""
        return self.section(params).trainer.model_copy(update=dict(self.sweep(params).trial_trainer))

    def search_target(self, params: Params, key: str) -> tuple[type[BaseModel], dict[str, Any], str, str]:
        """What a search key overrides: (section class, its current values, field, label)."""
        sweep = self.sweep(params)
        if key.startswith(TRAINER_PREFIX):
            from components.schema import TrainerConfig

            trainer = {**self.section(params).trainer.model_dump(), **sweep.trial_trainer}
            return TrainerConfig, trainer, key.removeprefix(TRAINER_PREFIX), f"{self.name}.trainer"
        cfg = self.model_config(params, sweep.model)
        return type(cfg), cfg.model_dump(), key, f"{self.name}.{self.models_key}.{sweep.model}"

    def unknown_key_hint(self, key: str) -> str:
        return "" if key.startswith(TRAINER_PREFIX) else " or trainer.<key>"

    def check_sweep_section(self, params: Params) -> None:
        """The sweep's own cross-section checks (before its search keys are checked): the model
        exists and ``trial_trainer`` validates as a trainer. Raises ``ValueError("<key>: ...")``."""
        from components.schema import TrainerConfig, first_error

        sweep, prefix = self.sweep(params), f"tune.{self.name}"
        if sweep.model not in self.models:
            raise ValueError(f"{prefix}.model: unknown {self.name} model {sweep.model!r}; "
                             f"known: {', '.join(self.models)}")
        try:
            TrainerConfig.model_validate({**self.section(params).trainer.model_dump(), **sweep.trial_trainer})
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            unknown = first["type"] == "extra_forbidden"
            msg = (f"unknown key; allowed: {', '.join(TrainerConfig.model_fields)}" if unknown
                   else f"{first_error(err)} (got {first.get('input')!r})")
            raise ValueError(f"{prefix}.trial_trainer.{key}: {msg}") from None

    def default_point(self, params: Params) -> dict[str, Any]:
        """The current values of every search key: the first trial runs them, so "tuned beats
        default" is measured within the sweep."""
        sweep = self.sweep(params)
        model_cfg, trainer = self.model_config(params, sweep.model), self.trial_trainer(params)
        return {key: getattr(trainer, key.removeprefix(TRAINER_PREFIX)) if key.startswith(TRAINER_PREFIX)
                else getattr(model_cfg, key) for key in sweep.search_space}

    def sweep_length(self, params: Params) -> tuple[str, int]:
        """(the trials' length key in the sweep's MLflow params, its value)."""
        sweep = self.sweep(params)
        return "trial_epochs", sweep.trial_epochs or self.train_length(params)

    def train_length(self, params: Params) -> int | None:
        """How long the train stage trains the swept model (its epochs): the length at which tuned
        values must beat the default to be applied (pipelines/tune.py)."""
        sweep = self.sweep(params)
        return self.model_config(params, sweep.model).epochs

    # --- code ----------------------------------------------------------------------------------

    def task(self) -> ModuleType:
        """The module that trains the family (imported on first use: torch and the networks)."""
        return importlib.import_module(self.task_module)

    def build_task(self, model: str, params: Params):
        return self.task().build_task(model, params)


@dataclass(frozen=True)
class RLFamily(Family):
    """Reinforcement learning: ``rl@<algo>`` stages over ``rl.algos``; RLlib trials in sweeps."""

    models_key: ClassVar[str] = "algos"
    sweep_model_key: ClassVar[str] = "algo"
    matrix_key: ClassVar[str] = "algo"
    entry: ClassVar[str] = "pipelines.rl"
    curve_x: ClassVar[str] = "env_steps"
    sweep_unit: ClassVar[str] = "env steps"
    # rl.algos.<algo> keys a sweep may not search: the environment and the stop/evaluation rules
    not_searched: ClassVar[tuple[str, ...]] = ("env", "max_env_steps", "return_threshold", "stop_at_threshold",
                                               "eval_episodes", "checkpoint_every")

    @property
    def stage(self) -> str:
        return self.name

    @property
    def command(self) -> str:
        return f"python -m {self.entry} ${{item.{self.matrix_key}}}"

    def with_values(self, params: Params, model: str, values: Mapping[str, Any], source: str) -> Params:
        section = self.section(params)
        cfg = _revalidate(self.model_config(params, model), values, f"{source}: {model}")
        algos = getattr(section, self.models_key).model_copy(update={model: cfg})
        return params.model_copy(update={self.name: section.model_copy(update={self.models_key: algos})})

    def not_searched_reason(self) -> str:
        return f"each trial runs tune.{self.name}.trial_env_steps on the algorithm's env"

    def search_target(self, params: Params, key: str) -> tuple[type[BaseModel], dict[str, Any], str, str]:
        algo = self.sweep(params).algo
        cfg = self.model_config(params, algo)
        return type(cfg), cfg.model_dump(), key, f"{self.name}.{self.models_key}.{algo}"

    def unknown_key_hint(self, key: str) -> str:
        return ""

    def check_sweep_section(self, params: Params) -> None:
        pass  # tune.rl.algo is a Literal of the sweepable algorithms; it has no trial_trainer

    def default_point(self, params: Params) -> dict[str, Any]:
        sweep = self.sweep(params)
        cfg = self.model_config(params, sweep.algo)
        return {key: getattr(cfg, key) for key in sweep.search_space}

    def sweep_length(self, params: Params) -> tuple[str, int]:
        return "trial_env_steps", self.sweep(params).trial_env_steps

    def train_length(self, params: Params) -> int | None:
        """None: an rl stage stops at its return threshold, so a sweep is judged at its trials' length."""
        return None

    def build_task(self, model: str, params: Params):
        raise TypeError(f"{self.name} trains through {self.entry}, not the Ray Train harness")


def _revalidate(section: BaseModel, values: Mapping[str, Any], where: str) -> BaseModel:
    """``section`` with ``values`` applied and validated; a violation is one UserError line."""
    from components.errors import UserError
    from components.schema import sampled_values

    if not values:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **sampled_values(type(section), values)})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise UserError(f"{where}.{key}: unknown key") from None
        raise UserError(f"{where}.{key}: {first['msg']} (got {first.get('input')!r})") from None
