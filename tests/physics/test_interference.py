import numpy as np
import pytest

from atomlens.physics import (
    InterferenceSetup,
    interference_image,
    interference_images,
    ronchigram_camera,
)

CLEAN = InterferenceSetup(
    size=128,
    angular_sampling=0.2,
    semiangle=10.0,
    tilt_std=0.0,
    divergence=0.0,
    divergence_samples=1,
    detector=ronchigram_camera(None),
)


def test_defocus_sets_the_disc_radius():
    c1 = 3000.0  # [Å]; geometric radius C1 * alpha = 30 Å
    image = interference_image(CLEAN, c1)
    radius_px = c1 * CLEAN.semiangle * 1e-3 / CLEAN.pixel_size
    rows, cols = np.indices(image.shape)
    r = np.hypot(rows - 64, cols - 64)
    assert image[r < 0.8 * radius_px].mean() > 20 * image[r > 1.2 * radius_px].mean()


def test_opposite_chi_is_the_point_reflection():
    # chi -> -chi (C1 -> -C1, A1 -> -A1) conjugates the wave: the image is point-reflected.
    a1 = 500 * np.exp(0.6j)
    plus, minus = interference_images(CLEAN, [2000.0, -2000.0], [a1, -a1])
    reflected = np.roll(minus[::-1, ::-1], (1, 1), axis=(0, 1))
    assert np.allclose(plus, reflected, rtol=1e-4, atol=1e-9)


def test_astigmatism_angle_follows_the_transpose():
    theta = 0.3
    a = interference_image(CLEAN, 1000.0, 1500 * np.exp(2j * theta))
    b = interference_image(CLEAN, 1000.0, 1500 * np.exp(2j * (np.pi / 2 - theta)))
    assert np.allclose(a, b.T, rtol=1e-4, atol=1e-9)


def test_noise_and_seeds():
    setup = InterferenceSetup(size=64, angular_sampling=0.4)
    a = interference_images(setup, [1000.0, 2000.0], seed=1)
    b = interference_images(setup, [1000.0, 2000.0], seed=1)
    c = interference_images(setup, [1000.0, 2000.0], seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the default camera: 2e6 e- per image spread over 64 x 64 px, plus a 10-count dark offset
    assert a.mean() == pytest.approx(2e6 / 64**2 + 10.0, rel=0.02)


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        interference_images(CLEAN, [1.0, 2.0], [1j])
    with pytest.raises(ValueError, match="tilt_std"):
        InterferenceSetup(tilt_std=-1)
