import math

import pytest

from atomlens.physics import interaction_parameter, wavelength


@pytest.mark.parametrize(
    ("energy", "expected_pm"), [(80e3, 4.1757), (200e3, 2.5079), (300e3, 1.9687)]
)
def test_wavelength_known_values(energy, expected_pm):
    assert wavelength(energy) * 100 == pytest.approx(expected_pm, abs=5e-5)


@pytest.mark.parametrize("energy", [30e3, 60e3, 80e3, 120e3, 200e3, 300e3])
def test_wavelength_and_sigma_agree_with_abtem(energy):
    energy_module = pytest.importorskip("abtem.core.energy")
    assert wavelength(energy) == pytest.approx(energy_module.energy2wavelength(energy), rel=1e-7)
    assert interaction_parameter(energy) == pytest.approx(
        energy_module.energy2sigma(energy), rel=1e-7
    )


def test_wavelength_tends_to_non_relativistic_at_low_energy():
    # lambda = h / sqrt(2 m e V) = 12.2643 / sqrt(V) Å for e V << m c^2
    assert wavelength(10.0) == pytest.approx(12.2643 / math.sqrt(10.0), rel=1e-5)


@pytest.mark.parametrize("bad", [0, -200e3, float("nan"), float("inf")])
def test_bad_energy_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="Electron energy must be a positive number of eV"):
        wavelength(bad)
