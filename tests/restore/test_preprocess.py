"""Scaling, tiling and the restoration target (atomlens.restore.preprocess)."""

import itertools

import numpy as np
import pytest
from scipy import ndimage

from atomlens.restore.preprocess import (
    apply_tiled,
    blend_window,
    expected_counts,
    normalise,
    tile_starts,
)


def _box(tiles: np.ndarray) -> np.ndarray:
    return np.stack([ndimage.uniform_filter(t, 5, mode="reflect") for t in tiles])


@pytest.mark.parametrize("shape", [(517, 389), (256, 256), (64, 700), (40, 40)])
def test_tiled_local_operator_equals_the_untiled_result(shape):
    image = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    tiled = apply_tiled(image, _box, tile=128, overlap=32)
    assert np.allclose(tiled, ndimage.uniform_filter(image, 5, mode="reflect"), atol=1e-5)


def test_constant_image_stays_constant_through_tiles():
    image = np.full((300, 410), 7.25, np.float32)
    assert np.all(apply_tiled(image, lambda t: t, tile=64, overlap=16) == 7.25)


def test_tiles_cover_the_image_with_the_requested_overlap():
    for length in (129, 300, 1000, 1024):
        starts = tile_starts(length, 128, 32)
        assert starts[0] == 0 and starts[-1] + 128 == length
        assert all(b - a <= 128 - 32 for a, b in itertools.pairwise(starts))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(300, 32, 32)


def test_blend_weights_of_neighbours_never_vanish_together():
    tile, overlap = 128, 32
    left = blend_window(tile, overlap, first=True)
    right = blend_window(tile, overlap, last=True)
    shared = left[-overlap:] + right[:overlap]
    assert shared.min() > 0.1 and left[0] == 1 and right[-1] == 1
    assert blend_window(tile, overlap)[: overlap // 4].max() == 0  # guard band


def test_scaling_round_trip_and_robustness_to_hot_pixels():
    rng = np.random.default_rng(0)
    image = rng.normal(1000, 50, size=(64, 64))
    hot = image.copy()
    hot[0, :3] = 1e9
    scaling = normalise(image)
    assert np.allclose(scaling.invert(scaling.apply(image)), image, rtol=1e-5)
    assert normalise(hot).scale == pytest.approx(scaling.scale, rel=0.05)
    assert normalise(np.full((8, 8), 3.0)).scale == 1.0


@pytest.mark.parametrize("gain, offset", [(1.0, 0.0), (37.0, 500.0), (0.01, -3.0)])
def test_expected_counts_recovers_dose_gain_and_offset(gain, offset):
    rng = np.random.default_rng(2)
    clean = 1 + 0.5 * np.sin(np.arange(128 * 128).reshape(128, 128) / 50.0)
    counts = rng.poisson(300 * clean) * gain + offset
    counts[5, 5] = counts.max() * 20  # a zinger must not bias the fit
    target = expected_counts(counts, clean)
    assert np.allclose(target, 300 * gain * clean + offset, rtol=0.01, atol=abs(gain))


def test_expected_counts_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        expected_counts(np.zeros((4, 4)), np.zeros((4, 5)))


@pytest.mark.parametrize("dose", [0.02, 0.1, 0.5])
def test_expected_counts_holds_below_one_electron_per_pixel(dose):
    rng = np.random.default_rng(3)
    clean = 1 + 0.8 * np.cos(np.arange(256 * 256).reshape(256, 256) / 7.0)
    counts = rng.poisson(dose * clean).astype(float) * 5.0
    target = expected_counts(counts, clean)
    span = np.ptp(5.0 * dose * clean)
    assert np.abs(target - 5.0 * dose * clean).max() < 0.1 * span
