"""The Ray Train harness: ``fit(job)`` runs one model of one family, in-process or with DDP across workers.

Driver side (:func:`fit`): builds a ``TorchTrainer`` from the job's scaling params, runs it and
returns the final checkpoint's contents. Worker side (:func:`train_loop_per_worker`): builds the
family's task, restores the latest checkpoint of the run (same ``RunConfig(name)`` ⇒ resume),
then per epoch trains on its shard, evaluates every ``trainer.eval_every`` epochs and after the
last (metrics reduced across ranks), logs from rank 0, and reports a checkpoint. Every worker
calls ``ray.train.report`` once per epoch (it is a barrier).

A rerun resumes from the newest checkpoint that loads: a damaged one (truncated, not a torch file,
refused by ``torch.load(weights_only=True)``, without its state) is skipped with one line naming it
and why, and when none loads training starts from scratch, saying so (:func:`_restore`).

A train step that returns a non-finite loss (NaN or inf, on any rank) stops training at that step
on every rank: no report and no checkpoint of that epoch (the earlier ones stay), and ``fit``
raises a one-line ``UserError`` naming the epoch, the step and the last good checkpoint.

Two paths, one loop:

- **local** (``trainer.num_workers: 0``, the embedded default): Ray Train's local mode runs
  the loop in the stage's own process with the same ``ray.train`` calls (``get_context`` says
  rank 0 of 1, ``report``, ``get_checkpoint``) and no ``ray.init``, no controller or worker
  actors: ~0.1 s of fixed cost instead of ~15-30 s. At Ray 2.60 local mode does not persist
  reported checkpoints to ``storage_path``, hands a new process no checkpoint to resume from,
  ignores ``FailureConfig``, ``CheckpointConfig`` and callbacks, and picks the CPU in
  ``ray.train.torch.get_device`` even with a GPU (no Ray resources are assigned). The harness
  closes those gaps: :class:`~components.train.checkpoints.RunCheckpoints` stores and finds the
  run's checkpoints (same layout as the worker path, two kept), the device comes from
  ``trainer.use_gpu``, and ``fit``'s callbacks get each report. A crash ends the stage; its
  rerun resumes from the last checkpoint (there is no process to restart in-process).
  Inside a Ray Tune trial (``job.trial_id`` set) Ray 2.60 refuses every ``ray.train`` call
  ("deprecated when running in a function passed to Ray Tune", ``ray/train/v2/_internal/
  util.py``), so there the loop runs without Train: rank 0 of 1, checkpoints in the same store,
  and the trial's callback reports each epoch with ``ray.tune.report``.
- **workers** (``num_workers >= 1``): a ``TorchTrainer`` of that many Ray Train workers (DDP
  from 2), restarts after worker failures (``max_failures``), placement strategies, inputs
  shipped to other nodes. Needs Ray (``ray_init``; ``RAY_ADDRESS`` joins a cluster).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Subset

from components.config import Params
from components.errors import UserError
from components.families import get_family
from components.metrics.direction import best_summaries
from components.runtime import seed_everything, select_device
from components.schema import TrainerConfig
from components.tracking import RunLogger, figure_png
from components.train.checkpoints import (
    Candidate,
    RunCheckpoints,
    UnloadableCheckpoint,
    first_loadable,
    load_state,
    resume_notice,
)
from components.train.precision import MixedPrecision
from components.train.ray_internals import quiet_train_report_loggers
from components.train.shipping import materialize, pack
from components.train.task import Task, unwrap

STATE_FILE = "state.pt"
STATE_KEYS = ("task", "export", "epoch", "history", "resumes")  # what _report saves; a resume needs them all
NUM_CHECKPOINTS = 2  # kept per run (the newest), on both paths
FIGURES_DIR = "figures"
POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"  # Ray Train's controller poll interval (see fit)
_USER_POLL_S = os.environ.get(POLL_ENV)
# Fault injection (tests, drills): "<epoch>:<step>:<marker file>" makes the last rank's process die
# abruptly at that 0-based epoch and step, once (the marker file records that it happened).
FAIL_ONCE_ENV = "COURSELAB_FAIL_ONCE"


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs to train one model; sent to every worker as the loop config."""

    family: str
    model: str
    params: Params
    trainer: TrainerConfig
    epochs: int
    run_name: str  # Ray Train run name: a rerun with the same name resumes from its checkpoint
    storage_path: str  # absolute path or URI
    mlflow_run_id: str | None = None
    mlflow_tracking_uri: str | None = None
    repo_root: str | None = None  # the driver's repository: workers resolve relative paths against it
    trial_id: str | None = None  # the Ray Tune trial this run is (shown in progress lines)
    # A harness checkpoint (ray.train.Checkpoint) to start from when the run has none of its own
    # (PBT: a better trial's weights and optimizer moments, with this job's hyperparameters).
    initial_checkpoint: Any = None
    ray_log_level: str = "INFO"  # of Ray Train's own messages; WARNING hides its per-report lines

    @property
    def label(self) -> str:
        return f"{self.family}/{self.model}" + (f" trial {self.trial_id}" if self.trial_id else "")

    @property
    def local(self) -> bool:
        """Ray Train's local mode: the loop runs in this process (``trainer.num_workers == 0``)."""
        return self.trainer.num_workers == 0

    @property
    def in_tune_trial(self) -> bool:
        """On the local path inside a Ray Tune trial, where Ray refuses ``ray.train`` calls."""
        return self.local and self.trial_id is not None

    def checkpoints(self) -> RunCheckpoints:
        """Where the local path stores this run's checkpoints (the worker path lets Ray do it)."""
        return RunCheckpoints(self.storage_path, self.run_name, num_to_keep=NUM_CHECKPOINTS)


