"""One Tune trial: a child MLflow run and one Ray Train run of the harness with the trial's values.

The trial function is a Ray Train *driver* (Ray 2.60's Train V2 + Tune pattern): it builds its
own ``TorchTrainer`` through ``harness.fit`` and forwards every epoch's report to Tune, so a
scheduler can stop it after any epoch. Rank 0 logs the epochs into the child run; the sweep
driver closes the child run afterwards (a stopped trial is killed mid-flight).

On the local path (the trials' trainer has ``num_workers: 0``, the default) the trial's own
process runs the harness's loop and reports each epoch with ``ray.tune.report``: no Train
controller, worker actors or report queue per trial, and stopping the trial stops the training.
(Not through Train's local mode: Ray 2.60 refuses ``ray.train`` calls inside a Tune function and
points to the ``ray.tune`` API, see ``harness.fit``.) With workers, the trial reserves nothing
itself and its Train run's workers hold the resources.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from ray.train import UserCallback

from components import tracking
from components.config import Params, flatten, model_trainer
from components.families import get_family
from components.train.harness import TrainJob, fit
from components.train.ray_internals import quiet_tune_storage_logger
from components.tune.space import plain, trial_resources


@dataclass(frozen=True)
class SweepContext:
    """What every trial of one sweep shares (sent once through the object store)."""

    family: str
    model: str
    params: Params  # repository paths made absolute
    name: str  # the sweep's name: its Tune experiment; its trials' Train runs are <name>-<trial id>
    storage_path: str  # where the trials' Train runs keep their checkpoints (absolute path or URI)
    parent_run_id: str
    tracking_uri: str
    repo_root: str
    epochs: int  # per trial
    forward_checkpoints: bool  # PBT copies trials' checkpoints, so Tune must hold them


# The Train run this trial process drives (its controller actor), so that stopping the trial
# stops the run: a Tune-stopped trial is killed, and the placement group of a Train run whose
# controller dies is only freed by Ray's cleaner actor, which needs the dashboard's state API.
_RUNNING: dict[str, Any] = {}


class ForwardReports(UserCallback):
    """Runs in the Train controller: hands each epoch's report (rank 0's metrics, the checkpoint,
    and the controller's own handle) to the trial through a one-slot Ray queue, so the controller
    waits while the trial reports."""

    def __init__(self, queue: Any):
        self.queue = queue

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        import ray

        self.queue.put((dict(metrics[0]), checkpoint, ray.get_runtime_context().current_actor))


def abort_train_run(timeout_s: float = 60.0) -> None:
    """Abort the Train run this trial process drives, if one is running: its workers stop and
    their placement group is removed (what the controller does on Ctrl-C)."""
    import ray

    controller = _RUNNING.pop("controller", None)
    if controller is None:
        return
    try:
        ray.get(controller.abort.remote(), timeout=timeout_s)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        pass  # the controller exits as it aborts (or was gone already)


class ReportToTune:
    """The local path's report callback (the harness calls ``after_report`` in the trial's own
    thread): each epoch's metrics, and with PBT its checkpoint, go to Tune."""

    def __init__(self, forward_checkpoints: bool):
        self.forward_checkpoints = forward_checkpoints

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        import ray.tune

        if self.forward_checkpoints and checkpoint is not None:
            ray.tune.report(dict(metrics[0]), checkpoint=ray.tune.Checkpoint(checkpoint.path, checkpoint.filesystem))
        else:
            ray.tune.report(dict(metrics[0]))


def trainable(context: SweepContext):
    """The Tune trainable of a sweep: :func:`run_trial` with ``context``, whose cleanup (Tune
    stopping, pausing or finishing the trial) aborts the trial's Train run first."""
    import ray.tune
    from ray.tune.trainable.function_trainable import wrap_function

    base = wrap_function(ray.tune.with_parameters(run_trial, context=context), name="trial")

    class SweepTrial(base):
        def cleanup(self):
            abort_train_run()
            super().cleanup()

    trainer = get_family(context.family).trial_trainer(context.params)
    if trainer.num_workers == 0:  # the trial's process trains: it holds one worker's CPUs (and GPU)
        return ray.tune.with_resources(SweepTrial, {key.lower(): amount
                                                    for key, amount in trial_resources(trainer).items()})
    # The trial only drives its Train run, so it reserves no CPU: Tune's default of 1 CPU per
    # trial plus a 2-CPU Train worker would never fit a 2-CPU machine. Tune rejects an all-zero
    # request, so the trial asks for a nominal amount of Ray's (logical) memory resource instead.
    return ray.tune.with_resources(SweepTrial, {"cpu": 0, "memory": 2**20})


