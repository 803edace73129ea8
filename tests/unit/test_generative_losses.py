"""Known answers for the GAN/VAE objectives and the networks' constraints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from components.families.generative.losses import (
    HINGE,
    LEAST_SQUARES,
    NONSATURATING,
    WASSERSTEIN,
    bernoulli_reconstruction,
    gaussian_reconstruction,
    gradient_penalty,
    kl_divergence,
)
from components.families.generative.models import VAE, Discriminator, Generator


class LinearCritic(nn.Module):
    """f(x) = <w, flatten(x)>: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.numel(), 1, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(weight.view(1, -1))

    def forward(self, x):
        return self.linear(x.flatten(1)).squeeze(1)


def _batches(n: int = 16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.rand(n, 1, 8, 8, generator=g)


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    w = torch.randn(64, generator=torch.Generator().manual_seed(1))
    real, fake = _batches()
    assert float(gradient_penalty(LinearCritic(w / w.norm()), real, fake).detach()) == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_is_the_squared_norm_excess_otherwise():
    w = torch.randn(64, generator=torch.Generator().manual_seed(2))
    real, fake = _batches()
    critic = LinearCritic(3 * w / w.norm())  # ||grad|| = 3 -> (3 - 1)^2 = 4
    penalty = gradient_penalty(critic, real, fake)
    assert float(penalty.detach()) == pytest.approx(4.0, rel=1e-5)
    penalty.backward()  # the graph reaches the critic's weights (create_graph=True)
    assert critic.linear.weight.grad is not None and float(critic.linear.weight.grad.norm()) > 0


def test_spectral_normalised_discriminator_layers_have_unit_largest_singular_value():
    torch.manual_seed(0)
    critic = Discriminator(1, 8, channels=16, stages=1, leak=0.2, spectral_norm=True)
    critic.train()
    for _ in range(30):  # power iteration runs once per training forward
        critic(torch.rand(4, 1, 8, 8))
    layers = [m for m in critic.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 3
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=1e-3)
    unnormalised = Discriminator(1, 8, channels=16, stages=1, leak=0.2, spectral_norm=False)
    sigmas = [float(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)) for m in unnormalised.modules()
              if isinstance(m, nn.Conv2d | nn.Linear)]
    assert max(abs(s - 1) for s in sigmas) > 0.05  # without it they are not 1


def test_kl_divergence_matches_the_closed_form():
    """KL(N(mu, s^2) || N(0, 1)) = log(1/s) + (s^2 + mu^2) / 2 - 1/2 per dimension."""
    mu = torch.tensor([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0]])
    sigma = torch.tensor([[1.0, 0.5, 2.0], [1.0, 3.0, 0.1]])
    expected = (torch.log(1 / sigma) + (sigma**2 + mu**2) / 2 - 0.5).sum(dim=1)
    torch.testing.assert_close(kl_divergence(mu, torch.log(sigma**2)), expected)
    assert float(kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max()) == 0.0
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sigma), torch.distributions.Normal(0.0, 1.0)).sum(dim=1)
    torch.testing.assert_close(kl_divergence(mu, torch.log(sigma**2)), reference)


def test_bernoulli_reconstruction_is_summed_cross_entropy():
    images = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2)
    logits = torch.tensor([[[[0.0, 0.0]]]])  # p = 1/2 each: 2 * log 2 nats
    assert float(bernoulli_reconstruction(logits, images)) == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())


def test_gan_losses_reward_the_right_side():
    """Each D loss is lower when real scores are high and fake ones low; each G loss falls as fake scores rise."""
    high, low = torch.full((8,), 2.0), torch.full((8,), -2.0)
    for loss in (NONSATURATING, WASSERSTEIN, LEAST_SQUARES, HINGE):
        assert loss.discriminator(high, low) < loss.discriminator(low, high)
        assert loss.generator(high) < loss.generator(low) or loss is LEAST_SQUARES
    assert float(NONSATURATING.discriminator(torch.zeros(4), torch.zeros(4))) == pytest.approx(
        2 * torch.log(torch.tensor(2.0)).item())  # D at chance: 2 log 2
    assert float(HINGE.discriminator(high, low)) == 0.0  # margins met
    assert float(LEAST_SQUARES.generator(torch.ones(4))) == 0.0


