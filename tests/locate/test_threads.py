"""Image work split over threads gives what the whole-image call gives, to the bit."""

from functools import partial

import numpy as np
import pytest
from scipy import ndimage
from skimage.feature import peak_local_max

import atomlens.locate.threads as threads_module
from atomlens.locate.locate import local_maxima
from atomlens.locate.threads import (
    fit_threads,
    gaussian_in_bands,
    gaussian_reach,
    in_bands,
    sampled_in_chunks,
    thread_count,
)


@pytest.fixture
def image():
    rng = np.random.default_rng(11)
    return ndimage.gaussian_filter(rng.poisson(20.0, (700, 333)).astype(float), 1.0)


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("sigma", [0.7, 3.4, 12.0])
def test_gaussian_on_bands_is_the_whole_image_filter(image, threads, sigma):
    whole = ndimage.gaussian_filter(image, sigma, mode="reflect")
    assert gaussian_reach(sigma) == int(4 * sigma + 0.5)
    np.testing.assert_array_equal(gaussian_in_bands(image, sigma, threads=threads), whole)


def test_a_composed_filter_on_bands_needs_the_summed_reach(image):
    def opened(part):
        smooth = ndimage.gaussian_filter(part, 2.0, mode="reflect")
        return ndimage.grey_opening(smooth, size=(31, 31), mode="reflect")

    whole = opened(image)
    reach = gaussian_reach(2.0) + 2 * (31 // 2)
    np.testing.assert_array_equal(in_bands(opened, image, reach, threads=2), whole)
    # too short a reach differs next to the cut between the bands: the overlap is what
    # makes the bands exact
    assert not np.array_equal(in_bands(opened, image, 15, threads=2), whole)


def test_bands_fall_back_to_one_piece_for_small_images_or_one_thread(image):
    calls = []

    def counted(part):
        calls.append(part.shape)
        return part * 2.0

    in_bands(counted, image[:200], 5, threads=4)  # under two bands of 128 rows
    in_bands(counted, image, 5, threads=1)
    assert calls == [(200, 333), (700, 333)]
    calls.clear()
    np.testing.assert_array_equal(in_bands(counted, image, 5, threads=2), image * 2.0)
    assert len(calls) == 2 and sum(rows for rows, _ in calls) == 700 + 2 * 5


def test_thread_count_follows_fit_threads_and_the_cap():
    assert thread_count(3) == 3
    assert thread_count(99) == 4  # MOST_THREADS
    with fit_threads(1):
        assert thread_count() == 1
        assert thread_count(2) == 2  # told explicitly


def test_sampling_in_chunks_is_map_coordinates(image):
    where = np.random.default_rng(3).uniform(-2, 700, (2, 250_001))
    whole = ndimage.map_coordinates(image, where, order=1)
    np.testing.assert_array_equal(sampled_in_chunks(image, where, order=1, threads=2), whole)
    np.testing.assert_array_equal(sampled_in_chunks(image, where[:, :10], threads=2),
                                  whole[:10])  # fmt: skip


def _disc(radius):
    offsets = np.arange(-int(radius), int(radius) + 1)
    return np.hypot(*np.meshgrid(offsets, offsets, indexing="ij")) <= radius


@pytest.mark.parametrize("seed", range(12))
def test_local_maxima_are_skimage_peaks(seed):
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random((67, 91)), rng.uniform(0.0, 3.0))
    if seed % 3 == 0:
        image = np.round(image * 30) / 30  # plateaus of equal maxima
    footprint = _disc(rng.uniform(1.0, 6.0))
    expected = peak_local_max(image, footprint=footprint, exclude_border=False)
    found = local_maxima(image, footprint)
    assert {tuple(p) for p in found} == {tuple(p) for p in expected}
    assert len(found) == len(expected)
    order = np.lexsort((found[:, 1], found[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(found)))  # raster order


def test_local_maxima_of_known_images():
    image = np.zeros((20, 20))
    image[5, 7], image[5, 9], image[14, 3] = 3.0, 2.0, 1.0  # (5, 9) within 2 px of a higher
    np.testing.assert_array_equal(local_maxima(image, _disc(2.5)), [[5, 7], [14, 3]])
    np.testing.assert_array_equal(local_maxima(image, _disc(1.0)), [[5, 7], [5, 9], [14, 3]])
    assert local_maxima(np.full((9, 9), 4.0), _disc(2.0)).shape == (0, 2)
    edge = np.zeros((9, 9))
    edge[0, 0] = 1.0  # a corner maximum (the edge pixels repeated beyond it)
    np.testing.assert_array_equal(local_maxima(edge, _disc(3.0)), [[0, 0]])


def test_in_bands_is_used_with_the_fit_threads_setting(thread_pools, image):
    pools = thread_pools(threads_module)
    smooth = partial(ndimage.gaussian_filter, sigma=1.0)
    with fit_threads(1):
        one = in_bands(smooth, image, 4)
    assert pools == []
    with fit_threads(2):
        two = in_bands(smooth, image, 4)
    assert pools == [2]
    np.testing.assert_array_equal(one, two)
