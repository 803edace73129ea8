"""Mixed precision: autocast dtypes, fp16 loss scaling (overflow skips the step), clipping on
unscaled gradients, and the same update as fp32 when nothing overflows."""

import pytest
import torch
from torch import nn

from components.train.precision import MixedPrecision


def _net_and_sgd(seed: int = 0) -> tuple[nn.Linear, torch.optim.SGD]:
    torch.manual_seed(seed)
    net = nn.Linear(4, 1)
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def test_autocast_runs_matmuls_in_the_chosen_dtype():
    x, net = torch.randn(3, 4), nn.Linear(4, 2)
    with MixedPrecision("bf16", "cpu").autocast():
        assert net(x).dtype == torch.bfloat16
    with MixedPrecision("fp32", "cpu").autocast():
        assert net(x).dtype == torch.float32


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="fp16"):
        MixedPrecision("int8", "cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_finite_step_equals_the_fp32_step(precision):
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    reference, ref_opt = _net_and_sgd()
    MixedPrecision("fp32").backward_step(nn.functional.mse_loss(reference(x), y), ref_opt)
    net, opt = _net_and_sgd()
    loss = nn.functional.mse_loss(net(x), y)  # float32 forward: only the step machinery differs
    MixedPrecision(precision).backward_step(loss, opt)
    torch.testing.assert_close(net.weight, reference.weight)
    torch.testing.assert_close(net.bias, reference.bias)


def test_fp16_skips_a_step_whose_gradients_overflow_and_shrinks_the_scale():
    net, opt = _net_and_sgd()
    before = net.weight.detach().clone()
    amp = MixedPrecision("fp16")
    loss = net(torch.full((1, 4), float("inf"))).sum()
    amp.backward_step(loss, opt)
    torch.testing.assert_close(net.weight, before)  # the step was skipped
    (scaler,) = amp._scalers.values()
    assert scaler.get_scale() < 2.0**16  # GradScaler's initial scale, halved after the overflow


def test_fp16_clips_the_unscaled_gradient():
    net, opt = _net_and_sgd()
    amp = MixedPrecision("fp16")
    loss = 1000 * net(torch.ones(1, 4)).sum()  # gradient norm 1000 * sqrt(5)
    before = [p.detach().clone() for p in net.parameters()]
    amp.backward_step(loss, opt, max_norm=1.0)
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, net.parameters(), strict=True)])
    assert step.norm().item() == pytest.approx(0.1, rel=1e-4)  # lr * max_norm: clipped after unscaling