def test_shapes_of_the_shared_backbones():
    g = Generator(code_dim=32, out_channels=1, image_size=8, channels=16, stages=1)
    d = Discriminator(1, 8, channels=16, stages=1, leak=0.2, spectral_norm=False)
    images = torch.sigmoid(g(torch.randn(5, 32)))
    assert images.shape == (5, 1, 8, 8) and d(images).shape == (5,)
    cvae = VAE(1, 8, latent_dim=6, num_classes=10, g_channels=16, d_channels=16, stages=1, leak=0.2)
    logits, mu, logvar = cvae(images, torch.arange(5))
    assert logits.shape == (5, 1, 8, 8) and mu.shape == logvar.shape == (5, 6)
    with pytest.raises(ValueError, match="divisible"):
        Generator(32, 1, image_size=12, channels=16, stages=3)


def test_projection_discriminator_adds_the_label_embedding_inner_product():
    torch.manual_seed(0)
    d = Discriminator(1, 8, channels=16, stages=1, leak=0.2, spectral_norm=False, num_classes=10)
    images = torch.rand(4, 1, 8, 8)
    labels = torch.tensor([0, 3, 3, 9])
    features = d.trunk(images)
    expected = d.head(features).squeeze(1) + (d.embed.weight[labels] * features).sum(1)
    torch.testing.assert_close(d(images, labels), expected)
    assert not torch.allclose(d(images, labels), d(images, (labels + 1) % 10))  # the score depends on the label


def test_gaussian_reconstruction_is_the_negative_log_density():
    images = torch.rand(3, 1, 4, 4)
    logits = torch.randn(3, 1, 4, 4)
    density = torch.distributions.Normal(torch.sigmoid(logits), 0.2)
    expected = -density.log_prob(images).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_reconstruction(logits, images, 0.2), expected)


def test_the_saturating_generator_loss_vanishes_where_d_rejects_the_fakes():
    """d/ds of log(1 - sigmoid(s)) is -sigmoid(s) (-> 0 as D(G(z)) -> 0); of -log sigmoid(s), -(1 - sigmoid(s))."""
    from components.families.generative.losses import NONSATURATING, SATURATING

    scores = torch.tensor([-8.0, -2.0, 0.0, 2.0], requires_grad=True)
    for loss, slope in ((SATURATING, -torch.sigmoid(scores)), (NONSATURATING, -(1 - torch.sigmoid(scores)))):
        (grad,) = torch.autograd.grad(loss.generator(scores) * len(scores), scores)
        torch.testing.assert_close(grad, slope.detach())
    assert SATURATING.discriminator is NONSATURATING.discriminator  # only G's objective differs


def test_measured_generator_gradient_saturates_as_d_learns():
    """From init, D trained alone until it rejects the fakes: the saturating loss's gradient on G's
    weights falls far below the non-saturating one's; the caller's networks are untouched."""
    from components.families.generative.saturation import measure, saturation_figure

    torch.manual_seed(0)
    g, d = Generator(8, 1, 8, 8, 2), Discriminator(1, 8, 8, 2, 0.2, spectral_norm=False)
    before = [p.clone() for p in d.parameters()]
    rng = torch.get_rng_state()
    real = torch.zeros(64, 1, 8, 8)
    real[:, :, 2:6, 3:5] = 1.0  # a bar: easy for D to tell from the untrained G's blur
    result = measure(g, d, real, latent_dim=8, steps=40, lr=0.005, betas=(0.5, 0.999), seed=0, batch_size=32)
    assert result.steps == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert result.d_of_g[0] == pytest.approx(0.5, abs=0.05) and result.d_of_g[-1] < 0.05
    first = {name: norms[0] for name, norms in result.grad_norm.items()}
    assert first["saturating"] == pytest.approx(first["non_saturating"], rel=0.2)  # D(G(z)) ~ 1/2: alike
    final = result.final()
    assert final["saturation_grad_ratio"] > 10 and final["saturation_d_of_g"] == result.d_of_g[-1]
    assert all(torch.equal(a, b) for a, b in zip(before, d.parameters(), strict=True))
    assert torch.equal(torch.get_rng_state(), rng)  # its own seeded draws: the run's training is unchanged
    assert saturation_figure(result).axes