def trial_params(context: SweepContext, config: dict[str, Any]) -> Params:
    """The sweep's params with the trial settings and the trial's values applied: the trials'
    trainer (``tune.<family>.trial_trainer``; evaluation every epoch, so that every report carries
    the metric), ``epochs`` = the trial length (learning-rate schedules complete within a trial),
    then the sampled values."""
    family, model = context.family, context.model
    trainer = get_family(family).trial_trainer(context.params).model_copy(update={"eval_every": 1,
                                                                     "figure_every": context.epochs})
    params = context.params.model_copy(
        update={family: getattr(context.params, family).model_copy(update={"trainer": trainer})})
    values = {"epochs": context.epochs, **{key: plain(value) for key, value in config.items()}}
    return get_family(family).with_values(params, model, values, f"tune.{family} trial")


def _logged_params(context: SweepContext, params: Params) -> dict[str, Any]:
    section = getattr(params, context.family)
    return flatten({
        "seed": params.seed,
        "trainer": section.trainer.model_dump(),
        "model": {"name": context.model, **getattr(section.models, context.model).model_dump()},
    })


def run_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Tune's trainable: train ``context.model`` with the sampled ``config`` (flat search keys)."""
    import ray.tune
    from ray.util.queue import Queue

    # Tune logs each checkpoint it stores (PBT) at INFO: the trial's progress lines say enough.
    quiet_tune_storage_logger()
    trial_id = ray.tune.get_context().get_trial_id()
    params = trial_params(context, config)
    start = ray.tune.get_checkpoint()  # PBT: the checkpoint of the trial this one now copies
    run_name = f"{context.name}-{trial_id}"
    tags = {tracking.SWEEP_TAG: context.name, tracking.TRIAL_TAG: trial_id,
            "courselab.family": context.family, "courselab.model": context.model}
    if start is not None:  # a new Train run (a reused name would resume this trial's own checkpoint)
        run_name += "-from-" + hashlib.sha256(start.path.encode()).hexdigest()[:8]
        tags["courselab.started_from"] = start.path
    child_run_id = tracking.open_child_run(
        context.parent_run_id, f"{context.model}-{trial_id}", _logged_params(context, params), tags,
        context.tracking_uri,
    )
    job = TrainJob(
        family=context.family, model=context.model, params=params,
        trainer=model_trainer(params, context.family, context.model), epochs=context.epochs, run_name=run_name,
        storage_path=context.storage_path, mlflow_run_id=child_run_id, mlflow_tracking_uri=context.tracking_uri,
        repo_root=context.repo_root, trial_id=trial_id, initial_checkpoint=start,
        ray_log_level="WARNING",  # Ray Train's per-report lines would double the trial's progress lines
    )
    if job.local:
        fit(job, callbacks=[ReportToTune(context.forward_checkpoints)])
        return
    reports = Queue(maxsize=1, actor_options={"num_cpus": 0})
    failure: list[BaseException] = []

    def train() -> None:
        try:
            fit(job, callbacks=[ForwardReports(reports)])
        except BaseException as err:  # re-raised in the trial's own thread below
            failure.append(err)
        finally:
            reports.put(None)

    thread = threading.Thread(target=train, name=f"train-{trial_id}", daemon=True)
    thread.start()
    while (item := reports.get()) is not None:
        metrics, checkpoint, _RUNNING["controller"] = item
        if context.forward_checkpoints and checkpoint is not None:
            ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint(checkpoint.path, checkpoint.filesystem))
        else:
            ray.tune.report(metrics)
    thread.join()
    _RUNNING.pop("controller", None)  # finished on its own
    if failure:
        raise failure[0]
