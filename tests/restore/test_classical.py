"""Classical baselines: they denoise, keep the input's units, and estimate their own noise."""

import numpy as np
import pytest

from atomlens.restore import classical
from atomlens.restore.classical import (
    CLASSICAL,
    NoiseModel,
    anscombe,
    estimate_noise,
    inverse_anscombe,
)

FAST = ("gaussian", "wiener", "nlm")


def lattice(size: int = 96, spacing: float = 8.0, width: float = 2.0, background: float = 0.2):
    """Gaussian columns on a square grid over a flat background, peak 1 above it [relative]."""
    y, x = np.mgrid[:size, :size].astype(float)
    centres = np.arange(spacing / 2, size, spacing)
    image = np.full((size, size), background)
    for cy in centres:
        for cx in centres:
            image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
    return image


def rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, float) - b) ** 2)))


@pytest.fixture(scope="module")
def noisy():
    """Poisson counts of a lattice at 40 e-/px peak, and the expected counts."""
    truth = 40.0 * lattice()
    return np.random.default_rng(1).poisson(truth).astype(np.float32), truth


def methods():
    params = [pytest.param(name, id=name) for name in FAST]
    params.append(pytest.param("bm3d", id="bm3d", marks=pytest.mark.slow))
    return params


def skip_without_bm3d(name):
    if name == "bm3d":
        pytest.importorskip("bm3d")


@pytest.mark.parametrize("name", methods())
def test_each_method_reduces_the_error_of_poisson_counts(name, noisy):
    skip_without_bm3d(name)
    counts, truth = noisy
    restored = CLASSICAL[name](counts)
    assert restored.shape == counts.shape and restored.dtype == np.float32
    assert rms(restored, truth) < 0.7 * rms(counts, truth)


@pytest.mark.parametrize("name", methods())
def test_scale_and_offset_carry_through(name, noisy):
    skip_without_bm3d(name)
    counts, _ = noisy
    small = CLASSICAL[name](counts[:64, :64])
    large = CLASSICAL[name](counts[:64, :64].astype(np.float64) * 1000.0 + 500.0)
    spread = float(np.ptp(small))
    assert np.max(np.abs((large - 500.0) / 1000.0 - small)) < 0.02 * spread


@pytest.mark.parametrize("name", methods())
def test_a_constant_image_stays_constant(name):
    skip_without_bm3d(name)
    image = np.full((40, 48), 123.0, dtype=np.float32)
    np.testing.assert_allclose(CLASSICAL[name](image), image, rtol=1e-6)


def lattice_beside_vacuum():
    """60 e- peak columns on 6 e- background, a 64 px strip of vacuum (0 e-) on the left."""
    electrons = 60.0 * lattice(size=160, width=2.5, background=0.1)
    electrons[:, :64] = 0.0
    return electrons


def test_noise_model_recovers_gain_and_read_noise():
    # The vacuum pins the read noise; the intercept of a lattice alone is poorly determined.
    rng = np.random.default_rng(2)
    electrons = lattice_beside_vacuum()
    counts = 4.0 * rng.poisson(electrons) + rng.normal(0.0, 6.0, electrons.shape)
    model = estimate_noise(counts)
    assert model.gain == pytest.approx(4.0, rel=0.1)
    assert model.read_sigma == pytest.approx(6.0, rel=0.1)
    assert model.offset == 0.0


def test_noise_model_with_a_known_offset_and_its_invariance():
    rng = np.random.default_rng(3)
    electrons = lattice_beside_vacuum()
    counts = 4.0 * rng.poisson(electrons) + rng.normal(0.0, 6.0, electrons.shape)
    shifted = estimate_noise(counts + 300.0, offset=300.0)
    assert shifted.gain == pytest.approx(4.0, rel=0.1)
    assert shifted.read_sigma == pytest.approx(6.0, rel=0.1)
    # Unknown offset: the intercept (all the transforms use) moves by -gain * 300.
    free = estimate_noise(counts + 300.0)
    assert free.intercept == pytest.approx(36.0 - 4.0 * 300.0, rel=0.1)


def test_pure_gaussian_noise_has_no_gain():
    image = np.random.default_rng(4).normal(1000.0, 5.0, (128, 128))
    model = estimate_noise(image)
    assert model.gain < 0.01
    assert model.read_sigma == pytest.approx(5.0, rel=0.05)


@pytest.mark.parametrize("read_sigma", [0.0, 2.0])
def test_vst_stabilises_and_its_inverse_is_unbiased(read_sigma):
    rng = np.random.default_rng(5)
    noise = NoiseModel(gain=3.0, offset=100.0, read_sigma=3.0 * read_sigma)
    for mean_electrons in (3.0, 30.0, 300.0):
        counts = (
            3.0 * rng.poisson(mean_electrons, 200_000)
            + 100.0
            + rng.normal(0, noise.read_sigma, 200_000)
        )
        stabilised = anscombe(counts, noise)
        assert stabilised.std() == pytest.approx(1.0, abs=0.04)
        expected = inverse_anscombe(stabilised.mean(), noise)
        assert expected == pytest.approx(3.0 * mean_electrons + 100.0, rel=0.01)


