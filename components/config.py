"""Typed schema of ``params.yaml``: the single source of every knob.

Every section is a pydantic model with ``extra="forbid"``, so an unknown key, a wrong type or an
out-of-range value is an error that names the key path and what is allowed::

    error: params.yaml: segmentation.models.unet.lr: must be > 0 (got -0.1)
    error: params.yaml: segmentation.models.unet.lrr: unknown key; allowed: base_channels, batch_size, ...

Defaults live in ``params.yaml``, not here: every field is required, so the file stays the one
place a reader looks (a shrunk copy for tests is still a complete file).

The sections come from where they belong: ``runtime`` and the trainer from ``components.schema``,
``data`` from ``components.data.config``, each family's section and sweep from its descriptor
(``components.families``). :data:`Params` assembles them, one field per family.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, create_model, model_validator

from components.data.config import DataConfig
from components.errors import UserError
from components.families import FAMILIES
from components.schema import (
    KEYED_ERROR,
    NonNegativeInt,
    RuntimeConfig,
    Section,
    TrainerConfig,
    first_error,
    integer_field,
    sampled_values,
)

PARAMS_FILE = "params.yaml"

# tune.<family>: one sweep section per family
TuneSection = create_model(
    "TuneSection", __base__=Section, **{name: (family.sweep_config, ...) for name, family in FAMILIES.items()},
)


class _WithTrainerDefaults(Section):
    """The top-level ``trainer`` holds the harness's defaults; a family's ``trainer`` section holds
    only what it changes. Before validation each family's section becomes the defaults with its
    keys on top, so every stage reads one complete trainer and an unknown key still names its place."""

    @model_validator(mode="before")
    @classmethod
    def _merge_trainer_defaults(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("trainer"), dict):
            return raw
        merged = dict(raw)
        for name, family in FAMILIES.items():
            section = raw.get(name)
            if "trainer" in family.config.model_fields and isinstance(section, dict):
                own = section.get("trainer") or {}
                if isinstance(own, dict):
                    merged[name] = {**section, "trainer": {**raw["trainer"], **own}}
        return merged


# pipeline.<family>: the models (RL: algorithms) `dvc repro` trains, in order; dvc.yaml's train matrices
# read these lists, so `dvc exp run -S 'pipeline.<family>=[...]'` adds or drops stages
PipelineSection = create_model(
    "PipelineSection", __base__=Section, **{name: (list[str], ...) for name in FAMILIES},
)

# The whole file: seed, runtime, data, the trainer's defaults, the pipeline's models, one section per
# family (in the course's order), tune.
Params = create_model(
    "Params", __base__=_WithTrainerDefaults, seed=(NonNegativeInt, ...), runtime=(RuntimeConfig, ...),
    data=(DataConfig, ...), trainer=(TrainerConfig, ...), pipeline=(PipelineSection, ...),
    **{name: (family.config, ...) for name, family in FAMILIES.items()}, tune=(TuneSection, ...),
)


def model_trainer(params: Params, family: str, model: str) -> TrainerConfig:
    """The family's trainer knobs for one model: a model section's own ``batch_size`` (when set)
    overrides the trainer's."""
    trainer = getattr(params, family).trainer
    batch_size = getattr(FAMILIES[family].model_config(params, model), "batch_size", None)
    return trainer.model_copy(update={"batch_size": batch_size}) if batch_size else trainer


def _check_sweep(params: Params, family: str) -> None:
    """Cross-section checks of ``tune.<family>``: the family's own (the model exists, the trial
    trainer validates), then every search key is a field of what it overrides (the model's or
    algorithm's section, or the trainer) and every value its distribution can produce validates
    there. Raises ``ValueError("<full key>: <message>")``."""
    descriptor = FAMILIES[family]
    descriptor.check_sweep_section(params)
    excluded, why = descriptor.not_searched, descriptor.not_searched_reason()
    for key, dist in descriptor.sweep(params).search_space.items():
        where = f"tune.{family}.search_space.{key}"
        section, current, field, label = descriptor.search_target(params, key)
        if field in excluded:
            raise ValueError(f"{where}: {field} is not searched; {why}")
        if field not in section.model_fields:
            allowed = [name for name in section.model_fields if name not in excluded]
            raise ValueError(f"{where}: unknown key (not a field of {label}); allowed: {', '.join(allowed)}"
                             f"{descriptor.unknown_key_hint(key)}")
        if integer_field(section, field) and dist.distribution in ("loguniform", "uniform"):
            raise ValueError(f"{where}.distribution: {label}.{field} is an integer; use randint, choice, "
                             f"quniform or qloguniform (got {dist.distribution!r})")
        if dist.distribution == "choice":
            candidates = [("values", v) for v in dist.values]
        else:
            top = dist.high - 1 if dist.distribution == "randint" else dist.high
            candidates = [("low", dist.low), ("high", top)]
        for name, value in candidates:
            value = sampled_values(section, {field: value})[field]  # quniform bounds like 12.0 -> 12
            try:
                section.model_validate({**current, field: value})
            except ValidationError as err:
                raise ValueError(
                    f"{where}.{name}: {value!r} is not a valid {label}.{field}: {first_error(err)}"
                ) from None


