"""Mistakes a user can make end in one clear line and a non-zero exit, with nothing written."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import yaml

from tests.conftest import run_env


def _run(root, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=root, env=env or run_env(root), timeout=120
    )


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_missing_dataset_names_the_path(workdir):
    line = _one_error_line(_run(workdir, "pipelines.train", "segmentation", "unet"))
    assert str(workdir / "data" / "scenes" / "meta.json") in line
    assert "dvc repro prepare" in line
    assert not (workdir / "models").exists() and not (workdir / "metrics").exists()


@pytest.mark.parametrize("dataset", ["voc", "voc_detection", "coco"])
def test_missing_real_dataset_root_names_the_path(workdir, tiny_params, dataset):
    tiny_params["data"][dataset]["root"] = str(workdir / "no" / "devkit")
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    line = _one_error_line(_run(workdir, "pipelines.prepare"))
    assert str(workdir / "no" / "devkit") in line
    assert not (workdir / "data" / dataset).exists()


def test_parallel_corpus_with_unequal_line_counts_names_both_files(workdir, tiny_params):
    corpus = workdir / "multi30k"
    corpus.mkdir()
    for split, (en, de) in {"train": (3, 2), "test": (1, 1)}.items():
        (corpus / f"{split}.en").write_text("".join(f"a dog runs {i}\n" for i in range(en)))
        (corpus / f"{split}.de").write_text("".join(f"ein Hund rennt {i}\n" for i in range(de)))
    tiny_params["data"]["parallel"]["root"] = str(corpus)
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    line = _one_error_line(_run(workdir, "pipelines.prepare"))
    assert str(corpus / "train.en") in line and str(corpus / "train.de") in line
    assert "3" in line and "2" in line
    assert not (workdir / "data" / "parallel").exists()


def test_unknown_model_lists_the_known_ones(workdir):
    line = _one_error_line(_run(workdir, "pipelines.train", "segmentation", "deeplab"))
    assert "'deeplab'" in line and "fcn, unet, segnet, dilated" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_ray_address_fails_fast(workdir, prepare_data):
    prepare_data(workdir)
    env = run_env(workdir)
    env["RAY_ADDRESS"] = f"127.0.0.1:{_free_port()}"
    proc = _run(workdir, "pipelines.train", "segmentation", "unet", env=env)
    line = _one_error_line(proc)
    assert f"RAY_ADDRESS={env['RAY_ADDRESS']} is unreachable" in line and "ray start --head" in line
    assert not (workdir / "metrics").exists()