def test_vst_round_trip_of_expected_values():
    noise = NoiseModel(gain=2.0, offset=10.0, read_sigma=1.0)
    counts = np.array([50.0, 500.0, 5000.0])
    # f = 2 sqrt((z - offset) / gain + 3/8 + (read / gain)^2), solved for z
    f = anscombe(counts, noise)
    algebraic = noise.gain * ((f / 2) ** 2 - 0.375 - 0.25) + noise.offset
    assert np.allclose(algebraic, counts, rtol=1e-12)
    # The exact unbiased inverse of a noise-free value sits 1/8 + 1/8 e- above the algebraic one
    # at high counts (-1/8 against -3/8 in the formulas): 0.5 counts at gain 2.
    back = inverse_anscombe(f, noise)
    assert back[-1] - counts[-1] == pytest.approx(0.5, abs=0.01)  # + O(1/D) terms


def test_gaussian_width_follows_the_noise(noisy):
    counts, _ = noisy
    model = estimate_noise(counts)
    quiet, _ = classical.sure_sigma(40.0 * lattice(), NoiseModel(1e-6, 0.0, 0.0))
    loud, _ = classical.sure_sigma(counts, model)
    assert quiet < loud


def test_feature_period_of_a_lattice():
    assert classical.feature_period(lattice(size=128, spacing=8.0)) == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.full((32, 32), np.nan), "NaN"),
        (np.ones(32), "2-D"),
        (np.ones((4, 32, 32)), "2-D"),
    ],
)
@pytest.mark.parametrize("name", FAST)
def test_bad_input_is_refused(name, image, words):
    with pytest.raises(ValueError, match=words):
        CLASSICAL[name](image)


def test_bm3d_rejects_a_bad_sigma(noisy):
    pytest.importorskip("bm3d")
    with pytest.raises(ValueError, match="sigma"):
        classical.bm3d(noisy[0][:32, :32], sigma=-1.0)


def test_bm3d_missing_package_says_how_to_install(monkeypatch, noisy):
    import builtins

    real_import = builtins.__import__

    def no_bm3d(name, *args, **kwargs):
        if name == "bm3d":
            raise ImportError("no module named bm3d")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bm3d)
    with pytest.raises(ImportError, match="pip install bm3d; licensed for non-commercial use"):
        classical.bm3d(noisy[0])


def test_outliers_are_replaced_and_columns_are_not():
    rng = np.random.default_rng(6)
    truth = 5000.0 * lattice(width=1.2)  # sharp, bright columns: no outliers
    truth[:, 80:] = 1000.0  # and a flat strip
    counts = rng.poisson(truth).astype(float)
    model = estimate_noise(counts)
    assert np.array_equal(classical.remove_outliers(counts, model), counts)
    spiked = counts.copy()
    # between the columns (centres at 4 + 8 k px)
    spiked[24, 32] = 5.0 * counts.max()  # a zinger
    spiked[48:50, 64:66] = 20.0 * counts.max()  # a 2 x 2 X-ray cluster, saturated
    spiked[16, 88] = 0.0  # a dead pixel
    cleaned = classical.remove_outliers(spiked, model)
    for y, x in ((24, 32), (48, 64), (49, 65), (16, 88)):
        assert abs(cleaned[y, x] - truth[y, x]) < 6 * np.sqrt(truth[y, x])
    assert np.sum(cleaned != spiked) <= 6


def test_a_pilot_only_shrinks_the_images_own_spectrum():
    from scipy import fft

    from atomlens.restore.classical import pilot_wiener

    rng = np.random.default_rng(5)
    vacuum = rng.poisson(30.0, size=(128, 128)).astype(float)
    y, x = np.mgrid[:128, :128]
    lattice = 30 + 20 * np.cos(np.pi * y / 8) ** 2 * np.cos(np.pi * x / 8) ** 2
    for pilot in (lattice, np.full_like(vacuum, 30.0)):
        out = pilot_wiener(vacuum, pilot)
        shrunk = (
            np.abs(fft.dctn(out, norm="ortho")) <= np.abs(fft.dctn(vacuum, norm="ortho")) + 1e-3
        )
        assert shrunk.all()
    # a flat pilot says every coefficient but the mean is noise: the vacuum comes out flat
    assert out.std() < 0.01 * vacuum.std() and out.mean() == pytest.approx(vacuum.mean(), rel=1e-4)


def test_what_the_pilot_removed_far_above_the_noise_stays_removed():
    from atomlens.restore.classical import pilot_wiener

    rng = np.random.default_rng(6)
    y, x = np.mgrid[:128, :128]
    lattice = 30 + 20 * np.cos(np.pi * y / 8) ** 2 * np.cos(np.pi * x / 8) ** 2
    wave = np.cos(2 * np.pi * x / 5.3)
    hum = 15 * wave  # a periodic interference, about 2.5 noise standard deviations strong
    # the pilot lowered it 20-fold: still far above the noise floor, so a plain Wiener gain
    # would pass the image's interference whole
    out = pilot_wiener(rng.poisson(lattice).astype(float) + hum, lattice + hum / 20)
    left = 2 * np.mean((out - lattice) * wave)  # the interference's amplitude in the output
    assert abs(left) < 0.1 * 15
    assert np.sqrt(np.mean((out - lattice - left * wave) ** 2)) < 0.3 * np.sqrt(lattice.mean())


def test_a_pilot_of_another_shape_is_refused():
    from atomlens.restore.classical import pilot_wiener

    with pytest.raises(ValueError, match="pilot"):
        pilot_wiener(np.ones((32, 32)) + np.eye(32), np.ones((32, 31)))
