import numpy as np
import pytest
import torch

from atomlens.calibrate.symmetry import (
    COEFFICIENTS,
    ELEMENTS,
    azimuth_map,
    transform_coefficients,
    transform_grids,
)
from atomlens.physics import Aberrations
from atomlens.physics.optics.transfer import aberration_function, polar_angles

WAVELENGTH = 0.0251  # [Å]


def _chi_map(coefficients, size=33):
    angles = (np.arange(size) - size // 2) * 1e-3  # [rad], centre on a pixel
    ky = torch.tensor(angles)[:, None] / WAVELENGTH
    kx = torch.tensor(angles)[None, :] / WAVELENGTH
    alpha, phi = polar_angles(ky, kx, WAVELENGTH)
    aberrations = Aberrations.from_cartesian(dict(zip(COEFFICIENTS, coefficients, strict=True)))
    return aberration_function(alpha, phi, aberrations, WAVELENGTH).numpy()


@pytest.mark.parametrize(("turns", "transpose"), ELEMENTS)
def test_transformed_coefficients_give_the_transformed_aberration_function(turns, transpose):
    rng = np.random.default_rng(turns + 4 * transpose)
    coefficients = rng.normal(size=8) * np.array([500, 200, 200, 1e3, 1e3, 1e3, 1e3, 5e4])
    expected = transform_grids(_chi_map(coefficients), turns, transpose)
    actual = _chi_map(transform_coefficients(coefficients, turns, transpose))
    np.testing.assert_allclose(actual, expected, atol=1e-9 * np.abs(expected).max())


def test_round_terms_are_invariant_and_magnitudes_are_kept():
    coefficients = np.array([100.0, 30.0, -40.0, 5.0, 12.0, -7.0, 24.0, 3e4])
    for turns, transpose in ELEMENTS:
        out = transform_coefficients(coefficients, turns, transpose)
        assert out[0] == coefficients[0] and out[7] == coefficients[7]
        for a in (1, 3, 5):
            assert np.hypot(*out[a : a + 2]) == pytest.approx(np.hypot(*coefficients[a : a + 2]))


def test_a_quarter_turn_rotates_two_fold_astigmatism_by_half_a_turn():
    # C12 has two-fold symmetry: turning the image by 90 degrees flips the sign of (a, b).
    out = transform_coefficients(np.array([0, 50.0, 20.0, 0, 0, 0, 0, 0]), 1, False)
    np.testing.assert_allclose(out[1:3], [-50.0, -20.0], atol=1e-12)
    assert azimuth_map(1, False) == (1, -np.pi / 2)