_MODEL_INPUT = re.compile(r"models/(?P<family>[a-z_]+)/(?P<model>[^/]+)$")
_TEMPLATE = re.compile(r"\$\{([^}]+)\}")


def _resolve(path: str, params: Params) -> str:
    """A dvc.yaml path with its ``${a.b}`` params filled in (``models/segmentation/${image_translation.scorer}``)."""
    def value(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            node = getattr(node, part)
        return str(node)

    return _TEMPLATE.sub(value, path)


def _check_pipeline(params: Params) -> None:
    """``pipeline.<family>``: known models, each once, at least one; every trained model a stage reads
    (its deps ``models/<family>/<model>``) is in its family's list.
    Raises ``ValueError("<full key>: <message>")``."""
    for name, family in FAMILIES.items():
        listed, key = getattr(params.pipeline, name), f"pipeline.{name}"
        unknown = [m for m in listed if m not in family.models]
        if unknown:
            raise ValueError(f"{key}: unknown {name} model {unknown[0]!r}; known: {', '.join(family.models)}")
        if not listed:
            raise ValueError(f"{key}: empty; list at least one of {', '.join(family.models)}")
        twice = [m for m in listed if listed.count(m) > 1]
        if twice:
            raise ValueError(f"{key}: {twice[0]!r} is listed twice")
    for family in FAMILIES.values():
        readers = [(family.stage, path) for path in family.inputs]
        readers += [(stage.name, path) for stage in family.extra_stages for path in stage.inputs]
        for stage, path in readers:
            match = _MODEL_INPUT.match(_resolve(path, params))
            if not match or match["family"] not in FAMILIES:
                continue
            owner, model = match["family"], match["model"]
            if model not in getattr(params.pipeline, owner):
                raise ValueError(f"pipeline.{owner}: {model} must be listed: stage {stage} reads {match.group(0)}")


def check_families(params: Params, source: str = PARAMS_FILE) -> None:
    """``pipeline`` against the families, then each family's checks of its section against the rest of
    the file (``Family.check``); UserError."""
    try:
        _check_pipeline(params)
    except ValueError as err:
        raise UserError(f"{source}: {err}") from None
    for family in FAMILIES.values():
        if family.check is not None:
            try:
                family.check(params)
            except ValueError as err:
                raise UserError(f"{source}: {err}") from None


def check_sweeps(params: Params, source: str = PARAMS_FILE) -> None:
    """The checks of ``tune.*`` that need the rest of the file (see :func:`_check_sweep`); UserError."""
    for family in FAMILIES:
        try:
            _check_sweep(params, family)
        except ValueError as err:
            raise UserError(f"{source}: {err}") from None


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section that ``loc`` (path to the offending key) lives in."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def format_validation_error(err: ValidationError, source: str = PARAMS_FILE) -> str:
    """One line for the first error: the key path and what is allowed."""
    first = err.errors()[0]
    loc, kind, msg = first["loc"], first["type"], first["msg"]
    got = first.get("input")
    if kind == KEYED_ERROR:  # a section's check about one of its keys (see components.schema.keyed_error)
        ctx = first["ctx"]
        loc, msg, got = (*loc, *ctx["key"].split(".")), ctx["message"], ctx["got"]
    key = _key_path(loc) or "(top level)"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Params, loc)
        return f"{source}: {key}: unknown key; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{source}: {key}: missing required key"
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    if isinstance(got, dict | list):  # a wrong type says which; a section's own check names its values
        shown = f" (got a {'mapping' if isinstance(got, dict) else 'list'})" if kind.endswith("_type") else ""
        return f"{source}: {key}: {msg}{shown}{more}"
    return f"{source}: {key}: {msg} (got {got!r}{_yaml_number_hint(got)}){more}"


def _yaml_number_hint(got: Any) -> str:
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string: its floats need a dot and a signed exponent."""
    match = isinstance(got, str) and re.fullmatch(r"([-+]?\d+)(?:\.(\d*))?[eE]([-+]?)(\d+)", got.strip())
    if not match:
        return ""
    whole, fraction, sign, exponent = match.groups()
    return f"; YAML reads {got} as a string: write {whole}.{fraction or '0'}e{sign or '+'}{exponent}"


def parse_params(raw: dict[str, Any], source: str = PARAMS_FILE) -> Params:
    """Validate a loaded params mapping; a violation is a :class:`UserError` naming the key."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(format_validation_error(err, source)) from None
    check_families(params, source)
    check_sweeps(params, source)
    return params


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file not found: {path.resolve()} (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_params(raw, str(path))


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the form params are logged to MLflow in."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def params_hash(data: Any) -> str:
    """A short, stable hash of a params subtree (canonical JSON), used in run names and tags."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
