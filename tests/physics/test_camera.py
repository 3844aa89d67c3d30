"""The Ronchigram camera preset: one chain (shot noise, PSF, gain, read-out), known statistics."""

import numpy as np
import pytest

from atomlens.physics.detectors import Compose, GaussianPSF, ShotNoise, ronchigram_camera

FLAT = np.full((256, 256), 1.0 / 256**2)  # the whole beam spread evenly over the detector


def test_poisson_variance_equals_mean_at_a_dose_per_image():
    counts, records = ronchigram_camera(256**2 * 50.0).apply(FLAT, np.random.default_rng(0))
    assert counts.mean() == pytest.approx(50.0, rel=0.01)
    assert counts.var() == pytest.approx(50.0, rel=0.03)
    assert records[0] == ("ShotNoise", {"scale": 256**2 * 50.0})


def test_gain_scales_mean_and_variance():
    camera = ronchigram_camera(256**2 * 50.0, gain=4.0)
    counts, _ = camera.apply(FLAT, np.random.default_rng(1))
    assert counts.mean() == pytest.approx(200.0, rel=0.01)
    assert counts.var() == pytest.approx(16 * 50.0, rel=0.03)


def test_readout_noise_and_dark_offset_without_shot_noise():
    camera = ronchigram_camera(None, dark_offset=100.0, readout_noise=3.0)
    counts, records = camera.apply(np.zeros((256, 256)), np.random.default_rng(2))
    assert counts.mean() == pytest.approx(100.0, abs=0.05)
    assert counts.std() == pytest.approx(3.0, rel=0.02)
    assert [name for name, _ in records] == ["GaussianPSF", "Gain", "ReadoutNoise"]


def test_psf_lowers_noise_and_keeps_the_sum():
    sharp, _ = ronchigram_camera(256**2 * 50.0).apply(FLAT, np.random.default_rng(3))
    blurred, _ = ronchigram_camera(256**2 * 50.0, psf_sigma=1.5).apply(
        FLAT, np.random.default_rng(3)
    )
    assert blurred.var() < 0.2 * sharp.var()
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=1e-4)


def test_same_seed_same_noise_and_a_description_with_units():
    camera = ronchigram_camera(1e5, readout_noise=1.0, psf_sigma=0.5)
    a, _ = camera.apply(FLAT, np.random.default_rng(7))
    b, _ = camera.apply(FLAT, np.random.default_rng(7))
    assert np.array_equal(a, b)
    steps = camera.describe()["steps"]
    assert steps[0] == {
        "name": "ShotNoise",
        "dose_per_pixel_e_per_px": None,
        "dose_per_image_e": 1e5,
        "exact_below_e": 20.0,
    }
    assert steps[1] == {"name": "GaussianPSF", "sigma_px": 0.5}


def test_dose_per_image_and_dose_per_pixel_agree_on_a_flat_beam():
    per_image, _ = ShotNoise(dose_per_image=256**2 * 9.0).apply(FLAT, np.random.default_rng(4))
    per_pixel, _ = ShotNoise(dose_per_pixel=9.0).apply(FLAT, np.random.default_rng(4))
    np.testing.assert_allclose(per_image, per_pixel)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ronchigram_camera(-5.0), "dose_per_image"),
        (lambda: ronchigram_camera(1e6, gain=0.0), "gain"),
        (lambda: ronchigram_camera(1e6, readout_noise=-1.0), "readout_noise=..."),
        (lambda: ronchigram_camera(1e6, psf_sigma=-1.0), "psf_sigma=..."),
        (lambda: ShotNoise(dose_per_pixel=1.0, dose_per_image=1.0), "not both"),
    ],
)
def test_bad_camera_parameters(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_intensity():
    camera = ronchigram_camera(1e6)
    with pytest.raises(ValueError, match="non-negative"):
        camera.apply(-FLAT, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        camera.apply(np.zeros((2, 4, 4)), np.random.default_rng(0))
    assert isinstance(camera, Compose) and isinstance(camera.steps[1], GaussianPSF)
