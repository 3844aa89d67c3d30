import math

import numpy as np
import pytest
import torch

from atomlens.physics import Aberrations, aberration_function, polar_angles, spatial_frequencies
from atomlens.physics.optics.aberrations import MAGNITUDE_NAMES, ORDERS, random_aberrations

FULL = Aberrations(
    {f"C{n}{m}": 10.0 ** (n + 1) * (1 + 0.1 * m) for n, m in ORDERS}
    | {f"phi{n}{m}": 0.1 * (n + m) for n, m in ORDERS if m}
)


def test_defocus_alias_has_opposite_sign():
    ab = Aberrations(defocus=100.0)
    assert ab["C10"] == -100.0
    assert ab["defocus"] == 100.0


def test_negative_magnitude_folds_into_angle():
    a = Aberrations(C12=-50.0, phi12=0.2)
    b = Aberrations(C12=50.0, phi12=0.2 + math.pi / 2)
    assert a["C12"] == 50.0
    assert a.to_cartesian() == pytest.approx(b.to_cartesian())


@pytest.mark.parametrize("convert", ["cartesian", "ceos", "nion"])
def test_conversions_round_trip(convert):
    forward = getattr(FULL, f"to_{convert}")()
    back = getattr(Aberrations, f"from_{convert}")(forward)
    assert back.to_cartesian() == pytest.approx(FULL.to_cartesian(), rel=1e-12, abs=1e-9)


def test_ceos_names_and_divisors():
    ab = Aberrations(
        C10=-10.0,
        C12=20.0,
        phi12=0.3,
        C21=300.0,
        phi21=0.1,
        C23=40.0,
        C30=5e4,
        C32=800.0,
        phi32=0.2,
        C34=60.0,
        phi34=0.1,
    )
    ceos = ab.to_ceos()
    assert ceos["C1"] == -10.0
    assert ceos["A1"] == pytest.approx(20.0 * np.exp(2j * 0.3))
    assert abs(ceos["B2"]) == pytest.approx(100.0)  # B2 = C21 / 3
    assert abs(ceos["S3"]) == pytest.approx(200.0)  # S3 = C32 / 4
    assert ceos["C3"] == 5e4
    assert abs(ceos["A2"]) == pytest.approx(40.0)
    assert abs(ceos["A3"]) == pytest.approx(60.0)


def test_nion_is_cartesian_in_metres():
    nion = Aberrations(C12=100.0, phi12=math.pi / 8).to_nion()
    assert nion["C12.a"] == pytest.approx(100e-10 * math.cos(math.pi / 4))
    assert nion["C12.b"] == pytest.approx(100e-10 * math.sin(math.pi / 4))


@pytest.mark.parametrize("bad", [{"C13": 1.0}, {"c10": 1.0}, {"C10": float("nan")}, {"C10": "x"}])
def test_bad_names_and_values_are_rejected(bad):
    with pytest.raises(ValueError, match=r"[Aa]berration"):
        Aberrations(bad)


def test_misspelt_name_gets_a_suggestion():
    with pytest.raises(ValueError, match="Did you mean 'C10'"):
        Aberrations(c10=1.0)


def _grid(n=48, sampling=0.2, wavelength=0.025):
    ky, kx = spatial_frequencies((n, n), sampling)
    return polar_angles(ky, kx, wavelength)


@pytest.mark.parametrize("name", MAGNITUDE_NAMES)
def test_chi_of_each_coefficient_agrees_with_abtem(name):
    abtem = pytest.importorskip("abtem")
    n, sampling, energy = 48, 0.2, 200e3
    m = int(name[-1])
    values = {name: 10.0 ** (int(name[1]) + 2) * 0.37}
    if m:
        values[f"phi{name[1:]}"] = 0.41
    ab = Aberrations(values)
    from atomlens.physics import wavelength

    lam = wavelength(energy)
    alpha, phi = _grid(n, sampling, lam)
    ours = aberration_function(alpha, phi, ab, lam).numpy()
    ctf = abtem.CTF(energy=energy, gpts=(n, n), sampling=sampling, **ab.to_abtem())
    theirs = -np.angle(ctf._evaluate_kernel())  # abTEM kernel is exp(-i chi), indexed (x, y)
    wrapped = np.angle(np.exp(1j * (ours - theirs.T)))
    assert np.ptp(ours) > 3.0  # chi spans several radians, so a sign or handedness error shows
    assert np.abs(wrapped).max() < 2e-3  # abTEM works in float32


@pytest.mark.parametrize(("n", "m"), [o for o in ORDERS if o[1] > 0])
def test_chi_has_m_fold_rotational_symmetry(n, m):
    ab = Aberrations({f"C{n}{m}": 1e3, f"phi{n}{m}": 0.3})
    alpha = torch.full((1, 1), 0.02, dtype=torch.float64)
    phis = torch.linspace(0, 2 * math.pi, 17, dtype=torch.float64)[None]
    alpha = alpha.expand_as(phis)
    base = aberration_function(alpha, phis, ab, 0.025)
    turned = aberration_function(alpha, phis + 2 * math.pi / m, ab, 0.025)
    assert torch.allclose(base, turned, atol=1e-9)


def test_chi_batch_equals_singles():
    alpha, phi = _grid()
    sets = [Aberrations(C10=-100.0), FULL, Aberrations(C23=500.0, phi23=0.2)]
    batch = aberration_function(alpha, phi, sets, 0.025)
    for index, item in enumerate(sets):
        assert torch.allclose(batch[index], aberration_function(alpha, phi, item, 0.025))


def test_random_aberrations_stay_in_range_and_reproduce():
    ranges = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0), "C30": (1e4, 2e4)}
    first = random_aberrations(200, ranges, np.random.default_rng(3))
    again = random_aberrations(200, ranges, np.random.default_rng(3))
    assert first == again
    c10 = np.array([a["C10"] for a in first])
    assert c10.min() >= -500 and c10.max() <= 500 and c10.std() > 200
    phi12 = np.array([a["phi12"] for a in first])
    assert phi12.std() > 0.5  # angles are drawn when only the magnitude has a range


def test_random_aberrations_reject_bad_ranges():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="magnitude"):
        random_aberrations(2, {"C12": (-10.0, 10.0)}, rng)
    with pytest.raises(ValueError, match="low <= high"):
        random_aberrations(2, {"C10": (10.0, -10.0)}, rng)
