"""The structure-keeping losses of the enhance task: known values and invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atomlens.enhance.network import (
    ARCHITECTURES,
    atom_mask,
    blur,
    build_network,
    characteristic_loss,
    frequency_loss,
    lowpass_loss,
    masked_l1,
)
from atomlens.nn.tiling import predict_padded


def _lattice(shift: float = 0.0, size: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    image = torch.cos(torch.pi * (y - shift) / 8) ** 8 * torch.cos(torch.pi * x / 8) ** 8
    return image[None, None]


def test_the_frequency_loss_ignores_a_circular_shift():
    """Amplitude spectra do not see where the lattice sits, only what it is."""
    image = _lattice()
    assert frequency_loss(image.roll(3, -1), image).item() < 1e-6
    assert frequency_loss(image + 0.3 * torch.randn_like(image), image).item() > 0.05


def test_the_characteristic_loss_is_blind_to_pixel_order_not_to_values():
    rng = torch.Generator().manual_seed(0)
    values = torch.randn(2, 1, 32, 32, generator=rng)
    shuffled = values.flatten()[torch.randperm(values.numel(), generator=rng)].view_as(values)
    assert characteristic_loss(shuffled, values).item() < 1e-10
    assert characteristic_loss(values * 3, values).item() > 1e-2


def test_the_atom_mask_marks_the_brightest_share():
    image = torch.arange(100.0).view(1, 1, 10, 10)
    mask = atom_mask(image, share=0.3)
    assert mask.sum().item() == 30
    assert mask.flatten()[-30:].eq(1).all()


def test_masked_l1_weighs_atom_regions():
    target = torch.zeros(1, 1, 2, 2)
    output = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert masked_l1(output, target, torch.zeros_like(mask), 4.0).item() == pytest.approx(0.25)
    # weights 5, 1, 1, 1: the error on the atom pixel counts 5 / 8
    assert masked_l1(output, target, mask, 4.0).item() == pytest.approx(5 / 8)


def test_the_lowpass_loss_sees_a_shifted_column_not_an_offset_or_fine_noise():
    image = _lattice()
    assert lowpass_loss(image + 5.0, image).item() < 1e-6
    fine = torch.from_numpy(np.indices((64, 64)).sum(0) % 2 * 0.2 - 0.1).float()[None, None]
    assert lowpass_loss(image + fine, image).item() < 1e-4  # pixel-scale detail is free
    assert lowpass_loss(_lattice(shift=1.0), image).item() > 1e-2  # a 1 px shift is not


def test_blur_keeps_the_mean_and_shape():
    image = torch.rand(2, 1, 40, 24)
    blurred = blur(image)
    assert blurred.shape == image.shape
    assert blurred.mean().item() == pytest.approx(image.mean().item(), abs=0.02)


def test_the_compact_pair_is_small_and_runs_on_any_tile():
    pair = build_network("compact")
    count = sum(p.numel() for p in pair.parameters())
    assert count < 400_000  # 1.6 MB in float32: shippable
    out = predict_padded(pair, np.random.default_rng(0).normal(size=(2, 37, 50)))
    assert out.shape == (2, 37, 50) and out.dtype == np.float32
    with pytest.raises(ValueError, match="size must be one of"):
        build_network("huge")
    assert set(ARCHITECTURES) == {"compact"}
