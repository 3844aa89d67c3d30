"""The shared metric definitions: PSNR, SSIM, Cramer-Rao bound, matching, detection scores."""

import math

import numpy as np
import pytest

from atomlens.metrics import (
    cramer_rao_bound_columns,
    cramer_rao_bound_pm,
    detection_scores,
    match_positions,
    psnr,
    ssim,
)


def test_psnr_of_identical_images_is_infinite():
    truth = np.arange(12.0).reshape(3, 4)
    assert psnr(truth, truth) == math.inf


def test_psnr_of_a_known_error():
    truth = np.array([[0.0, 10.0], [5.0, 2.0]])  # range 10
    restored = truth + np.array([[1.0, -1.0], [1.0, -1.0]])  # MSE 1
    assert psnr(restored, truth) == pytest.approx(20.0)


def test_psnr_uses_the_range_of_the_truth_not_of_the_restoration():
    truth = np.array([[0.0, 10.0], [5.0, 2.0]])
    assert psnr(truth * 2, truth) == pytest.approx(10 * math.log10(100 / np.mean(truth**2)))


def test_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.ones((4, 4)), np.ones((4, 5)))


def test_cramer_rao_known_values():
    # sqrt(0.5^2 + 0.2^2 / 12) / sqrt(100) Å = 5.0332 pm
    assert cramer_rao_bound_pm(100, 0.5, 0.2) == pytest.approx(5.0332, rel=1e-4)
    # four times the dose halves the bound; vectorised over doses
    bounds = cramer_rao_bound_pm(np.array([100.0, 400.0]), 0.5, 0.2)
    assert bounds[0] == pytest.approx(2 * bounds[1])
    with pytest.raises(ValueError, match="dose"):
        cramer_rao_bound_pm(0, 0.5, 0.2)


def test_hungarian_matching_is_one_to_one():
    found = np.array([[0.0, 0.0], [0.0, 0.4]])
    true = np.array([[0.0, 0.3]])
    fi, ti = match_positions(found, true, 1.0)
    assert list(fi) == [1] and list(ti) == [0]
    assert len(match_positions(found, np.array([[5.0, 5.0]]), 1.0)[0]) == 0


def test_ssim_is_one_for_identical_images_and_lower_with_noise():
    y, x = np.mgrid[:64, :64]
    image = np.cos(y / 3.0) * np.cos(x / 3.0)
    noise = np.random.default_rng(1).normal(0, 1.0, image.shape)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image + 0.3 * noise, image) < ssim(image + 0.1 * noise, image) < 0.95


def test_detection_scores_of_a_known_case():
    true = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    found = np.array([[0.0, 0.3], [10.0, -0.4], [20.0, 0.0], [50.0, 50.0], [60.0, 60.0]])
    scores = detection_scores(found, true, radius=1.0)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (3, 2, 1)
    assert scores["precision"] == pytest.approx(3 / 5) and scores["recall"] == pytest.approx(3 / 4)
    assert scores["f1"] == pytest.approx(6 / 9) and scores["jaccard"] == pytest.approx(3 / 6)
    assert scores["rmse"] == pytest.approx(math.sqrt((0.09 + 0.16) / 3))
    # chamfer: found -> nearest true (0.3, 0.4, 0, |(50,50)-(30,0)|, |(60,60)-(30,0)|), and
    # true -> nearest found (0.3, 0.4, 0, and (30, 0) is 10 from (20, 0))
    forward = (0.3 + 0.4 + 0 + math.hypot(20, 50) + math.hypot(30, 60)) / 5
    backward = (0.3 + 0.4 + 0 + 10.0) / 4
    assert scores["chamfer"] == pytest.approx(0.5 * (forward + backward))


def test_detection_scores_are_symmetric_and_perfect_on_equal_sets():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 100, (40, 2)), rng.uniform(0, 100, (30, 2))
    ab, ba = detection_scores(a, b, 5.0), detection_scores(b, a, 5.0)
    assert ab["f1"] == ba["f1"] and ab["jaccard"] == ba["jaccard"]
    assert ab["chamfer"] == pytest.approx(ba["chamfer"])
    assert ab["precision"] == pytest.approx(ba["recall"])
    same = detection_scores(a, a, 1.0)
    assert same["f1"] == same["jaccard"] == 1.0 and same["chamfer"] == same["rmse"] == 0.0


def test_detection_scores_of_empty_sets():
    assert detection_scores([], [], 1.0)["f1"] == 1.0
    missed = detection_scores([], [[1.0, 1.0]], 1.0)
    assert missed["f1"] == 0.0 and missed["fn"] == 1 and math.isnan(missed["chamfer"])


