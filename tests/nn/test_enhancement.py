"""The CycleGAN generator pair of thesis 003: shapes, identity at start, size-free branches."""

from __future__ import annotations

import pytest
import torch

from atomlens.nn import CycleGenerator, CyclePair, SpectralFilter, least_squares_losses


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (128, 36)])
def test_the_generator_keeps_any_shape_of_multiples_of_four(shape):
    generator = CycleGenerator(channels=8, width=16, depth=1, heads=2, modes=4)
    out = generator(torch.randn(2, 1, *shape))
    assert out.shape == (2, 1, *shape)


def test_a_new_generator_is_the_identity():
    """The last layer starts at zero: training starts from 'change nothing'."""
    pair = CyclePair(channels=8, width=16, depth=1, heads=2, modes=4)
    x = torch.randn(3, 1, 32, 32)
    assert torch.equal(pair(x), x)
    assert torch.equal(pair.to_experiment(x), x)


def test_the_generator_refuses_a_width_the_heads_do_not_divide():
    with pytest.raises(ValueError, match="multiple of heads"):
        CycleGenerator(width=30, heads=4)


def test_the_spectral_filter_is_a_pointwise_mix_before_it_learns():
    """With zero filter weights every mode passes unchanged: the branch is its 1x1 mix."""
    layer = SpectralFilter(channels=4, modes=3)
    x = torch.randn(2, 4, 10, 14)
    assert torch.allclose(layer(x), layer.mix(x), atol=1e-5)


def test_the_spectral_filter_acts_only_on_the_low_modes():
    layer = SpectralFilter(channels=1, modes=2)
    with torch.no_grad():
        layer.weight.fill_(-1.0)  # gain 1 + (-1 - 1j): low modes changed
        layer.mix.weight.fill_(1.0)
        layer.mix.bias.zero_()
    _, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    fast = torch.cos(2 * torch.pi * 8 * x / 32)[None, None]  # mode 8: far above the 2 kept
    assert torch.allclose(layer(fast), fast, atol=1e-5)
    slow = torch.cos(2 * torch.pi * 1 * x / 32)[None, None]
    assert not torch.allclose(layer(slow), slow, atol=1e-2)


def test_least_squares_losses_known_values():
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert least_squares_losses(ones, zeros).item() == 0.0  # a perfect critic
    assert least_squares_losses(zeros, ones).item() == 1.0  # a critic fooled both ways
    assert least_squares_losses(None, ones).item() == 0.0  # the generator fooled it
    assert least_squares_losses(None, zeros).item() == 1.0
