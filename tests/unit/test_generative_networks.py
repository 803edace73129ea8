"""Known answers of the generative family's building blocks (VQ-VAE, ProGAN, StyleGAN)."""

from __future__ import annotations

import math

import torch

from components.families.generative.vqvae import CodePrior, VectorQuantizer, perplexity


def test_straight_through_estimator_passes_the_decoders_gradient_to_the_encoder_unchanged():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(num_codes=8, code_dim=4)
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q, _, _, indices = quantizer(z_e)
    torch.testing.assert_close(z_q, quantizer.lookup(indices))  # forward: the nearest codebook vectors
    upstream = torch.randn_like(z_q)
    (z_q * upstream).sum().backward()
    torch.testing.assert_close(z_e.grad, upstream)  # backward: the identity
    assert quantizer.codebook.weight.grad is None  # the codebook learns from its own loss only


def test_quantizer_picks_the_nearest_code_and_its_losses_are_squared_distances():
    quantizer = VectorQuantizer(num_codes=3, code_dim=2)
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    z_e = torch.tensor([[0.9, 1.2], [-1.5, 0.1]]).T.reshape(1, 2, 1, 2)  # two positions
    _, codebook_loss, commitment_loss, indices = quantizer(z_e)
    assert indices.tolist() == [[[1, 2]]]
    expected = (0.1**2 + 0.2**2) + (0.5**2 + 0.1**2)
    assert math.isclose(codebook_loss.item(), expected, rel_tol=1e-5)
    assert math.isclose(commitment_loss.item(), expected, rel_tol=1e-5)


def test_prior_is_causal_and_samples_by_inverting_its_cdf():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=5, positions=4, width=8, layers=1, heads=2, dropout=0.0).eval()
    codes = torch.randint(0, 5, (3, 4))
    changed = codes.clone()
    changed[:, 2] = (codes[:, 2] + 1) % 5
    with torch.no_grad():
        torch.testing.assert_close(prior(codes)[:, :3], prior(changed)[:, :3])  # position p sees codes < p only
        uniforms = torch.tensor([[1e-6] * 4, [1 - 1e-6] * 4])
        first = prior(torch.zeros(2, 4, dtype=torch.long))[:, 0].softmax(-1)
        drawn = prior.sample(uniforms)
    nonzero = (first[0] > 1e-6).nonzero()
    assert drawn[0, 0] == nonzero.min() and drawn[1, 0] == (first[1] > 1e-6).nonzero().max()


def test_perplexity_counts_equally_used_codes():
    assert math.isclose(perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0, 0.0])), 4.0)
    assert math.isclose(perplexity(torch.tensor([7.0, 0.0, 0.0])), 1.0)