@dataclass
class TrainOutcome:
    """The final checkpoint, read back on the driver."""

    epochs_done: int
    history: list[dict[str, float]]
    export: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)  # name -> PNG
    resumes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_metrics(self) -> dict[str, float]:
        return dict(self.history[-1]) if self.history else {}


# --- worker side -------------------------------------------------------------------------------


def build_loaders(task: Task, trainer: TrainerConfig, rank: int, world: int, seed: int):
    """``(sampler, train, val)`` loaders of this rank (benchmarks build a plain loop's with rank 0 of 1)."""
    data = task.datasets()
    # Training: every rank sees a disjoint shard each epoch (padded to equal length so every rank
    # runs the same number of DDP steps). Evaluation: a strided, unpadded shard, so that reduced
    # metrics count every sample exactly once.
    # A task may batch its own way (detection keeps lists of per-image targets): ``collate_fn``;
    # and order its training items its own way (sequences: batches of similar lengths): ``train_sampler``
    # (None, ModuleTask's defaults: PyTorch's collation, a shuffling DistributedSampler).
    if task.train_sampler is not None:
        sampler = task.train_sampler(num_replicas=world, rank=rank, seed=seed, batch_size=trainer.batch_size)
    else:
        sampler = DistributedSampler(data["train"], num_replicas=world, rank=rank, shuffle=True, seed=seed)
    # Pinned host memory lets batches copy to the GPU asynchronously (tasks move them non_blocking).
    workers = {"num_workers": trainer.loader_workers, "persistent_workers": trainer.loader_workers > 0}
    # A last training batch of one item is dropped: BatchNorm in training mode fails on it (DCGAN's
    # generator, DeepLabV3's image pooling); any other last batch is kept.
    drop_last = len(sampler) % trainer.batch_size == 1 and len(sampler) > trainer.batch_size
    train = DataLoader(data["train"], batch_size=trainer.batch_size, sampler=sampler, collate_fn=task.collate_fn,
                       pin_memory=trainer.use_gpu, drop_last=drop_last, **workers)
    val_shard = Subset(data["val"], range(rank, len(data["val"]), world))
    val = DataLoader(val_shard, batch_size=trainer.eval_batch_size, shuffle=False, collate_fn=task.collate_fn,
                     **workers)
    return sampler, train, val


def _mean_across_ranks(values: Mapping[str, torch.Tensor], world: int) -> dict[str, float]:
    if not values:
        return {}
    stacked = torch.stack([v.detach().float().cpu() for v in values.values()])
    if world > 1:
        dist.all_reduce(stacked)
        stacked /= world
    return {key: float(v) for key, v in zip(values, stacked, strict=True)}


def _broadcast_buffers(task: Task, world: int) -> None:
    """Give every rank rank 0's buffers (e.g. BatchNorm statistics) before evaluation.

    DDP broadcasts buffers at the start of each training forward, so after the last step the
    ranks' running statistics differ by one update; evaluation must use one set.
    """
    if world == 1:
        return
    for module in task.modules.values():
        for buffer in unwrap(module).buffers():
            dist.broadcast(buffer.data, src=0)


