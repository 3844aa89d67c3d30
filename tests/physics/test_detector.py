import numpy as np
import pytest

from atomlens.physics import Detector

FLAT = np.full((256, 256), 1.0 / 256**2)


def test_poisson_variance_equals_mean():
    counts = Detector(dose=256**2 * 50.0).apply(FLAT, np.random.default_rng(0))
    assert counts.mean() == pytest.approx(50.0, rel=0.01)
    assert counts.var() == pytest.approx(50.0, rel=0.03)


def test_gain_scales_mean_and_variance():
    counts = Detector(dose=256**2 * 50.0, gain=4.0).apply(FLAT, np.random.default_rng(1))
    assert counts.mean() == pytest.approx(200.0, rel=0.01)
    assert counts.var() == pytest.approx(16 * 50.0, rel=0.03)


def test_readout_noise_and_dark_offset():
    counts = Detector(dose=None, dark_offset=100.0, readout_noise=3.0).apply(
        np.zeros((256, 256)), np.random.default_rng(2)
    )
    assert counts.mean() == pytest.approx(100.0, abs=0.05)
    assert counts.std() == pytest.approx(3.0, rel=0.02)


def test_psf_lowers_noise_and_keeps_the_sum():
    rng = np.random.default_rng(3)
    sharp = Detector(dose=256**2 * 50.0).apply(FLAT, rng)
    blurred = Detector(dose=256**2 * 50.0, psf_sigma=1.5).apply(FLAT, np.random.default_rng(3))
    assert blurred.var() < 0.2 * sharp.var()
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=1e-4)


def test_same_seed_same_noise():
    detector = Detector(dose=1e5, readout_noise=1.0)
    a = detector.apply(FLAT, np.random.default_rng(7))
    b = detector.apply(FLAT, np.random.default_rng(7))
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"dose": -5}, "Dose"), ({"gain": 0}, "gain"), ({"readout_noise": -1}, "readout_noise")],
)
def test_bad_detector_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detector(**kwargs)


def test_bad_intensity():
    with pytest.raises(ValueError, match="non-negative"):
        Detector().apply(-FLAT, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        Detector().apply(np.zeros((2, 4, 4)), np.random.default_rng(0))
