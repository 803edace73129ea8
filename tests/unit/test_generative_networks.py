"""Known answers of the generative family's building blocks (VQ-VAE, ProGAN, StyleGAN)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from components.families.generative.progan import ProDiscriminator, ProGenerator, growth, minibatch_stddev
from components.families.generative.stylegan import AdaIN, StyleGenerator
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


def test_adain_output_has_the_styles_per_channel_mean_and_std():
    torch.manual_seed(0)
    adain = AdaIN(channels=3, w_dim=5)
    with torch.no_grad():
        adain.style.weight.normal_()  # a non-trivial style
    x, w = torch.randn(2, 3, 6, 6) * 4 + 2, torch.randn(2, 5)
    out = adain(x, w)
    scale, bias = adain.style(w).chunk(2, dim=1)
    torch.testing.assert_close(out.mean(dim=(2, 3)), bias, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-4, rtol=1e-4)


def test_fade_in_at_alpha_0_and_1_equals_the_low_and_high_resolution_paths():
    torch.manual_seed(0)
    generator = ProGenerator(latent_dim=6, out_channels=1, image_size=8, channels=4, stages=1, leak=0.2).eval()
    critic = ProDiscriminator(in_channels=1, image_size=8, channels=4, stages=1, leak=0.2, group_size=4).eval()
    codes, images = torch.randn(4, 6), torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        low_image = generator(codes, level=0)  # 4x4, upsampled to 8x8
        start = generator.input_conv(generator.input(codes).view(4, -1, 4, 4))
        high_image = generator.to_rgb[1](generator.blocks[0](F.interpolate(start, scale_factor=2)))
        critic.level = 0
        low_score = critic(images)
        high_features = critic.blocks[0](critic.from_rgb[1](images * 2 - 1))
        high_score = critic.final(minibatch_stddev(high_features, 4)).squeeze(1)
        critic.level = 1
        for alpha, image, score in ((0.0, low_image, low_score), (1.0, high_image, high_score)):
            generator.alpha.fill_(alpha)
            critic.alpha.fill_(alpha)
            torch.testing.assert_close(generator(codes, level=1), image)
            torch.testing.assert_close(critic(images), score)
        generator.alpha.fill_(0.5)
        assert not torch.allclose(generator(codes, level=1), low_image)
    assert torch.equal(low_image[..., ::2, ::2], low_image[..., 1::2, 1::2])  # nearest upsampling of 4x4


def test_minibatch_stddev_appends_the_group_standard_deviation():
    x = torch.stack([torch.zeros(2, 3, 3), torch.ones(2, 3, 3), torch.zeros(2, 3, 3), torch.ones(2, 3, 3)])
    out = minibatch_stddev(x, group_size=2)  # groups {0, 2} (all zeros) and {1, 3} (all ones): std 0
    assert out.shape == (4, 3, 3, 3)
    torch.testing.assert_close(out[:, 2], torch.full((4, 3, 3), 1e-4))
    mixed = minibatch_stddev(torch.stack([torch.zeros(1, 2, 2), 2 * torch.ones(1, 2, 2)]), group_size=4)
    torch.testing.assert_close(mixed[:, 1], torch.ones(2, 2, 2), atol=1e-4, rtol=0)  # std of {0, 2} is 1
    assert minibatch_stddev(torch.randn(3, 1, 2, 2), group_size=4).shape == (3, 2, 2, 2)  # groups of 3


def test_style_mixing_with_identical_styles_equals_no_mixing():
    torch.manual_seed(0)
    generator = StyleGenerator(latent_dim=6, out_channels=1, image_size=8, channels=4, stages=1, leak=0.2,
                               mapping_layers=2, mapping_lr_mul=0.01).eval()
    codes, other = torch.randn(3, 6), torch.randn(3, 6)
    with torch.no_grad():
        plain = generator(codes)
        for crossover in range(1, generator.num_styles):
            torch.testing.assert_close(generator(codes, codes, crossover), plain)
        assert not torch.allclose(generator(codes, other, 2), plain)  # a different code does change the image
        torch.testing.assert_close(generator(codes, other, generator.num_styles), plain)  # crossover past the end


def test_progan_grows_a_level_after_its_epochs_and_fades_it_in_linearly():
    epochs = (0, 2.9, 3, 4, 5, 7.5, 8, 9, 50)
    timeline = [(epoch, growth(epoch, stages=2, level_epochs=3, fade_epochs=2)) for epoch in epochs]
    assert timeline == [(0, (0, 1.0)), (2.9, (0, 1.0)), (3, (1, 0.0)), (4, (1, 0.5)), (5, (1, 1.0)), (7.5, (1, 1.0)),
                        (8, (2, 0.0)), (9, (2, 0.5)), (50, (2, 1.0))]
    assert growth(3, stages=1, level_epochs=3, fade_epochs=0) == (1, 1.0)  # no fade: the new level at once