def _ddp_consistency(task: Task, world: int, nodes: int) -> dict[str, float]:
    """How far any rank's weights and buffers are from rank 0's (0 when DDP kept them in sync),
    and on how many nodes the ranks run. Nothing for a single worker."""
    if world == 1:
        return {}
    tensors = [t.detach().float().flatten() for module in task.modules.values()
               for t in unwrap(module).state_dict().values() if t.is_floating_point()]
    mine = torch.cat(tensors)
    reference = mine.clone()
    dist.broadcast(reference, src=0)
    worst = (mine - reference).abs().max()
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return {"ddp/param_max_abs_diff": float(worst), "ddp/num_nodes": float(nodes)}


def _count_nodes(world: int) -> int:
    """The number of distinct Ray nodes the ranks run on (a collective)."""
    import ray

    if world == 1:
        return 1
    node_ids: list[str | None] = [None] * world
    dist.all_gather_object(node_ids, ray.get_runtime_context().get_node_id())
    return len(set(node_ids))


def _optimizer_fingerprint(state: Mapping[str, Any]) -> float:
    """A scalar summary of optimizer state (sum of every tensor), to show a resume restored it."""
    total = 0.0
    for opt_state in state["optimizers"].values():
        for per_param in opt_state["state"].values():
            for value in per_param.values():
                if torch.is_tensor(value):
                    total += float(value.double().sum())
    return total


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def _progress_line(job: TrainJob, entry: Mapping[str, float], epoch_s: float, remaining: int) -> str:
    # Per-class entries (val/iou/<class>, val/ap/<class>, ...) stay in MLflow, out of the line.
    shown = [f"{k} {v:.4g}" for k, v in entry.items() if k.startswith(("train/loss", "val/")) and k.count("/") == 1]
    return (
        f"[{job.label}] epoch {int(entry['epoch'])}/{job.epochs}  " + "  ".join(shown)
        + f"  {epoch_s:.1f}s/epoch  ETA {_format_eta(epoch_s * remaining)}"
    )


def _say(line: str) -> None:
    """Print a progress line from a worker once. Ray Train patches ``print`` to tee into its logger
    when ``sys.stdout`` was wrapped (by MLflow, say), which shows every line twice on the driver;
    the process's own stdout is forwarded by Ray exactly once."""
    print(line, file=sys.__stdout__, flush=True)