@pytest.mark.parametrize(
    ("found", "radius", "words"),
    [
        ([[0.0, 0.0, 0.0]], 1.0, "found must be"),
        ([[np.nan, 0.0]], 1.0, "found must be"),
        ([[0.0, 0.0]], 0.0, "radius"),
    ],
)
def test_detection_scores_refuse_bad_input(found, radius, words):
    with pytest.raises(ValueError, match=words):
        detection_scores(found, [[0.0, 0.0]], radius)


@pytest.mark.parametrize("image", [np.full((16, 16), np.nan), np.ones(16), np.ones((2, 16, 16))])
def test_psnr_refuses_bad_images(image):
    with pytest.raises(ValueError, match=r"NaN|2-D"):
        psnr(image, np.ones((16, 16)))


def _gaussian_image(amplitude: float, width: float, size: int = 61) -> np.ndarray:
    yy, xx = np.indices((size, size))
    centre = size // 2
    return amplitude * np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / (2 * width**2))


def test_column_bound_without_background_is_the_closed_form():
    # an isolated Gaussian, fine pixels: w / sqrt(N) per axis, the same on y and x
    width, amplitude = 4.0, 20.0
    image = _gaussian_image(amplitude, width) + 1e-12
    bound = cramer_rao_bound_columns(image, [[30.0, 30.0]], [amplitude], [width])
    counts = 2 * np.pi * amplitude * width**2
    assert bound[0, 0] == pytest.approx(width / np.sqrt(counts), rel=5e-3)
    assert bound[0, 0] == pytest.approx(bound[0, 1], rel=1e-9)


def test_column_bound_under_a_strong_background_is_the_closed_form():
    # background b >> peak A: F = pi A^2 / (2 b) per axis, bound sqrt(2 b / pi) / A
    width, amplitude, background = 3.0, 1.0, 400.0
    image = _gaussian_image(amplitude, width) + background
    bound = cramer_rao_bound_columns(image, [[30.0, 30.0]], [amplitude], [width])
    assert bound[0, 0] == pytest.approx(np.sqrt(2 * background / np.pi) / amplitude, rel=0.02)
    # and a background always costs precision
    clean = cramer_rao_bound_columns(_gaussian_image(amplitude, width) + 1e-12, [[30.0, 30.0]],
                                     [amplitude], [width])  # fmt: skip
    assert bound[0, 0] > 10 * clean[0, 0]


def test_column_bound_scales_with_the_dose_and_refuses_bad_input():
    image = _gaussian_image(10.0, 2.0) + 1.0
    low = cramer_rao_bound_columns(image, [[30.0, 30.0]], [10.0], [2.0])
    high = cramer_rao_bound_columns(4 * image, [[30.0, 30.0]], [40.0], [2.0])
    assert low[0, 1] == pytest.approx(2 * high[0, 1], rel=1e-9)  # 1 / sqrt(dose)
    # a column whose window lies off the image has no bound
    assert np.isnan(cramer_rao_bound_columns(image, [[500.0, 500.0]], [10.0], [2.0])).all()
    with pytest.raises(ValueError, match="width"):
        cramer_rao_bound_columns(image, [[30.0, 30.0]], [10.0], [0.0])
    with pytest.raises(ValueError, match="expected"):
        cramer_rao_bound_columns(image - 5.0, [[30.0, 30.0]], [10.0], [2.0])
    with pytest.raises(ValueError, match="positions"):
        cramer_rao_bound_columns(image, [[np.nan, 30.0]], [10.0], [2.0])


def test_overlapping_columns_share_their_information():
    # two equal columns: 10 widths apart each has its own bound; 1.5 widths apart, fitted
    # together, each is less certain than alone
    width, amplitude = 2.0, 30.0
    yy, xx = np.indices((64, 80))

    def bounds(centres: np.ndarray) -> np.ndarray:
        image = 2.0 + sum(amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * width**2))
                          for y, x in centres)  # fmt: skip
        return cramer_rao_bound_columns(image, centres, [amplitude] * len(centres),
                                        [width] * len(centres))  # fmt: skip

    alone = bounds(np.array([[32.0, 30.0]]))
    np.testing.assert_allclose(bounds(np.array([[32.0, 30.0], [32.0, 50.0]]))[0], alone[0],
                               rtol=1e-6)  # fmt: skip
    close = bounds(np.array([[32.0, 30.0], [32.0, 33.0]]))
    assert close[0, 1] > 1.2 * alone[0, 1]  # along the pair: the two trade places
    np.testing.assert_allclose(close[0], close[1], rtol=1e-9)  # a symmetric pair
