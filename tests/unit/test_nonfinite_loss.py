"""A non-finite loss stops training at that step with one line (a UserError) naming the epoch, the
step and the last good checkpoint, which stays; the bad epoch writes none. Under DDP every rank
stops at the same step."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import pytest
import torch

from components.errors import UserError
from components.train.harness import (
    STATE_FILE,
    NonFiniteLoss,
    TrainJob,
    _check_losses,
    _LossCheck,
    fit,
    read_checkpoint_of,
)
from tests.linear_task import STEPS_PER_EPOCH, LinearTask, linear_job


def _saved_epochs(job: TrainJob) -> list[int]:
    run_dir = Path(job.storage_path) / job.run_name
    return sorted(torch.load(path, weights_only=False)["epoch"] for path in run_dir.glob(f"checkpoint_*/{STATE_FILE}"))


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    job = linear_job(tmp_path, epochs=5, run_name="nan-run")
    bad_step = 2 * STEPS_PER_EPOCH + 2  # the third step of the third epoch
    with pytest.raises(UserError) as stopped:
        fit(job, task=LinearTask(bad_at=bad_step))
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("test/linear: non-finite loss (nan) at epoch 3, step 3;"), message
    assert f"the last good checkpoint (epoch 2) is kept in {job.storage_path}/{job.run_name}" in message
    assert "learning rate" in message

    assert _saved_epochs(job) == [1, 2]  # nothing of epoch 3
    latest = read_checkpoint_of(job.checkpoints().latest())
    assert latest.epochs_done == 2 and [row["epoch"] for row in latest.history] == [1.0, 2.0]
    assert all(torch.isfinite(v).all() for v in latest.export["state_dict"].values())
    fresh = LinearTask()
    fresh.setup(torch.device("cpu"), lambda m: m, STEPS_PER_EPOCH)
    with job.checkpoints().latest().as_directory() as directory:
        fresh.load_state_dict(torch.load(Path(directory) / STATE_FILE, weights_only=False)["task"])

    # The same run name resumes from the kept checkpoint and finishes once the loss stays finite.
    done = fit(job, task=LinearTask())
    assert done.epochs_done == 5 and done.resumes[-1]["epoch"] == 2
    assert all(math.isfinite(row["train/loss"]) for row in done.history)


def test_inf_loss_in_the_first_epoch_writes_no_checkpoint(tmp_path):
    job = linear_job(tmp_path, epochs=2, run_name="inf-run")
    with pytest.raises(UserError, match=r"non-finite loss \(inf\) at epoch 1, step 1; no checkpoint"):
        fit(job, task=LinearTask(bad_at=0, bad=float("inf")))
    assert _saved_epochs(job) == [] and job.checkpoints().latest() is None


def test_every_loss_key_is_checked():
    """A GAN returns loss_d and loss_g (no ``loss``); other keys (metrics) are not losses."""
    _check_losses({"loss_d": torch.tensor(0.3), "loss_g": torch.tensor(1.0), "accuracy": torch.tensor(math.nan)},
                  step=0, world=1)
    with pytest.raises(NonFiniteLoss, match=r"loss_g \(-inf\)") as stop:
        _check_losses({"loss_d": torch.tensor(0.3), "loss_g": torch.tensor(-math.inf)}, step=5, world=1)
    assert stop.value.step == 5


NEEDS_CUDA = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
def test_loss_check_names_the_bad_step_on_cpu_at_once_and_on_a_gpu_one_step_later(device):
    """On a GPU the check reads step k's losses after step k+1 was queued (no host sync per step);
    it still names step k, and flush() catches a bad last step."""
    check = _LossCheck(world=1)
    seen = []
    with pytest.raises(NonFiniteLoss, match=r"loss \(nan\)") as stop:
        for step in range(6):
            seen.append(step)
            check({"loss": torch.tensor(math.nan if step == 3 else 0.5, device=device)}, step)
        check.flush()
    assert stop.value.step == 3
    assert seen[-1] == (3 if device == "cpu" else 4)
    last = _LossCheck(world=1)
    last({"loss": torch.tensor(0.5, device=device)}, 0)
    with pytest.raises(NonFiniteLoss) as stop:
        last({"loss": torch.tensor(math.inf, device=device)}, 1)
        last.flush()
    assert stop.value.step == 1


def _rank(rank: int, world: int, init_file: str, bad_rank: int, bad_step: int, results) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for step in range(10):
            loss = torch.tensor(math.nan if (rank, step) == (bad_rank, bad_step) else 0.5)
            try:
                _check_losses({"loss": loss}, step, world)
            except NonFiniteLoss as stop:
                results.put((rank, stop.step, str(stop)))
                break
        else:
            results.put((rank, None, "never stopped"))
        dist.barrier()  # both ranks reach it: neither hangs in a collective the other skipped
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_stop_together_when_one_rank_sees_nan(tmp_path):
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    ranks = [spawn.Process(target=_rank, args=(r, 2, str(tmp_path / "pg"), 1, 3, results)) for r in range(2)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=60)
    assert [process.exitcode for process in ranks] == [0, 0]
    stops = sorted(results.get(timeout=5) for _ in ranks)
    assert stops == [(0, 3, "loss (nan on rank 1)"), (1, 3, "loss (nan on rank 1)")]
