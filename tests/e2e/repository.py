"""A temporary copy of the repository, on the tests' tiny params, reproduced by the real `dvc repro`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, tiny_params_dict

# What the pipeline writes that .gitignore does not cover (data/, models/, figures/, reports/ are ignored):
# a working copy's untracked results would make the copy start from them (a stale row of another list, a
# metrics file a killed stage must not leave)
PIPELINE_OUTPUTS = ("dvc.lock", "metrics", "plots", "tuned")


def _git_files(*options: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *options, "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    return list(filter(None, out.stdout.split("\0")))


def copy_repository(dest: Path) -> None:
    """The files git would commit (tracked, and untracked but not ignored: work not yet committed) into
    ``dest``, but for untracked pipeline outputs (:data:`PIPELINE_OUTPUTS`)."""
    untracked = [name for name in _git_files("--others", "--exclude-standard")
                 if name.split("/", 1)[0] not in PIPELINE_OUTPUTS]
    for name in _git_files("--cached") + untracked:
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def sh(cwd: Path, env: dict, *cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def reproduced(root: Path, *targets: str) -> dict:
    """``root`` made a git repository of the tiny-params copy, then `dvc repro [targets]` (all of the
    pipeline without targets): ``{"root", "env", "repro_env", "repro", "repro_s"}``."""
    root.mkdir(parents=True)
    copy_repository(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSELAB_", "MLFLOW_", "RAY_ADDRESS"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_SITE_CACHE_DIR"] = str(root / ".dvc" / "site_cache")
    env["DVC_NO_ANALYTICS"] = "1"
    for cmd in (
        ("git", "init", "-q"),
        ("git", "config", "user.name", "courselab-e2e"),
        ("git", "config", "user.email", "e2e@courselab.invalid"),
        ("git", "add", "-A"),
        ("git", "commit", "-qm", "tiny params"),
    ):
        sh(root, env, *cmd)
    # Train stages run on the local path (num_workers 0: no Ray); the tune and rl stages start a
    # local Ray each. No RAY_ADDRESS: with one, every train stage would train on a cluster worker.
    repro_env = {**env, "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    proc = sh(root, repro_env, "dvc", "repro", *targets, timeout=1800)
    repro_s = time.perf_counter() - started  # printed for the log; bounds on time live in bench/stage_overhead.py
    print(f"e2e dvc repro {' '.join(targets)}: {proc.stdout.count('Running stage ')} stages in {repro_s:.0f}s")
    return {"root": root, "env": env, "repro_env": repro_env, "repro": proc, "repro_s": repro_s}
