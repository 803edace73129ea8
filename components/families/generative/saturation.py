"""Why the generator maximises log D(G(z)) instead of minimising log(1 - D(G(z))) (the course's
argument for the non-saturating loss, Goodfellow et al. 2014, section 3).

Early in training the discriminator rejects the fakes: D(G(z)) = sigmoid(s) -> 0. The minimax
(saturating) generator loss log(1 - sigmoid(s)) = -softplus(s) has slope -sigmoid(s) in the score
s, which vanishes there; the non-saturating -log sigmoid(s) = softplus(-s) has slope
-(1 - sigmoid(s)) -> -1. :func:`measure` shows it on the real networks: from their initial weights it
trains D alone for a few steps (G fixed) and, before each step, measures the norm of each loss's
gradient with respect to G's weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from components.families.generative.losses import NONSATURATING, SATURATING

GENERATOR_LOSSES = {"non_saturating": NONSATURATING, "saturating": SATURATING}


@dataclass(frozen=True)
class Saturation:
    """At each measured step (discriminator steps taken so far): the mean D(G(z)) of the fixed fakes
    and, per generator loss, the L2 norm of its gradient over all of G's weights."""

    steps: list[int]
    d_of_g: list[float]
    grad_norm: dict[str, list[float]]

    def final(self) -> dict[str, float]:
        """The last measurement, as metrics: the norms, their ratio (non-saturating / saturating) and D(G(z))."""
        last = {name: norms[-1] for name, norms in self.grad_norm.items()}
        return {"saturation_d_of_g": self.d_of_g[-1],
                "saturation_grad_non_saturating": last["non_saturating"],
                "saturation_grad_saturating": last["saturating"],
                "saturation_grad_ratio": last["non_saturating"] / max(last["saturating"], 1e-30)}


def _grad_norm(net: nn.Module) -> float:
    return float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in net.parameters() if p.grad is not None)))


def measure(generator: nn.Module, discriminator: nn.Module, real: Tensor, latent_dim: int, steps: int,
            lr: float, betas: tuple[float, float], seed: int, batch_size: int = 64, every: int = 5) -> Saturation:
    """Train a copy of ``discriminator`` for ``steps`` Adam steps on ``real`` images (cycled in batches)
    against a copy of ``generator`` that stays fixed, measuring before every ``every``-th step and
    after the last. Images are
    ``sigmoid(generator(z))`` as the GAN task decodes them; ``z`` is one seeded batch throughout. The
    caller's networks are untouched; the copies stay on their device."""
    g_net, d_net = copy.deepcopy(generator).train(), copy.deepcopy(discriminator).train()
    device = next(g_net.parameters()).device
    draws = torch.Generator().manual_seed(seed)
    codes = torch.randn(batch_size, latent_dim, generator=draws).to(device)
    order = torch.randperm(len(real), generator=draws)
    optimizer = torch.optim.Adam(d_net.parameters(), lr=lr, betas=betas)
    d_of_g, norms = [], {name: [] for name in GENERATOR_LOSSES}
    at = []
    for step in range(steps + 1):
        with torch.no_grad():
            fake = torch.sigmoid(g_net(codes))
        if step % every == 0 or step == steps:
            for name, loss in GENERATOR_LOSSES.items():
                g_net.zero_grad(set_to_none=True)
                loss.generator(d_net(torch.sigmoid(g_net(codes)))).backward()
                norms[name].append(_grad_norm(g_net))
            with torch.no_grad():
                d_of_g.append(float(torch.sigmoid(d_net(fake)).mean()))
            at.append(step)
        if step == steps:
            break
        index = order[(step * batch_size + torch.arange(batch_size)) % len(real)]
        optimizer.zero_grad(set_to_none=True)
        NONSATURATING.discriminator(d_net(real[index].to(device)), d_net(fake)).backward()
        optimizer.step()
    return Saturation(at, d_of_g, norms)


def saturation_figure(result: Saturation):
    """Left: each generator loss's gradient norm while D learns to reject the fakes (log scale). Right:
    the two losses against D(G(z)), with where the measurement ended."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from components.axes import plain_log

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    steps = np.array(result.steps)
    for name, color in (("non_saturating", "C0"), ("saturating", "C3")):
        left.plot(steps, result.grad_norm[name], color=color, label=name.replace("_", "-"))
    left.set_yscale("log")
    plain_log(left.yaxis)
    left.set_xlabel("discriminator steps from initialisation (G fixed)")
    left.set_ylabel("||grad of the G loss wrt G's weights||")
    twin = left.twinx()
    twin.plot(steps, result.d_of_g, color="0.5", linestyle="--", label="mean D(G(z))")
    twin.set_ylabel("mean D(G(z))", color="0.4")
    twin.set_ylim(0, 1)
    handles = left.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], fontsize=8, frameon=False)
    left.set_title("G's gradient while D learns", fontsize=10)

    d = np.linspace(0.001, 0.999, 400)
    right.plot(d, np.log(1 - d), color="C3", label="saturating: minimise log(1 - D)")
    right.plot(d, -np.log(d), color="C0", label="non-saturating: minimise -log D")
    right.axvline(result.d_of_g[-1], color="0.5", linestyle="--", label=f"D(G(z)) = {result.d_of_g[-1]:.3f}")
    right.set_xlabel("D(G(z))")
    right.set_ylabel("generator loss")
    right.legend(fontsize=8, frameon=False)
    right.set_title("flat where D rejects the fakes: the saturating loss", fontsize=10)
    fig.tight_layout()
    return fig
