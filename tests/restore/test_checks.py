"""What restore refuses, and the invented-lattice check."""

import numpy as np
import pytest
from scipy import ndimage

from atomlens.core.validation import InputError, SizeLimitError
from atomlens.restore.checks import _ring_medians, check_restore_input, invented_peaks


def _lattice(shape=(128, 128), period=8.0, amplitude=1.0):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return amplitude * (np.cos(2 * np.pi * y / period) * np.cos(2 * np.pi * x / period)) ** 2


@pytest.mark.parametrize(
    "image, match",
    [
        (np.full((64, 64), np.nan), "NaN"),
        (np.zeros(64), "2-D or 3-D"),
        (np.zeros((2, 2, 64, 64)), "2-D or 3-D"),
        (np.ones((64, 64)) * 5, "constant"),
        (np.random.default_rng(0).random((8, 64)), "at least 16"),
        (np.ones((64, 64), complex), "complex"),
        (np.array([["a", "b"]]), "numbers"),
    ],
)
def test_bad_input_is_refused_with_the_problem_named(image, match):
    with pytest.raises(InputError, match=match):
        check_restore_input(image)


def test_a_constant_frame_of_a_stack_is_named():
    stack = np.random.default_rng(0).random((3, 32, 32))
    stack[1] = 2.0
    with pytest.raises(InputError, match="frame 1"):
        check_restore_input(stack)


def test_a_huge_image_is_refused_before_any_copy(monkeypatch):
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "0.001")
    huge = np.broadcast_to(np.float64(1), (2000, 2000))  # no memory behind it
    with pytest.raises(SizeLimitError):
        check_restore_input(huge)


def test_the_input_is_never_modified():
    image = np.arange(32 * 32, dtype=np.float64).reshape(32, 32)
    copy = image.copy()
    out = check_restore_input(image)
    out += 1
    assert np.array_equal(image, copy)


def test_a_lattice_added_to_noise_is_an_invented_peak():
    noise = np.random.default_rng(0).normal(size=(128, 128))
    invented = ndimage.gaussian_filter(noise, 2) + _lattice(amplitude=0.5)
    peaks = invented_peaks(noise, invented)
    # cos^2 x cos^2 of period 8 px: intensity fringes every 4 px, along both axes and diagonals
    assert len(peaks) == 8
    assert np.allclose(np.abs(peaks).max(axis=1), 1 / 4)


def test_denoising_a_lattice_or_vacuum_invents_nothing():
    rng = np.random.default_rng(1)
    lattice = _lattice() + 0.3 * rng.normal(size=(128, 128))
    assert len(invented_peaks(lattice, ndimage.gaussian_filter(lattice, 1.5))) == 0
    vacuum = rng.poisson(20, size=(128, 128)).astype(float)
    assert len(invented_peaks(vacuum, ndimage.gaussian_filter(vacuum, 3))) == 0


def test_a_pattern_too_faint_to_see_is_not_an_invented_lattice():
    noise = np.random.default_rng(2).normal(size=(512, 512))
    smooth = ndimage.gaussian_filter(noise, 4)
    faint = smooth + 0.005 * smooth.std() * np.cos(2 * np.pi * np.arange(512) / 4)[None, :]
    assert len(invented_peaks(noise, faint)) == 0
    strong = smooth + 0.5 * smooth.std() * np.cos(2 * np.pi * np.arange(512) / 4)[None, :]
    assert len(invented_peaks(noise, strong)) >= 1


@pytest.mark.parametrize("shape", [(16, 16), (37, 53), (256, 200)])
def test_ring_medians_equal_scipy_on_every_occupied_label(shape):
    rng = np.random.default_rng(shape[0])
    values = rng.normal(size=shape)
    labels = rng.integers(0, 30, size=shape)
    labels[labels == 7] = 8  # an empty label gets NaN
    fast = _ring_medians(values, labels, 31)
    occupied = np.bincount(labels.ravel(), minlength=31) > 0
    reference = np.asarray(ndimage.median(values, labels, np.arange(31)), float)
    np.testing.assert_allclose(fast[occupied], reference[occupied], rtol=0, atol=1e-12)
    assert np.isnan(fast[~occupied]).all() and not occupied[7]
