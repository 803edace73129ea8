"""rl.algos.<algo>.num_gpus_per_learner: RLlib's local learner on a GPU, refused in one line without one."""

from __future__ import annotations

import pytest
import torch

from components.config import parse_params
from components.errors import UserError
from components.families.rl.dqn.config import build_dqn_config
from components.families.rl.reinforce import build_reinforce_config
from pipelines.rl import check_learner_gpu


@pytest.mark.parametrize(("algo", "build"), [("dqn", build_dqn_config), ("reinforce", build_reinforce_config)])
def test_the_learner_gpu_reaches_rllibs_config(tiny_params, algo, build):
    tiny_params["rl"]["algos"][algo]["num_gpus_per_learner"] = 1
    cfg = getattr(parse_params(tiny_params).rl.algos, algo)
    config = build(cfg, {}, seed=0)
    assert config.num_learners == 0 and config.num_gpus_per_learner == 1  # the local learner, on a GPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without GPUs")
def test_a_learner_gpu_without_a_gpu_is_one_line(tiny_params):
    tiny_params["rl"]["algos"]["dqn"]["num_gpus_per_learner"] = 1
    with pytest.raises(UserError, match=r"^rl.algos.dqn.num_gpus_per_learner is 1, but no CUDA GPU is visible"):
        check_learner_gpu("dqn", parse_params(tiny_params))
    check_learner_gpu("q_learning", parse_params(tiny_params))  # tabular: nothing to check
    tiny_params["rl"]["algos"]["dqn"]["num_gpus_per_learner"] = 0
    check_learner_gpu("dqn", parse_params(tiny_params))
