"""dvc.yaml is generated from the family descriptors, and every stage depends on the code it runs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
import yaml

from components.families import FAMILIES
from tools.dvc_yaml import DVC_YAML, descriptor, render
from tools.imports import REPO, closure, closure_files, covered

STAGES = yaml.safe_load(DVC_YAML.read_text())["stages"]


def test_dvc_yaml_is_what_the_descriptors_generate():
    assert DVC_YAML.read_text() == render(), "dvc.yaml is stale: run `python -m tools.dvc_yaml` and commit it"


def test_each_train_matrix_reads_its_familys_pipeline_list():
    for family in FAMILIES.values():
        stage = STAGES[family.stage]
        assert stage["matrix"][family.matrix_key] == f"${{pipeline.{family.name}}}"
        assert [next(iter(out)) for out in STAGES[f"tune_{family.name}"]["outs"]] == [
            f"tuned/{family.name}.yaml", f"metrics/details/tune-{family.name}.json"]


def _dvc_stages(tmp_path, pipeline: dict[str, list[str]]) -> set[str]:
    """The stage names DVC resolves from the real dvc.yaml with params.yaml's ``pipeline`` replaced."""
    tmp_path.mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["pipeline"] = pipeline
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(DVC_YAML.read_text())
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    listed = subprocess.run([*dvc, "stage", "list", "--name-only"], cwd=tmp_path, check=True, capture_output=True,
                            text=True).stdout
    return set(listed.split())


def test_the_pipeline_lists_decide_which_train_stages_exist(tmp_path):
    """Every model listed (what make repro-all sets) gets its stage; the default lists only theirs."""
    from tools.all_models import arguments

    every = {arg.partition("=")[0].removeprefix("pipeline."): arg.partition("=")[2].strip("[]").split(",")
             for arg in arguments() if arg != "-S"}
    assert every == {name: list(family.models) for name, family in FAMILIES.items()}
    stages = _dvc_stages(tmp_path / "all", every)
    assert {family.stage_of(m) for family in FAMILIES.values() for m in family.models} <= stages
    default = yaml.safe_load((REPO / "params.yaml").read_text())["pipeline"]
    stages = _dvc_stages(tmp_path / "default", default)
    trained = {s for s in stages if "@" in s}
    assert trained == {FAMILIES[name].stage_of(m) for name, models in default.items() for m in models}


@pytest.mark.parametrize("name", list(STAGES))
def test_every_metrics_file_has_its_details_file_as_an_out(name):
    """metrics/<x>.json holds numbers only; the details (every number and the provenance) are an out beside it."""
    stage = STAGES[name]
    metrics = [next(iter(m)) for m in stage.get("metrics", [])]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])}
    assert all(path.startswith("metrics/") and path.count("/") == 1 for path in metrics)
    assert {path.replace("metrics/", "metrics/details/", 1) for path in metrics} <= outs


def _entries(cmd: str) -> list[str]:
    """What a stage runs, read from its command (independently of the generator): the module after
    ``python -m`` and, when an argument names a family, that family's training code, which the
    entry imports by name."""
    words = shlex.split(cmd)
    entries = [words[words.index("-m") + 1]]
    entries += [FAMILIES[word].task_module for word in words if word in FAMILIES]
    return entries


# the family each stage belongs to (prepare and report belong to none)
OWNER = {name: family for family in FAMILIES.values()
         for name in (f"tune_{family.name}", family.stage, *(stage.name for stage in family.extra_stages))}


def _descriptors(name: str) -> list[str] | None:
    """The family descriptors a stage's closure follows: its own family's, or all (None)."""
    return [descriptor(OWNER[name])] if name in OWNER else None


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_depends_on_every_module_it_imports(name):
    stage = STAGES[name]
    code = closure_files(_entries(stage["cmd"]), descriptors=_descriptors(name))
    missing = sorted(path for path in code if not covered(path, stage["deps"]))
    assert not missing, f"{name}: modules it imports are not in its deps: {missing}"


