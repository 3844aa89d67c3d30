import math

import numpy as np
import pytest
import torch

from atomlens.core.energy import wavelength
from atomlens.physics.imaging.multislice import fresnel_propagator, multislice
from atomlens.physics.optics.transfer import spatial_frequencies


def _slices(count, shape, seed):
    rng = np.random.default_rng(seed)
    phases = torch.from_numpy(rng.uniform(-1.0, 1.0, (count, *shape)).astype(np.float32))
    return [torch.polar(torch.ones_like(p), p) for p in phases]


def test_propagator_is_a_pure_phase():
    ky, kx = spatial_frequencies((32, 48), 0.1)
    propagator = fresnel_propagator(ky, kx, wavelength(200e3), 5.0)
    assert propagator.shape == (32, 48) and propagator.dtype == torch.complex64
    assert torch.allclose(propagator.abs(), torch.ones(32, 48), atol=1e-6)
    assert propagator[0, 0] == 1  # no phase at k = 0
    k2 = float(ky[1, 0] ** 2)
    expected = -math.pi * wavelength(200e3) * 5.0 * k2
    assert math.isclose(float(propagator[1, 0].angle()), expected, abs_tol=1e-6)


@pytest.mark.parametrize("propagate_last", [False, True])
def test_multislice_conserves_the_norm_without_an_aperture(propagate_last):
    shape = (64, 64)
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(
        (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    )
    ky, kx = spatial_frequencies(shape, 0.2)
    propagator = fresnel_propagator(ky, kx, wavelength(80e3), 2.0)
    out = multislice(wave, _slices(12, shape, 1), propagator, propagate_last=propagate_last)
    norm_in = float((wave.abs() ** 2).sum())
    norm_out = float((out.abs() ** 2).sum())
    assert norm_out == pytest.approx(norm_in, rel=1e-5)
    assert not torch.allclose(out, wave)


def test_multislice_order_transmit_then_propagate():
    shape = (16, 16)
    wave = torch.ones(shape, dtype=torch.complex64)
    ky, kx = spatial_frequencies(shape, 0.3)
    propagator = fresnel_propagator(ky, kx, wavelength(300e3), 4.0)
    slices = _slices(3, shape, 2)
    expected = wave
    for index, transmission in enumerate(slices):
        if index > 0:
            expected = torch.fft.ifft2(torch.fft.fft2(expected) * propagator)
        expected = expected * transmission
    assert torch.equal(multislice(wave, iter(slices), propagator), expected)
    last = torch.fft.ifft2(torch.fft.fft2(expected) * propagator)
    assert torch.equal(multislice(wave, slices, propagator, propagate_last=True), last)
    # one slice needs no propagator; more than one does
    assert torch.equal(multislice(wave, slices[:1], None), wave * slices[0])
    with pytest.raises(ValueError, match="propagator"):
        multislice(wave, slices, None)