@dataclass
class _RunState:
    """What a worker carries from epoch to epoch and across a resume."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    resumes: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)  # the latest figure of each name, PNG
    saved_epoch: int | None = None  # the epoch of this run's newest checkpoint in storage (None: none yet)


def _start_from(task: Task, job: TrainJob, rank: int) -> _RunState:
    """Start from ``job.initial_checkpoint`` (another run's) with this job's hyperparameters."""
    with job.initial_checkpoint.as_directory() as directory:
        try:
            saved = load_state(Path(directory) / STATE_FILE, required=("task", "epoch", "history"))
        except UnloadableCheckpoint as err:
            raise UserError(f"{job.label}: cannot start from {job.initial_checkpoint.path}: {err}") from None
    task.adopt_state_dict(saved["task"])  # its weights and moments, this job's hyperparameters
    run = _RunState(saved["epoch"], saved["history"])
    run.resumes.append({"epoch": run.epoch, "from": job.initial_checkpoint.path})
    if rank == 0:
        _say(f"[{job.label}] starts after epoch {run.epoch} from {job.initial_checkpoint.path} "
             "with its own hyperparameters")
    return run


def _load_resumable(checkpoint: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(state, figures)`` of a harness checkpoint; :class:`UnloadableCheckpoint` when it is damaged."""
    with checkpoint.as_directory() as directory:
        saved = load_state(Path(directory) / STATE_FILE, required=STATE_KEYS)
        figures = {png.stem: png.read_bytes() for png in (Path(directory) / FIGURES_DIR).glob("*.png")}
    return saved, figures


def _resume_candidates(job: TrainJob) -> list[Candidate]:
    """The checkpoints a run may resume from, newest first. Worker path: the one Ray Train hands
    over (its latest), then the run folder's older ones; local path (Ray hands a new process
    nothing): the run's complete checkpoints in the harness's store."""
    import ray.train

    handed = None if job.in_tune_trial else ray.train.get_checkpoint()
    if handed is not None:
        name = handed.path.rstrip("/").rsplit("/", 1)[-1]
        return [Candidate(name, handed), *job.checkpoints().candidates(older_than=name, require_marker=job.local)]
    return job.checkpoints().candidates() if job.local else []


def _restore(task: Task, job: TrainJob, rank: int) -> _RunState:
    """Load the run's newest checkpoint that loads into ``task``, else start from
    ``job.initial_checkpoint`` when given, else from scratch. A damaged checkpoint (truncated, not
    a torch file, refused by ``weights_only``, missing its state or marker) is skipped with one line
    naming it and why; when none loads, that line says training starts from scratch."""
    chosen, loaded, skipped = first_loadable(_resume_candidates(job), _load_resumable)
    where = f"{job.storage_path.rstrip('/')}/{job.run_name}"
    if chosen is None:
        if skipped and rank == 0:
            otherwise = (f"starting from {job.initial_checkpoint.path}" if job.initial_checkpoint
                         else "training from scratch")
            _say(f"[{job.label}] {resume_notice(skipped, None, None, otherwise)} (the damaged ones stay in {where})")
        return _start_from(task, job, rank) if job.initial_checkpoint else _RunState()
    saved, figures = loaded
    try:
        task.load_state_dict(saved["task"])
    except (RuntimeError, KeyError, ValueError) as err:  # a network whose code changed under the same params
        first = str(err).strip().splitlines()[0]
        raise UserError(f"[{job.label}] checkpoint {chosen.name} in {where} does not fit the network the code now "
                        f"builds ({first}); the params are unchanged, so the model's code changed: move that folder "
                        "away (or delete it) to train from scratch") from None
    run = _RunState(saved["epoch"], saved["history"], saved["resumes"], figures, saved_epoch=saved["epoch"])
    run.resumes.append({"epoch": run.epoch, "optimizer_fingerprint": _optimizer_fingerprint(saved["task"])})
    if rank == 0:
        _say(f"[{job.label}] {resume_notice(skipped, chosen.name, run.epoch)} in {where}" if skipped
             else f"[{job.label}] resumed from the checkpoint of epoch {run.epoch} ({job.run_name})")
    return run


def _failure_injection(rank: int, world: int) -> Callable[[int, int], None] | None:
    """The ``COURSELAB_FAIL_ONCE`` hook for this rank (the last rank only), or None."""
    spec = os.environ.get(FAIL_ONCE_ENV)
    if not spec or rank != world - 1:
        return None
    epoch_s, step_s, marker = spec.split(":", 2)
    at = (int(epoch_s), int(step_s))

    def maybe_fail(epoch: int, step: int) -> None:
        if (epoch, step) == at and not Path(marker).exists():
            Path(marker).write_text(f"rank {rank} died at epoch {epoch} step {step}\n")
            _say(f"[{FAIL_ONCE_ENV}] rank {rank} exits abruptly at epoch {epoch}, step {step}")
            os._exit(1)  # no cleanup, no exception: as if the process were killed

    return maybe_fail


class NonFiniteLoss(Exception):
    """A train step returned a NaN or infinite loss on some rank; every rank raises it at that step."""

    def __init__(self, step: int, bad: Mapping[tuple[int, str], float], world: int):
        self.step = step  # 0-based, in the epoch
        self.bad = dict(bad)  # (rank, loss key) -> value, the non-finite ones
        self.world = world
        super().__init__(self.describe())

    def describe(self) -> str:
        """``"loss (nan)"``; under DDP the rank too: ``"loss_d (inf on rank 1)"``."""
        (rank, key), value = next(iter(self.bad.items()))
        return f"{key} ({value:g}" + (f" on rank {rank})" if self.world > 1 else ")")


def _loss_table(losses: Mapping[str, torch.Tensor], world: int) -> tuple[list[str], torch.Tensor | None]:
    """The keys checked (``loss``, or each ``loss*`` key: a GAN has ``loss_d`` and ``loss_g``) and a
    (world, keys) float64 table of every rank's values, on this rank's device.

    Under DDP the ranks exchange their values (one all-reduce of ``world x losses`` numbers, each
    rank filling its own row), so they stop at the same step and none waits in a collective that
    the others never reach. With NCCL the all-reduce is queued on the GPU: no host sync."""
    keys = [key for key in losses if key.startswith("loss")] or list(losses)[:1]
    if not keys:
        return keys, None
    mine = torch.stack([losses[key].detach().reshape(()).double() for key in keys])
    if world > 1 and dist.is_initialized():
        rank = dist.get_rank()
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        table = torch.zeros(world, len(keys), dtype=torch.float64, device=on)
        table[rank] = mine.to(on)
        dist.all_reduce(table)  # a sum of rows each filled by one rank: every rank's values, NaN kept
        return keys, table
    return keys, mine[None]


def _raise_if_nonfinite(keys: Sequence[str], values: list[list[float]], step: int, world: int) -> None:
    bad = {(rank, key): value for rank, row in enumerate(values)
           for key, value in zip(keys, row, strict=True) if not math.isfinite(value)}
    if bad:
        raise NonFiniteLoss(step, bad, world)


def _check_losses(losses: Mapping[str, torch.Tensor], step: int, world: int) -> None:
    """Raise :class:`NonFiniteLoss` on every rank when any rank's step returned a non-finite loss."""
    keys, table = _loss_table(losses, world)
    if table is not None:
        _raise_if_nonfinite(keys, table.cpu().tolist(), step, world)


class _LossCheck:
    """:func:`_check_losses` for every step of an epoch, without stalling a GPU.

    Reading a CUDA loss on the host waits for the step's kernels, and the next batch is then
    prepared while the GPU idles. On a GPU, step k's values are copied to pinned host memory
    asynchronously and read when step k+1 has been queued (so the GPU stays busy meanwhile): a
    non-finite loss stops training one step later than on the CPU, naming the step it came from.
    The optimizer has applied that step either way; the kept checkpoint is the last epoch's.
    """

    def __init__(self, world: int) -> None:
        self.world = world
        self.pending: tuple[int, list[str], torch.Tensor, torch.cuda.Event] | None = None

    def __call__(self, losses: Mapping[str, torch.Tensor], step: int) -> None:
        keys, table = _loss_table(losses, self.world)
        if table is None:
            return
        if table.device.type != "cuda":
            _raise_if_nonfinite(keys, table.tolist(), step, self.world)
            return
        host = torch.empty(table.shape, dtype=table.dtype, pin_memory=True)
        host.copy_(table, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self.flush()
        self.pending = (step, keys, host, copied)

    def flush(self) -> None:
        """Check the step still in flight (call it after the last step of the epoch)."""
        if self.pending is not None:
            step, keys, host, copied = self.pending
            self.pending = None
            copied.synchronize()
            _raise_if_nonfinite(keys, host.tolist(), step, self.world)


def _train_epoch(
    task: Task, loader: DataLoader, world: int, before_step: Callable[[int], None] | None = None
) -> dict[str, float]:
    """One pass over this rank's shard; the mean of each loss over steps, averaged over ranks.
    Raises :class:`NonFiniteLoss` (on every rank) at the first step that returns a non-finite loss
    (on a GPU one step after it: :class:`_LossCheck`)."""
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    check = _LossCheck(world)
    for batch in loader:
        if before_step is not None:
            before_step(steps)
        losses = task.train_step(batch)
        check(losses, steps)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0) + value.detach()
        steps += 1
    check.flush()
    return _mean_across_ranks({f"train/{k}": v / steps for k, v in sums.items()}, world)


def _nonfinite_message(job: TrainJob, run: _RunState, epoch: int, stop: NonFiniteLoss) -> str:
    """The one line a non-finite loss ends the stage with (epochs and steps counted from 1)."""
    where = f"{job.storage_path.rstrip('/')}/{job.run_name}"
    kept = (f"the last good checkpoint (epoch {run.saved_epoch}) is kept in {where}" if run.saved_epoch
            else "no checkpoint of this run was written yet")
    return (f"{job.label}: non-finite {stop.describe()} at epoch {epoch + 1}, step {stop.step + 1}; {kept}; "
            "lower the learning rate or clip gradients (the model's grad_clip, where it has one)")


def _report(task: Task, run: _RunState, rank: int, job: TrainJob, callbacks: Sequence[Any] = ()) -> None:
    """Every rank reports the epoch's metrics (a barrier); rank 0 attaches the checkpoint. On the
    local path the harness stores the checkpoint itself and hands the report to ``callbacks``
    (what Ray Train's controller does for the worker path)."""
    import ray.train

    scalars = {k: v for k, v in run.history[-1].items() if math.isfinite(v)}
    if rank != 0:
        ray.train.report(scalars, checkpoint=None)
        return
    state = {
        "task": task.state_dict(),
        "export": task.export(),
        "epoch": run.epoch,
        "history": run.history,
        "resumes": run.resumes,
    }
    with tempfile.TemporaryDirectory(prefix="courselab-ckpt-") as directory:
        torch.save(state, Path(directory) / STATE_FILE)
        if run.figures:
            (Path(directory) / FIGURES_DIR).mkdir()
            for name, png in run.figures.items():
                (Path(directory) / FIGURES_DIR / f"{name}.png").write_bytes(png)
        if not job.local:
            ray.train.report(scalars, checkpoint=ray.train.Checkpoint.from_directory(directory))
            return
        checkpoint = job.checkpoints().persist(directory)
    if not job.in_tune_trial:
        ray.train.report(scalars, checkpoint=checkpoint)
    for callback in callbacks:
        callback.after_report(run_context=None, metrics=[scalars], checkpoint=checkpoint)


def train_loop_per_worker(config: dict[str, Any]) -> str | None:
    """Ray Train's per-worker entry point; ``config["job"]`` is a :class:`TrainJob`.

    Returns None, or the one-line reason training stopped early (a non-finite loss): every rank
    returns it instead of raising, so Ray Train neither restarts the workers (``max_failures``)
    nor wraps the reason in a traceback; :func:`fit` raises it on the driver as a ``UserError``.
    """
    import ray.train
    import ray.train.torch

    job: TrainJob = config["job"]
    callbacks = config.get("local_callbacks", ())  # the local path's: run in this process
    quiet_train_report_loggers(job.ray_log_level)
    if job.in_tune_trial:
        rank, world = 0, 1
    else:
        context = ray.train.get_context()
        rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(max(1, int(job.trainer.cpus_per_worker)))
    seed_everything(job.params.seed)  # identical initial weights on every rank

    if job.repo_root:  # a shared Ray session may have started this worker for another repository
        os.environ["COURSELAB_ROOT"] = job.repo_root
    for path, (digest, ref) in config.get("inputs", {}).items():  # only on clusters of several nodes
        if materialize(Path(path), digest, lambda ref=ref: ray.get(ref)):
            _say(f"[{job.label}] rank {rank}: fetched {path} from the driver's node")
    task: Task = config.get("task") or get_family(job.family).build_task(job.model, job.params)
    sampler, train_loader, val_loader = build_loaders(task, job.trainer, rank, world, job.params.seed)
    if job.local:  # no Ray resources are assigned in local mode: Ray's get_device would say CPU
        device = select_device(job.trainer.use_gpu)
        task.setup(device, wrap=lambda module, **_: module, steps_per_epoch=len(train_loader))
    else:  # one worker: moved to its device; several: wrapped in DDP (keyword arguments: DDP's options)
        device = ray.train.torch.get_device()
        task.setup(device, steps_per_epoch=len(train_loader), wrap=lambda module, **ddp: ray.train.torch.prepare_model(
            module, parallel_strategy_kwargs=ddp or None))
    task.precision = MixedPrecision(job.trainer.precision, device.type)
    figure_batch = next(iter(DataLoader(
        task.datasets()["val"], batch_size=job.trainer.eval_batch_size, collate_fn=task.collate_fn
    )))
    run = _restore(task, job, rank)
    if run.epoch >= job.epochs:  # finished earlier: report it again so the driver gets its checkpoint
        if not any(key.startswith("val/") for key in run.history[-1]):  # epochs lowered below an unevaluated one
            run.history[-1].update({f"val/{k}": float(v) for k, v in task.evaluate(val_loader).items()})
        _report(task, run, rank, job, callbacks)
        return None
    seed_everything(job.params.seed + 1000 * run.epoch + rank)
    # the local path's logger is the stage's (its MLflow run lives in components.tracking_process);
    # a Ray worker logs into the run by its id, from rank 0 only
    logger = config.get("logger") or RunLogger(job.mlflow_run_id, job.mlflow_tracking_uri, active=rank == 0)
    nodes = _count_nodes(world)
    maybe_fail = _failure_injection(rank, world)

    for epoch in range(run.epoch, job.epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        before_step = (lambda step, epoch=epoch: maybe_fail(epoch, step)) if maybe_fail else None
        try:
            train_metrics = _train_epoch(task, train_loader, world, before_step)
        except NonFiniteLoss as stop:  # every rank, at the same step: no report, no checkpoint of this epoch
            return _nonfinite_message(job, run, epoch, stop)
        train_metrics["throughput/train_samples_per_s"] = len(sampler) * world / (time.perf_counter() - started)
        if device.type == "cuda":  # this rank's peak during the epoch (rank 0's is logged)
            train_metrics["memory/gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        _broadcast_buffers(task, world)
        val_metrics = {}
        if epoch + 1 == job.epochs or (epoch + 1) % job.trainer.eval_every == 0:
            val_metrics = {f"val/{k}": float(v) for k, v in task.evaluate(val_loader).items()}
            val_metrics.update(_ddp_consistency(task, world, nodes))
        epoch_s = time.perf_counter() - started
        run.epoch = epoch + 1
        run.history.append({"epoch": float(run.epoch), **train_metrics, **val_metrics, "time/epoch_s": epoch_s})
        if rank == 0:
            # best/<metric> so far (max or min over epochs by the metric's direction) beside the
            # epoch's values: MLflow tables sort runs by it, and a stopped trial has it too.
            logged = {k: v for k, v in run.history[-1].items() if k != "epoch"} | best_summaries(run.history)
            logger.log_metrics(logged, step=run.epoch)
            _say(_progress_line(job, run.history[-1], epoch_s, job.epochs - run.epoch))
            if run.epoch == job.epochs or run.epoch % job.trainer.figure_every == 0:
                for name, fig in task.figures(figure_batch).items():
                    run.figures[name] = figure_png(fig)
                    logger.log_png(run.figures[name], f"figures/epoch_{run.epoch:03d}/{name}.png")
        _report(task, run, rank, job, callbacks)
        run.saved_epoch = run.epoch
    return None


# --- driver side -------------------------------------------------------------------------------


def check_resources(trainer: TrainerConfig) -> None:
    """A request the cluster can never satisfy is an error, not an indefinite wait. The local path
    (``num_workers: 0``) needs no Ray: only a GPU asked for must be visible to this process."""
    if trainer.num_workers == 0:
        if trainer.resources_per_worker:
            raise UserError(
                f"trainer.resources_per_worker applies to Ray Train workers, but num_workers: 0 trains in the "
                f"stage's own process; set num_workers >= 1 to use {sorted(trainer.resources_per_worker)}"
            )
        select_device(trainer.use_gpu)
        return
    import ray

    available = ray.cluster_resources()
    need_gpus = trainer.num_workers * trainer.gpus_per_worker
    if trainer.use_gpu and available.get("GPU", 0) < need_gpus:
        raise UserError(
            f"use_gpu is true: num_workers={trainer.num_workers} x gpus_per_worker={trainer.gpus_per_worker:g} "
            f"need {need_gpus:g} GPU(s), but the Ray cluster has {available.get('GPU', 0):g} GPU(s) and "
            f"{available.get('CPU', 0):g} CPU(s); set use_gpu: false or add GPU nodes"
        )
    for name, amount in trainer.resources_per_worker.items():
        if available.get(name, 0) < amount * trainer.num_workers:
            raise UserError(
                f"trainer.resources_per_worker asks {amount:g} {name!r} per worker x {trainer.num_workers}, but "
                f"the Ray cluster has {available.get(name, 0):g}; its resources: {', '.join(sorted(available))}"
            )
    need_cpus = trainer.num_workers * trainer.cpus_per_worker
    if need_cpus > available.get("CPU", 0):
        raise UserError(
            f"num_workers x cpus_per_worker = {need_cpus:g} CPUs, but the Ray cluster has "
            f"{available.get('CPU', 0):g}; lower trainer.num_workers or trainer.cpus_per_worker"
        )


def _shipped_inputs(job: TrainJob, task: Task | None) -> dict[str, Any]:
    """Object refs of the task's input files when the cluster has several nodes (see shipping.py)."""
    import ray

    if sum(node["Alive"] for node in ray.nodes()) < 2:
        return {}
    shipped = {}
    for path in (task or get_family(job.family).build_task(job.model, job.params)).inputs():
        digest, blob = pack(path)
        shipped[str(path)] = (digest, ray.put(blob))
    return shipped


def read_checkpoint(directory: Path) -> TrainOutcome:
    """Load a harness checkpoint directory into a :class:`TrainOutcome`."""
    directory = Path(directory)
    state = load_state(directory / STATE_FILE, required=STATE_KEYS)  # weights_only: no code runs
    figures = {p.stem: p.read_bytes() for p in sorted((directory / FIGURES_DIR).glob("*.png"))}
    return TrainOutcome(
        epochs_done=state["epoch"],
        history=state["history"],
        export=state["export"],
        figures=figures,
        resumes=state["resumes"],
    )


def fit(job: TrainJob, callbacks: Sequence[Any] = (), task: Task | None = None, logger: Any = None) -> TrainOutcome:
    """Train ``job`` with Ray Train and return its final checkpoint: in this process on the local
    path (``num_workers: 0``, no Ray needed), else on Ray Train workers (Ray must be initialised).

    ``callbacks``: Ray Train ``UserCallback``s of the run (a Tune trial forwards each epoch's report);
    on the local path the harness calls their ``after_report`` itself, with ``run_context=None``.
    ``task``: the job's task as the caller already built it (its datasets loaded, nothing set up):
    the local path trains it instead of loading the data a second time in the same process; workers
    build their own.
    ``logger``: where the local path logs each epoch (the stage's
    :class:`~components.tracking_process.TrackingProcess`); by default, and always on Ray workers,
    a :class:`~components.tracking.RunLogger` of ``job.mlflow_run_id``.
    """
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    check_resources(job.trainer)
    if job.local:
        _say(f"[{job.label}] training in this process (Ray Train local mode, trainer.num_workers 0)")
        logging.getLogger("ray.train.v2.api.config").setLevel(logging.WARNING)  # its "Running in local mode" line
        if job.in_tune_trial:  # no ray.train here (see the module's docstring): the loop itself
            stopped = train_loop_per_worker(
                {"job": job, "local_callbacks": list(callbacks), "task": task, "logger": logger})
            if stopped:
                raise UserError(stopped)
            return read_checkpoint_of(job.checkpoints().latest())
        result = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"job": job, "local_callbacks": list(callbacks), "task": task, "logger": logger},
            scaling_config=ScalingConfig(num_workers=0),
            run_config=RunConfig(name=job.run_name, storage_path=job.storage_path),
        ).fit()
        return _outcome(job, result)
    # ray.train.report hands each epoch to a one-slot queue that the controller empties only when
    # it polls the workers, every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default): epochs
    # shorter than that wait for the poll (a 1.1 s GAN epoch took 2.0 s), while frequent polls
    # take the GIL from long Python-bound epochs. trainer.controller_poll_s sets it per family;
    # a value in the environment when the process started wins.
    os.environ[POLL_ENV] = _USER_POLL_S or str(job.trainer.controller_poll_s)
    _say(f"[{job.label}] training on {job.trainer.num_workers} Ray Train worker(s)")
    resources = {"CPU": job.trainer.cpus_per_worker, **job.trainer.resources_per_worker}
    if job.trainer.use_gpu:
        resources["GPU"] = job.trainer.gpus_per_worker
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": job, "inputs": _shipped_inputs(job, task)},
        scaling_config=ScalingConfig(
            num_workers=job.trainer.num_workers, use_gpu=job.trainer.use_gpu, resources_per_worker=resources,
            placement_strategy=job.trainer.placement_strategy,
        ),
        run_config=RunConfig(
            name=job.run_name,
            storage_path=job.storage_path,
            failure_config=FailureConfig(max_failures=job.trainer.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=NUM_CHECKPOINTS),
            callbacks=list(callbacks) or None,
            logging_config=LoggingConfig(log_level=job.ray_log_level),
        ),
    )
    return _outcome(job, trainer.fit())


def _outcome(job: TrainJob, result: Any) -> TrainOutcome:
    if result.error is not None:
        raise result.error
    if result.return_value:  # rank 0's reason for stopping early (see train_loop_per_worker)
        raise UserError(result.return_value)
    if result.checkpoint is None:
        raise RuntimeError(f"{job.label}: training finished without a checkpoint")
    return read_checkpoint_of(result.checkpoint)


def read_checkpoint_of(checkpoint: Any) -> TrainOutcome:
    """:func:`read_checkpoint` of a ``ray.train.Checkpoint`` (local or remote storage)."""
    with checkpoint.as_directory() as directory:
        return read_checkpoint(Path(directory))
