import numpy as np
import pytest

from atomlens.physics import projected_potential, scattering_factor
from atomlens.physics.potentials.scattering import POTENTIAL_PER_SCATTERING_FACTOR


def test_potential_constant_is_h2_over_2pi_m0_e():
    # Kirkland: 2 pi a0 e = 2 pi * 0.529177 Å * 14.39964 V Å = 47.8780 V Å^2
    assert POTENTIAL_PER_SCATTERING_FACTOR == pytest.approx(47.878, rel=1e-4)


def test_scattering_factor_agrees_with_abtem():
    parametrizations = pytest.importorskip("abtem.parametrizations")
    lobato = parametrizations.LobatoParametrization()
    k = np.linspace(0, 4, 9)
    for element in ("C", "Si", "Sr", "Au"):
        theirs = lobato.scattering_factor(element)(k**2)  # abTEM takes k^2
        assert scattering_factor(element, k) == pytest.approx(theirs, rel=1e-5)  # abTEM: float32


def test_scattering_factor_grows_with_z_and_falls_with_k():
    k = np.array([0.0, 1.0, 3.0])
    carbon, gold = scattering_factor("C", k), scattering_factor(79, k)
    assert np.all(gold > carbon)
    assert np.all(np.diff(carbon) < 0)


def test_mean_projected_potential_is_exact():
    shape, sampling = (64, 80), 0.12
    positions = np.random.default_rng(0).uniform(0, 7, (30, 2))
    potential = projected_potential(positions, "Si", shape, sampling)
    area = shape[0] * shape[1] * sampling**2
    expected = 30 * POTENTIAL_PER_SCATTERING_FACTOR * scattering_factor("Si", np.array(0.0)) / area
    assert potential.mean() == pytest.approx(float(expected), rel=1e-9)


def test_subpixel_position_is_kept():
    shape, sampling = (96, 96), 0.1
    potential = projected_potential([[4.83, 5.27]], "Au", shape, sampling)
    rows, cols = np.indices(shape)
    core = potential > np.percentile(potential, 99.5)
    weights = potential * core
    centre = np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum() * sampling
    assert centre == pytest.approx([4.83, 5.27], abs=0.01)


def test_projected_potential_agrees_with_abtem_at_low_frequency():
    abtem = pytest.importorskip("abtem")
    ase = pytest.importorskip("ase")
    n, sampling = 96, 0.1
    extent = n * sampling
    yx = np.array([[4.43, 3.21], [2.1, 7.77], [7.0, 6.1]])
    atoms = ase.Atoms("CSiAu", positions=[[x, y, 2.0] for y, x in yx], cell=[extent, extent, 4.0])
    theirs = (
        abtem.Potential(
            atoms, gpts=(n, n), projection="infinite", slice_thickness=4.0, parametrization="lobato"
        )
        .build()
        .compute()
        .array.sum(0)
        .T
    )
    ours = projected_potential(yx, [6, 14, 79], (n, n), sampling)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, sampling), np.fft.fftfreq(n, sampling)))
    low = k < 1.0  # [1/Å]; abTEM's real-space potential is smoothed slightly above this

    def lowpass(v):
        return np.fft.ifft2(np.fft.fft2(v) * low).real

    assert np.linalg.norm(lowpass(ours - theirs)) / np.linalg.norm(lowpass(theirs)) < 0.02
    assert ours.mean() == pytest.approx(theirs.mean(), rel=1e-4)


def test_bad_atoms_are_rejected():
    with pytest.raises(ValueError, match="chemical symbol"):
        projected_potential([[1.0, 1.0]], "Xx", (8, 8), 0.1)
    with pytest.raises(ValueError, match="shape"):
        projected_potential([[1.0, 1.0, 1.0]], "C", (8, 8), 0.1)
    with pytest.raises(ValueError, match="Z = 120"):
        projected_potential([[1.0, 1.0]], [120], (8, 8), 0.1)
