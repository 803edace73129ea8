"""Issue 21, hostile inputs: every bad input is one clear line and a non-zero exit, and loses nothing.

Here: source folders the prepare stage would delete (a corpus kept under ``data/``), unreadable
prepared data (truncated or corrupted Parquet, a broken or missing ``meta.json``, a missing split)
and params whose YAML types are wrong (``epochs: "3"``, ``lr: 1e-3``, ``use_gpu: "no"``). Each case
checks the exit code, the one line, and that the files present before are still there, byte for byte.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import load_params, parse_params
from components.errors import UserError
from components.families import FAMILIES
from components.io import atomic_directory
from tests.conftest import REPO, run_env, tiny_params_dict

# A Multi30k-style corpus the loader accepts (so without the check prepare would run to the end)
CORPUS = {"train.en": "".join(f"A dog runs {i} times.\n" for i in range(40)),
          "train.de": "".join(f"Ein Hund rennt {i} Mal.\n" for i in range(40)),
          "test.en": "A cat sleeps.\nTwo men talk.\n", "test.de": "Eine Katze schläft.\nZwei Männer reden.\n"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (symlinks followed) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _one_line(capsys, excinfo) -> str:
    """The entry exited 2 with one ``error:`` line on stderr."""
    assert excinfo.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def _prepare(capsys) -> str:
    from pipelines import prepare

    with pytest.raises(SystemExit) as excinfo:
        prepare.main([])
    return _one_line(capsys, excinfo)


@pytest.fixture
def prepared_digits(workdir) -> dict[str, bytes]:
    """An earlier prepared dataset under data/ (a stand-in: prepare must not get as far as touching it)."""
    digits = workdir / "data" / "digits"
    digits.mkdir(parents=True)
    (digits / "meta.json").write_text('{"name": "digits"}\n')
    (digits / "train.parquet").write_bytes(b"PAR1 earlier output PAR1")
    return _snapshot(workdir / "data")


def _corpus(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (folder / name).write_text(text)
    return _snapshot(folder)


# --- probe 1: a source folder under data/ is refused before anything is touched -------------------------


def test_parallel_corpus_inside_data_is_refused_by_the_real_entry(workdir, tiny_params, prepared_digits):
    corpus = _corpus(workdir / "data" / "parallel")
    tiny_params["data"]["parallel"]["root"] = "data/parallel"
    _write_params(workdir, tiny_params)
    proc = subprocess.run([sys.executable, "-m", "pipelines.prepare"], capture_output=True, text=True, cwd=workdir,
                          env=run_env(workdir), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: params.yaml: data.parallel.root: {workdir / 'data' / 'parallel'} lies inside data.root "
        f"({workdir / 'data'}), which DVC empties before `dvc repro prepare` and the prepare stage rewrites: "
        f"move it outside data/ and point data.parallel.root there (got 'data/parallel')"
    ]
    assert _snapshot(workdir / "data" / "parallel") == corpus
    assert _snapshot(workdir / "data") == {**prepared_digits, **{f"parallel/{k}": v for k, v in corpus.items()}}


def test_source_equal_to_data_root_is_refused(workdir, tiny_params, capsys):
    corpus = _corpus(workdir / "data")
    tiny_params["data"]["parallel"]["root"] = "data"
    _write_params(workdir, tiny_params)
    line = _prepare(capsys)
    assert f"data.parallel.root: {workdir / 'data'} is data.root" in line and "point data.parallel.root there" in line
    assert _snapshot(workdir / "data") == corpus


def test_data_root_inside_a_source_folder_is_refused(workdir, tiny_params, capsys):
    corpus = _corpus(workdir / "multi30k")
    tiny_params["data"]["root"] = "multi30k/prepared"
    tiny_params["data"]["parallel"]["root"] = "multi30k"
    _write_params(workdir, tiny_params)
    line = _prepare(capsys)
    assert line.startswith(f"error: params.yaml: data.parallel.root: {workdir / 'multi30k'} holds data.root "
                           f"({workdir / 'multi30k' / 'prepared'})")
    assert "point data.root outside it" in line
    assert _snapshot(workdir / "multi30k") == corpus


def test_symlink_into_data_is_refused(workdir, tiny_params, capsys, prepared_digits):
    corpus = _corpus(workdir / "data" / "parallel")
    (workdir / "corpus").symlink_to(workdir / "data" / "parallel")
    tiny_params["data"]["parallel"]["root"] = "corpus"
    _write_params(workdir, tiny_params)
    line = _prepare(capsys)
    assert (f"data.parallel.root: {workdir / 'data' / 'parallel'} (through a symlink) lies inside data.root"
            in line) and line.endswith("(got 'corpus')")
    assert _snapshot(workdir / "corpus") == corpus
    assert _snapshot(workdir / "data") == {**prepared_digits, **{f"parallel/{k}": v for k, v in corpus.items()}}


def test_data_root_that_is_a_symlink_holding_the_source_is_refused(workdir, tiny_params, capsys):
    store = workdir / "store"
    corpus = _corpus(store / "multi30k")
    (workdir / "data").symlink_to(store)  # data/ is the store: prepare would write data/parallel beside the corpus
    tiny_params["data"]["parallel"]["root"] = str(store / "multi30k")
    _write_params(workdir, tiny_params)
    line = _prepare(capsys)
    assert f"data.parallel.root: {store / 'multi30k'} lies inside data.root ({store})" in line
    assert _snapshot(store / "multi30k") == corpus


@pytest.mark.parametrize("dataset", ["coco", "voc", "voc_detection", "mnist"])
def test_real_dataset_root_inside_data_is_refused(workdir, tiny_params, capsys, dataset):
    source = workdir / "data" / dataset
    (source / "annotations").mkdir(parents=True)
    (source / "annotations" / "instances_train2017.json").write_text('{"images": []}\n')
    before = _snapshot(workdir / "data")
    tiny_params["data"][dataset]["root"] = str(source)  # absolute paths are checked alike
    _write_params(workdir, tiny_params)
    line = _prepare(capsys)
    assert line.startswith(f"error: params.yaml: data.{dataset}.root: {source} lies inside data.root")
    assert f"point data.{dataset}.root there" in line
    assert _snapshot(workdir / "data") == before


def test_every_stage_refuses_a_source_under_data(workdir, tiny_params):
    """The check is part of params validation, so train, tune and report refuse alike."""
    tiny_params["data"]["coco"]["root"] = "data/coco"
    with pytest.raises(UserError, match=r"^params.yaml: data.coco.root: .* lies inside data.root"):
        parse_params(tiny_params)
    tiny_params["data"]["coco"]["root"] = "../coco"  # outside data/: fine
    assert parse_params(tiny_params).data.coco.root == "../coco"


def test_atomic_directory_refuses_to_replace_a_kept_folder(tmp_path):
    corpus = _corpus(tmp_path / "data" / "parallel")
    for target in (tmp_path / "data", tmp_path / "data" / "parallel", tmp_path / "data" / "parallel" / "x"):
        with pytest.raises(UserError, match=r"^refusing to replace .*which must be kept"), \
                atomic_directory(target, keep=[tmp_path / "data" / "parallel"]):
            pytest.fail("the body must not run")
    assert _snapshot(tmp_path / "data") == {f"parallel/{k}": v for k, v in corpus.items()}
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["parallel"]  # no temporary folder left
    with atomic_directory(tmp_path / "data" / "digits", keep=[tmp_path / "data" / "parallel"]) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert (tmp_path / "data" / "digits" / "meta.json").is_file()


# --- probe 7a: unreadable prepared data names the file and the fix ------------------------------------


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory) -> Path:
    """data/scenes as the prepare stage writes it, from the tiny params (built once)."""
    from components.data.scenes import build_scenes

    params = tiny_params_dict()
    out = tmp_path_factory.mktemp("prepared") / "scenes"
    build_scenes(out, seed=params["seed"], val_fraction=params["data"]["digits"]["val_fraction"],
                 test_fraction=params["data"]["digits"]["test_fraction"], **params["data"]["scenes"])
    return out


@pytest.fixture
def scenes(workdir, tiny_scenes) -> Path:
    target = workdir / "data" / "scenes"
    shutil.copytree(tiny_scenes, target)
    return target


def _train(capsys) -> str:
    from pipelines import train

    with pytest.raises(SystemExit) as excinfo:
        train.main(["segmentation", "unet"])
    return _one_line(capsys, excinfo)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not parquet\n" * 50)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "corrupted":  # the footer is intact; a compressed page is not
        damaged = bytearray(data)
        damaged[200:4000] = bytes(3800)
        path.write_bytes(bytes(damaged))


@pytest.mark.parametrize(("how", "reason"), [
    ("truncated", "Parquet magic bytes not found in footer"),
    ("garbage", "Parquet magic bytes not found in footer"),
    ("empty", "Parquet file size is 0 bytes"),
    ("corrupted", "ZSTD decompression failed: "),  # then "Unknown frame descriptor" or "Data corruption detected"
])
def test_unreadable_split_names_the_file_and_the_fix(scenes, capsys, how, reason):
    split = scenes / "train.parquet"
    _damage(split, how)
    before = _snapshot(scenes)
    line = _train(capsys)
    assert line.startswith(f"error: {split}: not a readable Parquet file ({reason}")
    assert line.endswith("); run the prepare stage: dvc repro prepare, or python -m pipelines.prepare")
    assert _snapshot(scenes) == before
    assert not (scenes.parents[1] / "models").exists() and not (scenes.parents[1] / "metrics").exists()


def test_missing_split_names_the_file(scenes, capsys):
    (scenes / "val.parquet").unlink()
    before = _snapshot(scenes)
    line = _train(capsys)
    assert line == (f"error: dataset split not found: {scenes / 'val.parquet'} (run the prepare stage: "
                    f"dvc repro prepare, or python -m pipelines.prepare)")
    assert _snapshot(scenes) == before


def test_missing_meta_names_the_file(scenes, capsys):
    (scenes / "meta.json").unlink()
    line = _train(capsys)
    assert line.startswith(f"error: dataset metadata not found: {scenes / 'meta.json'} (")
    assert "python -m pipelines.prepare" in line


@pytest.mark.parametrize(("text", "reason"), [
    ('{"name": "scenes", "task": ', "Expecting value: line 1 column 28 (char 27)"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"name": "scenes", "colour": 1}', "DatasetMeta.__init__() got an unexpected keyword argument 'colour'"),
])
def test_broken_meta_names_the_file(scenes, capsys, text, reason):
    (scenes / "meta.json").write_text(text)
    line = _train(capsys)
    assert line == (f"error: {scenes / 'meta.json'}: not a valid dataset metadata file ({reason}); "
                    f"run the prepare stage: dvc repro prepare, or python -m pipelines.prepare")


# --- probe 7b: params.yaml's types are strict --------------------------------------------------------


def _with(params: dict, key: str, value) -> dict:
    section = params
    *parents, last = key.split(".")
    for part in parents:
        section = section[part]
    section[last] = value
    return params


@pytest.mark.parametrize(("key", "value", "line"), [
    ("segmentation.models.fcn.epochs", "3", "input should be a valid integer (got '3')"),
    ("segmentation.models.fcn.epochs", 2.0, "input should be a valid integer (got 2.0)"),
    ("segmentation.models.fcn.lr", "1e-3",
     "input should be a valid number (got '1e-3'; YAML reads 1e-3 as a string: write 1.0e-3)"),
    ("segmentation.trainer.use_gpu", "no", "input should be a valid boolean (got 'no')"),
    ("segmentation.models.fcn.lr", [0.001, 0.002], "input should be a valid number (got a list)"),
    ("segmentation.models.fcn.epochs", {"value": 3}, "input should be a valid integer (got a mapping)"),
    ("seed", -1, "input should be greater than or equal to 0 (got -1)"),
    ("seed", True, "input should be a valid integer (got True)"),
    ("data.digits.val_fraction", "0.15", "input should be a valid number (got '0.15')"),
    ("data.voc.year", 2012, "input should be a valid string (got 2012)"),
    ("segmentation.models.dilated.downsample", "4", "input should be 2 or 4 (got '4')"),
    ("tune.segmentation.num_samples", 8.0, "input should be a valid integer (got 8.0)"),
])
def test_wrong_yaml_type_is_one_line_naming_the_key(tiny_params, key, value, line):
    with pytest.raises(UserError) as excinfo:
        parse_params(_with(tiny_params, key, value))
    assert str(excinfo.value) == f"params.yaml: {key}: {line}"


def test_yaml_exponent_without_a_dot_fails_the_real_entry(workdir, tiny_params, capsys):
    """PyYAML reads ``1e-3`` (and ``1.0e3``) as strings; the line says how to write the number."""
    _write_params(workdir, tiny_params)
    text = (workdir / "params.yaml").read_text()
    (workdir / "params.yaml").write_text(text.replace("weight_decay: 0.0001", "weight_decay: 1.0e4", 1))
    line = _prepare(capsys)
    assert line == ("error: params.yaml: segmentation.models.fcn.weight_decay: input should be a valid number "
                    "(got '1.0e4'; YAML reads 1.0e4 as a string: write 1.0e+4)")
    assert not (workdir / "data").exists()


def test_top_level_trainer_type_error_names_its_key(tiny_params):
    with pytest.raises(UserError, match=r"^params.yaml: trainer.use_gpu: input should be a valid boolean \(got 'no'\)"):
        parse_params(_with(tiny_params, "trainer.use_gpu", "no"))


def test_repository_and_tiny_params_are_strict_valid():
    """params.yaml, and the tests' copy after every family's ``shrink``, are valid without coercion."""
    load_params(REPO / "params.yaml")
    tiny = tiny_params_dict()
    parse_params(tiny)
    for family in FAMILIES.values():  # enable each sweep: its shrunk values are checked too
        tiny["tune"][family.name]["enabled"] = True
    parse_params(tiny)


def test_quantized_sweep_samples_still_fit_integer_fields(tiny_params):
    """quniform samples floats (12.0): a sweep's value or a tuned file's becomes an int, while
    params.yaml's own ``base_channels: 12.0`` stays an error."""
    params = parse_params(tiny_params)
    tuned = FAMILIES["segmentation"].with_values(params, "unet", {"base_channels": 12.0}, "tuned/segmentation.yaml")
    assert tuned.segmentation.models.unet.base_channels == 12
    assert type(tuned.segmentation.models.unet.base_channels) is int
    with pytest.raises(UserError, match=r"^tuned/segmentation.yaml: unet.base_channels: .*valid integer"):
        FAMILIES["segmentation"].with_values(params, "unet", {"base_channels": 12.5}, "tuned/segmentation.yaml")
    with pytest.raises(UserError, match=r"^tuned/segmentation.yaml: unet.lr: .*valid number"):
        FAMILIES["segmentation"].with_values(params, "unet", {"lr": "1e-3"}, "tuned/segmentation.yaml")
    with pytest.raises(UserError, match=r"segmentation.models.unet.base_channels: input should be a valid integer"):
        parse_params(_with(tiny_params, "segmentation.models.unet.base_channels", 12.0))
