"""AberrationEstimate conversions and the combination of Ronchigrams at known offsets."""

import math

import numpy as np
import pytest

from atomlens.calibrate import AberrationEstimate, combine
from atomlens.physics import Aberrations


def _estimate(values, sigma=None, **kwargs):
    values = np.asarray(values, dtype=float)
    sigma = np.full(8, 10.0) if sigma is None else np.asarray(sigma, dtype=float)
    return AberrationEstimate(values, sigma, 0.97, True, **kwargs)


def test_polar_terms_and_abtem_keys_round_trip_through_aberrations():
    truth = Aberrations(C10=-250.0, C12=80.0, phi12=0.4, C21=600.0, phi21=1.0, C23=300.0,
                        phi23=-0.2, C30=2e4)  # fmt: skip
    cart = truth.to_cartesian()
    values = [cart[k] for k in ("C10", "C12a", "C12b", "C21a", "C21b", "C23a", "C23b", "C30")]
    result = _estimate(values)
    abtem = result.to_abtem(std=False)
    assert abtem["C10"] == pytest.approx(-250.0) and abtem["C12"] == pytest.approx(80.0)
    assert abtem["phi12"] == pytest.approx(0.4) and abtem["C21"] == pytest.approx(600.0)
    assert abtem["phi23"] == pytest.approx(-0.2 % (2 * math.pi / 3))
    assert result.aberrations() == Aberrations.from_cartesian(result.cartesian())
    ceos = result.to_ceos()
    assert abs(ceos["B2"]) == pytest.approx(200.0)  # CEOS B2 = C21 / 3
    assert ceos["C3"] == pytest.approx(2e4)


def test_uncertainties_propagate_to_magnitude_and_angle():
    values = np.array([0.0, 100.0, 0.0, 0, 0, 0, 0, 0])
    sigma = np.array([5.0, 4.0, 10.0, 1, 1, 1, 1, 1])
    polar = _estimate(values, sigma).polar()
    assert polar["C12"][1] == pytest.approx(4.0)  # along the vector: sigma of a
    assert polar["phi12"][1] == pytest.approx(10.0 / 100.0 / 2)  # across it, divided by m
    zero = _estimate(np.zeros(8), sigma).polar()
    assert zero["phi12"][1] == pytest.approx(math.pi / 2)  # no direction at all


def test_json_table_and_text_carry_units_and_the_sign_verdict():
    values = np.array([-300.0, 50.0, 0, 0, 0, 0, 0, 1e4])
    note = ("one Ronchigram cannot fix the overall sign",)
    ambiguous = AberrationEstimate(values, np.full(8, 10.0), 0.6, False, -values, notes=note)
    record = ambiguous.to_dict()
    assert record["C10"] == -300.0 and record["C10_std"] == 10.0
    assert record["sign_resolved"] is False and record["alternative"]["C10"] == 300.0
    table = ambiguous.to_table(truth=Aberrations(C10=-310.0, C12=50.0, C30=1e4))
    row = table.set_index("term").loc["C10"]
    assert row["unit"] == "nm" and row["value"] == pytest.approx(-30.0)
    assert row["truth"] == pytest.approx(-31.0)
    assert table.set_index("term").loc["C30", "unit"] == "µm"
    text = ambiguous.describe()
    assert "NOT resolved" in text and "other solution: C10 30.00 nm" in text
    with pytest.raises(ValueError, match="no alternative"):
        _estimate(values).cartesian(alternative=True)


def _observations(truth, offsets, flips, noise, rng):
    means = np.array([s * (truth + o) for s, o in zip(flips, offsets, strict=True)])
    return means + rng.normal(0, noise, means.shape)


def test_a_defocus_pair_fixes_the_sign_that_each_image_leaves_open():
    rng = np.random.default_rng(0)
    truth = np.array([120.0, 40.0, -30.0, 300.0, 100.0, -200.0, 50.0, 2e4])
    offsets = np.zeros((2, 8))
    offsets[1, 0] = 200.0  # +20 nm of C10 on the second image
    sigma = np.tile([5.0, 5, 5, 50, 50, 50, 50, 2e3], (2, 1))
    for flips in ([1, 1], [1, -1], [-1, 1], [-1, -1]):
        means = _observations(truth, offsets, flips, sigma[0] / 2, rng)
        values, error, probability, alternative = combine(
            means, sigma, np.array([0.5, 0.5]), offsets
        )
        np.testing.assert_allclose(values, truth, atol=4 * sigma[0].max())
        assert abs(values[0] - truth[0]) < 10
        assert probability > 0.99 and alternative is None
        assert np.all(error <= sigma[0])


def test_without_an_offset_the_sign_stays_open():
    rng = np.random.default_rng(1)
    truth = np.array([120.0, 40.0, -30.0, 0, 0, 0, 0, 0])
    sigma = np.tile([5.0, 5, 5, 50, 50, 50, 50, 2e3], (2, 1))
    means = _observations(truth, np.zeros((2, 8)), [1, -1], 1.0, rng)
    values, _, probability, alternative = combine(
        means, sigma, np.array([0.5, 0.5]), np.zeros((2, 8))
    )
    assert probability == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(alternative, -values)


def test_a_known_sign_of_c30_fixes_the_overall_sign_only_when_c30_is_clear():
    from atomlens.calibrate.estimate import _single

    mean = np.array([-300.0, 50.0, 0, 0, 0, 0, 0, -5e4])
    sigma = np.array([30.0, 10, 10, 50, 50, 50, 50, 1e4])
    values, probability, resolved, notes = _single(mean, sigma, 0.5, 1, 0.9)
    np.testing.assert_allclose(values, -mean)  # C30 > 0 as given: every coefficient flips
    assert probability == 1.0 and resolved and "fixed by the given sign of C30" in notes[0]
    unclear = sigma.copy()
    unclear[7] = 4e4
    values, probability, resolved, notes = _single(mean, unclear, 0.5, 1, 0.9)
    assert not resolved and probability == 0.5 and "too small" in notes[0]
