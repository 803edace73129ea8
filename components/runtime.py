"""Process-level runtime: Ray start-up, seeding, device selection and repository paths.

One Ray session per stage process: :func:`ray_init` is called once by a pipeline entry point.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from components.errors import UserError
from components.train.ray_internals import PLACEMENT_GROUP_CLEANER_LOGGER

if TYPE_CHECKING:  # numpy and torch are imported where used: stages that never train skip them
    import torch

# The environment variables a Ray worker needs to behave like the driver, by exact name: Ray shows
# a runtime_env (these values included) in its dashboard and logs, so nothing else travels.
# - MLflow: rank 0 of the workers logs metrics, figures and the model to the tracking server:
#   where it is, how long a request may take (set by components.tracking.configure), and how to
#   trust its TLS certificate (paths, not secrets). No credentials: MLFLOW_TRACKING_USERNAME,
#   _PASSWORD and _TOKEN stay out of the runtime_env; a worker that logs to a server with
#   authentication reads them from its own node (~/.mlflow/credentials, which cluster.yaml and
#   cluster-onprem.yaml put on every node, or the pod's environment from a Secret).
# - courselab: COURSELAB_ROOT (repo_root() in workers) and COURSELAB_FAIL_ONCE (the harness's
#   test hook, read on the last rank); COURSELAB_NATIVE_CPU and the CPU kernel pins of
#   components/numerics.py, so that a cluster's workers compute with the driver's kernels.
# - DVC: none; only the driver reads DVC_STAGE (an MLflow tag), and DVC_STUDIO_TOKEN and the like
#   are secrets no worker uses.
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "COURSELAB_ROOT",
    "COURSELAB_FAIL_ONCE",
    "COURSELAB_NATIVE_CPU",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
    "OMP_WAIT_POLICY",  # PASSIVE beside another CPU-heavy process (README, "Running beside other work")
    "GOMP_SPINCOUNT",
)
# Unix socket paths are limited to 107 bytes; Ray nests ~60 characters below its temp dir.
_MAX_RAY_TEMP_DIR_LEN = 45
_CONNECT_TIMEOUT_S = 5.0


def repo_root() -> Path:
    """The directory holding ``params.yaml``: ``COURSELAB_ROOT`` if set, else the nearest parent
    of the working directory that has one (DVC runs every stage at the repository root)."""
    if env := os.environ.get("COURSELAB_ROOT"):
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "params.yaml").is_file():
            return candidate
    return cwd


def resolve(path: str | Path) -> Path:
    """A params path made absolute against the repository root (absolute paths pass through)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path


def storage_uri(path: str) -> str:
    """Ray Train's ``storage_path``: URIs (s3://, gs://, ...) pass through, paths become absolute
    (Ray rejects relative paths with 'URI has empty scheme')."""
    return path if "://" in path else str(resolve(path))


def with_absolute_paths(params):
    """``params`` with repository-relative paths made absolute, so Ray workers (whose working
    directory is not the repository) read and write the same files as the driver."""
    data = params.data.model_copy(update={"root": str(resolve(params.data.root))})
    runtime = params.runtime.model_copy(update={"storage_path": storage_uri(params.runtime.storage_path)})
    return params.model_copy(update={"data": data, "runtime": runtime})


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (workers add their rank to the seed)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_device(use_gpu: bool) -> torch.device:
    """``cuda`` when asked for and present; asking for a GPU that is not there is a UserError."""
    import torch

    if use_gpu:
        if not torch.cuda.is_available():
            raise UserError("use_gpu is true but no CUDA GPU is visible (set use_gpu: false in params.yaml)")
        return torch.device("cuda")
    return torch.device("cpu")


def git_commit(cwd: Path | None = None) -> str:
    """The current commit hash (with ``-dirty`` when the work tree has changes), or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def _check_reachable(address: str) -> None:
    """Fail fast (one line) when a Ray address's host:port does not accept connections.

    ``ray.init`` itself retries for a long time against a dead address; a user who typo'd
    RAY_ADDRESS deserves an answer in seconds.
    """
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise UserError(f"RAY_ADDRESS={address!r} is not host:port (e.g. 127.0.0.1:6379 or ray://host:10001)")
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise UserError(
            f"Ray cluster at RAY_ADDRESS={address} is unreachable ({err.strerror or err}); "
            "start it with `ray start --head` or unset RAY_ADDRESS to run locally"
        ) from None


# Loggers of Ray's own helper actors that are noisy without the dashboard's state API.
_QUIET_LOGGERS = (PLACEMENT_GROUP_CLEANER_LOGGER,)


def quiet_ray_worker_logs() -> None:
    """Ray ``worker_process_setup_hook``: silence the placement-group cleaner, which otherwise
    warns "Failed to query Ray Train Controller actor state" every second without a dashboard."""
    import logging

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def forwarded_env() -> dict[str, str]:
    """The variables of :data:`FORWARDED_ENV` that are set in this process (what Ray workers get)."""
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def ray_init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start or join Ray once per process.

    ``address`` (from params) wins, then ``RAY_ADDRESS``; with neither a local Ray is started
    with its temp dir under the repository (``.ray/``) when the path is short enough for Ray's
    unix sockets. The variables in :data:`FORWARDED_ENV` reach every worker, no others.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = forwarded_env()
    env.setdefault("COURSELAB_ROOT", str(repo_root()))
    runtime_env = {"env_vars": env, "worker_process_setup_hook": "components.runtime.quiet_ray_worker_logs"}
    # Ray would pick RAY_ADDRESS up on its own; we pass the address explicitly instead.
    os.environ.pop("RAY_ADDRESS", None)
    if address:
        _check_reachable(address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        return
    kwargs = {}
    temp_dir = repo_root() / ".ray"
    if len(str(temp_dir)) <= _MAX_RAY_TEMP_DIR_LEN and "RAY_TMPDIR" not in os.environ:
        temp_dir.mkdir(exist_ok=True)
        kwargs["_temp_dir"] = str(temp_dir)
    # On a 2-core machine every background process competes with the two training threads:
    # no dashboard (its processes cost ~3% CPU), and workers at normal priority (Ray's default
    # niceness 15 lets every helper process preempt the training threads; measured 10-25% slower
    # epochs). Both only for the local instance we start; a cluster keeps its own settings.
    ray.init(
        address="local",  # a new local instance, never a stray cluster found on this machine
        num_cpus=num_cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        configure_logging=True,
        logging_level="WARNING",
        _system_config={"worker_niceness": 0},
        **kwargs,
    )
