"""GAN inversion and latent arithmetic (components/families/generative/latents.py) on known answers."""

from __future__ import annotations

import pytest
import torch

from components.families.generative.latents import arithmetic_success, class_means, invert, shift_to_every_class


def test_inversion_recovers_images_a_generator_can_make():
    torch.manual_seed(0)
    mixing = torch.randn(16, 4)

    def decode(codes, labels):
        return torch.sigmoid(codes @ mixing.T).view(-1, 1, 4, 4)

    targets = decode(torch.randn(8, 4), None)
    inversion = invert(decode, targets, None, width=4, steps=300, lr=0.05, generator=torch.Generator().manual_seed(1))
    assert inversion.mse < 1e-4 < inversion.start_mse
    torch.testing.assert_close(inversion.images, decode(inversion.codes, None))


def test_moving_to_every_class_adds_the_difference_of_class_means():
    codes, labels = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 10.0]]), torch.tensor([0, 0, 1])
    means = class_means(codes, labels, 2)
    torch.testing.assert_close(means, torch.tensor([[2.0, 0.0], [0.0, 10.0]]))
    moved, sources, targets = shift_to_every_class(codes, labels, means)
    assert sources.tolist() == [0, 0, 1] and targets.tolist() == [1, 1, 0]
    torch.testing.assert_close(moved, torch.tensor([[-1.0, 10.0], [1.0, 10.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        class_means(codes, labels, 3)


def test_arithmetic_success_is_one_when_class_is_a_direction_and_chance_when_it_is_not():
    """Codes = class centre + style; a classifier by nearest centre calls every moved code the target
    class. A conditional decoder that ignores its label keeps every moved image at its source."""
    centres = torch.eye(3) * 5
    labels = torch.arange(3).repeat(4)
    codes = centres[labels] + 0.3 * torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(0))

    def nearest_centre(images):
        return -torch.cdist(images, centres)

    success, source = arithmetic_success(nearest_centre, lambda z, y: z, codes, labels, 3, conditional=False)
    assert (success, source) == (1.0, 0.0)
    success, source = arithmetic_success(nearest_centre, lambda z, y: z, codes, labels, 3, conditional=True)
    assert (success, source) == (0.0, 1.0)
    success, _ = arithmetic_success(nearest_centre, lambda z, y: centres[y], codes, labels, 3, conditional=True)
    assert success == 1.0  # a decoder that draws its label