def test_editing_one_familys_descriptor_reruns_only_its_stages_prepare_and_report():
    """Another family's descriptor is imported by discovery to validate params.yaml; it is not a dep
    (tools/imports.py), so editing detection's config reruns no segmentation or rl stage."""
    for path in ("components/families/detection/config.py", "components/families/detection/family.py"):
        assert {name for name, stage in STAGES.items() if covered(path, stage["deps"])} == {
            "prepare", "tune_detection", "train_detection", "report"}
    # a descriptor's own family depends on it; the shared code every stage imports stays a dep of all
    assert all(covered("components/families/base.py", stage["deps"]) for stage in STAGES.values())


def test_the_metrics_a_family_ranks_by_take_their_direction_from_its_own_descriptor():
    """What else makes leaving the other descriptors out of a family's deps safe: the direction of the
    metrics its stages rank, sweep and plot by (components/metrics/direction.py, the union over every
    descriptor) comes from the family's own descriptor or the shared names, never from another's."""
    from components.metrics.direction import _SHARED_HIGHER, _SHARED_LOWER

    for family in FAMILIES.values():
        own = family.higher_is_better | family.lower_is_better | _SHARED_HIGHER | _SHARED_LOWER
        others = set().union(*(other.higher_is_better | other.lower_is_better
                               for other in FAMILIES.values() if other is not family))
        keys = (family.headline, *(stage.headline for stage in family.extra_stages),
                *(curve.y for curve in family.curves))
        borrowed = {key for key in keys if key.rpartition("/")[2] in others - own}
        assert not borrowed, f"{family.name} ranks by metrics another family declares: {sorted(borrowed)}"


# One interpreter imports the heavy third-party libraries every stage shares (no project module), then
# forks a child per family that imports the family's stage entry and training code and reports the
# project modules it loaded: what a fresh interpreter would load (the third-party modules already
# there change no project import), without paying torch's and Ray's imports once per family.
_LOADED_PER_FAMILY = """\
import importlib, json, os, sys
import matplotlib.pyplot, pyarrow.parquet, ray.train, torch, torchvision
assert not any(m.split(".")[0] in ("components", "pipelines") for m in sys.modules)
loaded = {}
for family, entries in json.loads(sys.argv[1]).items():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        for name in entries:
            importlib.import_module(name)
        with os.fdopen(write, "w") as out:
            json.dump(sorted(m for m in sys.modules if m.split(".")[0] in ("components", "pipelines")), out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        loaded[family] = json.loads(answer.read() or "null")
    assert os.waitpid(pid, 0)[1] == 0, family
print(json.dumps(loaded))
"""


def _entries_of(family: str) -> list[str]:
    return [FAMILIES[family].entry, FAMILIES[family].task_module]


@pytest.fixture(scope="module")
def loaded_per_family() -> dict[str, list[str]]:
    entries = {family: _entries_of(family) for family in FAMILIES}
    proc = subprocess.run([sys.executable, "-c", _LOADED_PER_FAMILY, json.dumps(entries)], cwd=REPO, check=True,
                          capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_static_closure_holds_every_module_python_actually_imports(family, loaded_per_family):
    """Cross-check of the AST walk: import the family's stage entry and training code in a fresh
    interpreter (a fork of one that imported only third-party libraries); every project module it
    loaded must be in the static closure."""
    loaded = set(loaded_per_family[family])
    assert "pipelines.train" in loaded or "pipelines.rl" in loaded  # the child really imported the entry
    every_descriptor = closure(_entries_of(family))
    assert loaded - every_descriptor == set()
    # what the family's stages leave out of their deps is what discovery imported besides the family's
    # own descriptor: modules of the registry's closure, in every other family's package, none in its own
    own = closure(_entries_of(family), descriptors=[descriptor(FAMILIES[family])])
    left_out = loaded - own
    assert left_out <= closure(["components.families"])
    packages = {descriptor(f).rpartition(".")[0] for f in FAMILIES.values()}
    own_package = descriptor(FAMILIES[family]).rpartition(".")[0]
    reached = {p for p in packages if any(m == p or m.startswith(p + ".") for m in left_out)}
    assert reached == packages - {own_package}


def test_a_missing_dependency_is_caught(tmp_path):
    """The check above can fail: a stage without one of its modules is reported."""
    stage = STAGES["train_segmentation"]
    deps = [dep for dep in stage["deps"] if dep != "components/io.py"]
    missing = [p for p in closure_files(_entries(stage["cmd"]), descriptors=_descriptors("train_segmentation"))
               if not covered(p, deps)]
    assert missing == ["components/io.py"]
