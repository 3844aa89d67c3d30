"""The locate verb: positions, uncertainties, classes, spacing, stacks and bad input."""

import importlib
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import atomlens
from atomlens.core.validation import InputError
from atomlens.locate import COLUMNS, estimate_spacing, locate, refine_columns
from atomlens.locate.refine import fit_threads
from atomlens.metrics import cramer_rao_bound_pm, detection_scores

PIXEL = 0.2  # [Å]


def gaussian_columns(
    shape: tuple[int, int], centres: np.ndarray, heights: np.ndarray, width: float
) -> np.ndarray:
    """Sum of Gaussian columns of standard deviation ``width`` [px] at (y, x) [px]."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    image = np.zeros(shape)
    for (cy, cx), height in zip(centres, heights, strict=True):
        image += height * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
    return image


def square_lattice(
    size: int = 96, period: float = 10.0, seed: int = 0, jitter: float = 0.3
) -> np.ndarray:
    """Column centres of a jittered square lattice away from the edges [px]."""
    grid = np.arange(period / 2 + 1, size - period / 2, period)
    cy, cx = (g.ravel() for g in np.meshgrid(grid, grid, indexing="ij"))
    rng = np.random.default_rng(seed)
    return np.column_stack([cy, cx]) + rng.uniform(-jitter, jitter, (cy.size, 2))


def found_against(table: pd.DataFrame, centres: np.ndarray, radius: float = 3.0) -> dict:
    return detection_scores(table[["y", "x"]].to_numpy(), centres, radius)


def test_every_column_is_found_with_its_position_and_uncertainty():
    centres = square_lattice()
    counts_per_column = 2000.0
    width = 1.6  # [px]
    expected = 5.0 + gaussian_columns(
        (96, 96), centres, np.full(len(centres), counts_per_column / (2 * np.pi * width**2)), width
    )
    image = np.random.default_rng(1).poisson(expected).astype(float)
    table = locate(image, pixel_size=PIXEL)
    scores = found_against(table, centres)
    assert scores["f1"] == 1.0
    # the position error is near the Cramer-Rao bound of the dose (with background, a bit above)
    bound = cramer_rao_bound_pm(counts_per_column, width * PIXEL, PIXEL) / (100 * PIXEL)  # [px]
    assert scores["rmse"] / math.sqrt(2) < 1.6 * bound
    # the reported standard errors describe the actual scatter
    assert 0.5 < scores["rmse"] / math.sqrt(2) / table["sigma_x"].median() < 2.0
    # the integrated intensity is the column's counts; the width and units are right
    assert table["intensity"].median() == pytest.approx(counts_per_column, rel=0.05)
    assert table["width"].median() == pytest.approx(width, rel=0.05)
    assert np.allclose(table["y_A"], table["y"] * PIXEL)
    assert list(table.columns[:8]) == [
        "y", "x", "y_A", "x_A", "intensity", "class", "sigma_y", "sigma_x"
    ]  # fmt: skip


def test_positions_do_not_depend_on_scale_or_offset():
    centres = square_lattice(seed=2)
    image = np.random.default_rng(3).poisson(
        20 + gaussian_columns((96, 96), centres, np.full(len(centres), 200.0), 1.5)
    )
    first = locate(image, pixel_size=PIXEL)
    second = locate(7.5 * image - 300.0, pixel_size=PIXEL)
    assert len(first) == len(second)
    np.testing.assert_allclose(second[["y", "x"]], first[["y", "x"]], atol=1e-6)
    np.testing.assert_allclose(second["intensity"], 7.5 * first["intensity"], rtol=1e-6)


def test_dark_columns_of_abf_are_found_where_bright_ones_are():
    centres = square_lattice(seed=4)
    columns = gaussian_columns((96, 96), centres, np.full(len(centres), 300.0), 1.5)
    noise = np.random.default_rng(5).normal(0, 5.0, (96, 96))
    bright = locate(100 + columns + noise, pixel_size=PIXEL, modality="haadf")
    dark = locate(1000 - columns - noise, pixel_size=PIXEL, modality="abf")
    assert dark.attrs["dark"] and not bright.attrs["dark"]
    np.testing.assert_allclose(dark[["y", "x"]], bright[["y", "x"]], atol=1e-6)
    hrtem = locate(1000 - columns - noise, pixel_size=PIXEL, modality="hrtem")
    assert hrtem.attrs["dark"] and found_against(hrtem, centres)["f1"] == 1.0


def test_weak_columns_beside_strong_ones_are_found_and_classed():
    # a honeycomb: strong (Mo-like) and weak (S-like, a third as bright) columns 9 px apart
    a = 9.0 * math.sqrt(3)
    cells = [(i, j) for i in range(-1, 8) for j in range(-1, 8)]
    strong = np.array([[i * a * 0.5 * math.sqrt(3), (j + 0.5 * i) * a] for i, j in cells])
    weak = strong + np.array([a / math.sqrt(3), 0.0])
    size = 112
    inside = lambda p: p[(p > 4).all(1) & (p < size - 5).all(1)]  # noqa: E731
    strong, weak = inside(strong), inside(weak)
    image = gaussian_columns((size, size), strong, np.full(len(strong), 300.0), 1.8)
    image += gaussian_columns((size, size), weak, np.full(len(weak), 100.0), 1.8)
    image = np.random.default_rng(6).poisson(10 + image).astype(float)
    table = locate(image, pixel_size=PIXEL)
    assert table.attrs["spacing_px"] == pytest.approx(9.0, rel=0.05)
    scores = found_against(table, np.vstack([strong, weak]))
    assert scores["f1"] == 1.0
    heavy = table[table["class"] == "heavy"][["y", "x"]].to_numpy()
    assert detection_scores(heavy, strong, 3.0)["f1"] == 1.0


def test_one_kind_of_column_is_one_class():
    centres = square_lattice(seed=7)
    image = np.random.default_rng(8).poisson(
        10 + gaussian_columns((96, 96), centres, np.full(len(centres), 300.0), 1.5)
    )
    assert set(locate(image, pixel_size=PIXEL)["class"]) == {"column"}


def test_without_a_pixel_size_the_spacing_is_estimated_and_said():
    centres = square_lattice(period=12.0, seed=9)
    image = 10 + gaussian_columns((96, 96), centres, np.full(len(centres), 100.0), 1.8)
    with pytest.warns(UserWarning, match=r"No pixel size.*1[12]\.\d px apart"):
        table = locate(image)
    assert table["y_A"].isna().all() and table.attrs["pixel_size"] is None
    assert table.attrs["spacing_px"] == pytest.approx(12.0, rel=0.05)
    assert found_against(table, centres)["f1"] == 1.0


def test_a_stack_gives_a_frame_column_and_the_frames_results():
    centres = square_lattice(seed=10)
    rng = np.random.default_rng(11)
    clean = 10 + gaussian_columns((96, 96), centres, np.full(len(centres), 200.0), 1.5)
    stack = np.stack([rng.poisson(clean) for _ in range(3)]).astype(float)
    table = locate(stack, pixel_size=PIXEL)
    assert table.columns[0] == "frame" and sorted(set(table["frame"])) == [0, 1, 2]
    spacing = table.attrs["spacing_px"] * PIXEL  # the stack's spacing, given to each frame
    single = locate(stack[1], pixel_size=PIXEL, spacing=spacing)
    np.testing.assert_allclose(table[table["frame"] == 1][["y", "x"]], single[["y", "x"]])


def test_the_package_is_callable_and_the_input_is_not_modified():
    centres = square_lattice(seed=12)
    image = 10 + gaussian_columns((96, 96), centres, np.full(len(centres), 100.0), 1.5)
    before = image.copy()
    table = atomlens.locate(image, pixel_size=PIXEL)
    assert len(table) == len(centres)
    np.testing.assert_array_equal(image, before)


def test_estimate_spacing_of_a_lattice_and_of_noise():
    centres = square_lattice(size=128, period=7.0, jitter=0.0)
    image = gaussian_columns((128, 128), centres, np.ones(len(centres)), 1.2)
    assert estimate_spacing(image) == pytest.approx(7.0, abs=0.1)
    noise = np.random.default_rng(13).normal(size=(128, 128))
    assert math.isnan(estimate_spacing(noise))


@pytest.mark.parametrize("shape", [(97, 97), (95, 131), (96, 96)])
def test_the_spacing_of_an_image_with_odd_sides_is_its_lattices(shape):
    # the autocorrelation's centre sat a pixel off for odd sides: 7.06 px for 8 px columns
    y, x = np.mgrid[: shape[0], : shape[1]]
    lattice = np.cos(np.pi * y / 8) ** 8 * np.cos(np.pi * x / 8) ** 8
    assert estimate_spacing(lattice) == pytest.approx(8.0, abs=0.05)


@pytest.mark.parametrize("period", [8.0, 24.0])  # the background on the pixels and on blocks
def test_the_background_under_the_columns_is_removed(period):
    from atomlens.locate.preprocess import subtract_background

    size = 192
    centres = square_lattice(size=size, period=period, jitter=0.0)
    columns = gaussian_columns((size, size), centres, np.full(len(centres), 10.0), period / 8)
    y, x = np.mgrid[:size, :size] / size
    # a ramp and a hump that vary over several spacings, each several times a column high
    background = 20.0 + 15.0 * x + 30.0 * np.exp(-((y - 0.4) ** 2 + (x - 0.6) ** 2) / 0.5)
    flat = subtract_background(columns + background, period)
    inner = (slice(int(period), -int(period)),) * 2  # the edges' background is extrapolated
    peaks = np.rint(centres).astype(int)
    inside = (peaks >= period).all(axis=1) & (peaks < size - period).all(axis=1)
    # the columns keep their height over a floor near 0 between them
    assert np.abs(np.median((flat - columns)[inner])) < 0.5
    heights = flat[peaks[inside, 0], peaks[inside, 1]] - np.median(flat[inner])
    np.testing.assert_allclose(heights, 10.0, rtol=0.1)


def test_the_separable_normal_equations_are_the_jacobians():
    from atomlens.locate.refine import _WindowModel

    rng = np.random.default_rng(4)
    n, half = 50, 6
    k = 2 * half + 1
    mask = (rng.random((n, k * k)) > 0.1).astype(float)  # some pixels off the image
    model = _WindowModel(rng.random((n, k * k)) * 5, mask, half)
    model.weights = mask * rng.uniform(0.5, 2.0, (n, k * k))
    params = np.stack([rng.uniform(1, 5, n), rng.uniform(-2, 2, n), rng.uniform(-2, 2, n),
                       rng.uniform(1.0, 3.0, n), rng.uniform(0, 2, n)], axis=1)  # fmt: skip
    residual, jacobian = model(params)
    cost, normal, gradient = model.normal_equations(params)
    np.testing.assert_allclose(cost, np.sum(residual**2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(normal, jacobian @ jacobian.transpose(0, 2, 1), rtol=1e-10,
                               atol=1e-12 * np.abs(normal).max())  # fmt: skip
    np.testing.assert_allclose(gradient, (jacobian @ residual[..., None])[..., 0], rtol=1e-10,
                               atol=1e-12 * np.abs(gradient).max())  # fmt: skip


def test_neighbours_fitted_together_remove_the_pull_of_overlapping_tails():
    # columns 5 px apart, 1.4 px wide, 3 px window half-side: fitted alone, each is pulled
    centres = np.array([[20.0, 18.3], [20.0, 23.3], [20.0, 29.3]])
    heights = np.array([100.0, 300.0, 50.0])
    image = gaussian_columns((40, 48), centres, heights, 1.4)
    peaks = np.rint(centres).astype(int)
    alone = refine_columns(image, peaks, half=3, width=1.5, rounds=1)
    together = refine_columns(image, peaks, half=3, width=1.5, rounds=4)
    error_alone = np.hypot(alone.y - centres[:, 0], alone.x - centres[:, 1])
    error_together = np.hypot(together.y - centres[:, 0], together.x - centres[:, 1])
    assert error_alone.max() > 0.5
    assert error_together.max() < 0.01
    assert together.converged.all()
    np.testing.assert_allclose(together.intensity, 2 * np.pi * heights * 1.4**2, rtol=0.01)


def test_threads_change_nothing_but_the_time():
    # 400 noisy columns (above the threaded minimum): the fit split over threads is the fit
    centres = square_lattice(size=160, period=8.0, jitter=0.3)
    clean = gaussian_columns((160, 160), centres, np.full(len(centres), 80.0), 1.3) + 10.0
    image = np.random.default_rng(21).poisson(clean).astype(float)
    peaks = np.rint(centres).astype(int)
    assert len(peaks) >= 256
    one = refine_columns(image, peaks, half=4, width=1.5, threads=1)
    two = refine_columns(image, peaks, half=4, width=1.5, threads=2)
    for name in ("y", "x", "intensity", "sigma_y"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert np.median(np.hypot(one.y - centres[:, 0], one.x - centres[:, 1])) < 0.1


def test_fit_threads_sets_the_threads_of_fits_not_given_them(thread_pools):
    # frame-parallel workers that already fill the cores fit in one thread each
    refine = importlib.import_module("atomlens.locate.refine")
    centres = square_lattice(size=160, period=8.0, jitter=0.3)
    image = gaussian_columns((160, 160), centres, np.full(len(centres), 80.0), 1.3) + 10.0
    peaks = np.rint(centres).astype(int)
    pools = thread_pools(refine)
    with fit_threads(1):
        one = refine_columns(image, peaks, half=4, width=1.5)
    assert pools == []
    with fit_threads(3):
        three = refine_columns(image, peaks, half=4, width=1.5)
    assert pools and set(pools) == {3}
    np.testing.assert_array_equal(one.y, three.y)


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.full((32, 32), np.nan), "NaN"),
        (np.ones((32, 32)), "constant"),
        (np.ones((8, 32)), "at least 16"),
        (np.ones((2, 2, 32, 32)), "2-D"),
        (np.ones(32), "2-D"),
        (np.ones((32, 32), dtype=complex), "complex"),
    ],
)
def test_bad_input_is_refused_with_the_problem_named(image, words):
    with pytest.raises(InputError, match=words):
        locate(image, pixel_size=PIXEL)


def test_bad_settings_are_refused():
    image = np.random.default_rng(14).normal(size=(32, 32))
    with pytest.raises(ValueError, match="modality"):
        locate(image, pixel_size=PIXEL, modality="sem")
    with pytest.raises(ValueError, match="method"):
        locate(image, pixel_size=PIXEL, method="magic")
    with pytest.raises(ValueError, match="needs pixel_size"):
        locate(image, spacing=2.0)
    with pytest.raises(ValueError, match="pixel_size"):
        locate(image, pixel_size=-1.0)
    with pytest.raises(ValueError, match="rounds"):
        locate(image, pixel_size=PIXEL, rounds=0)


def test_vacuum_without_a_pixel_size_asks_for_one():
    noise = np.random.default_rng(15).poisson(3.0, (64, 64)).astype(float)
    with pytest.raises(InputError, match="pixel_size"):
        locate(noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = locate(noise, pixel_size=PIXEL)  # the fallback spacing, no warning
    assert table.attrs["spacing_source"].startswith("assumed")
    assert len(table) < 10  # noise gives (almost) no columns at 4 sigma
    nothing = locate(noise, pixel_size=PIXEL, threshold=50.0)  # no candidate at all
    assert len(nothing) == 0 and list(nothing.columns) == list(COLUMNS)


def test_refining_no_columns_gives_an_empty_fit():
    fit = refine_columns(np.ones((16, 16)), np.zeros((0, 2)), half=2, width=1.0)
    assert len(fit) == 0 and fit.converged.dtype == bool


def test_neighbour_signal_of_the_canvas_is_the_pairwise_sum():
    from atomlens.locate.refine import _neighbour_signal

    rng = np.random.default_rng(22)
    peaks = np.array([[10, 10], [10, 16], [15, 12], [30, 30], [33, 27], [12, 40]])
    half, width = 4, 1.5
    params = np.column_stack([
        rng.uniform(1, 5, len(peaks)), rng.uniform(-0.5, 0.5, (len(peaks), 2)),
        np.full(len(peaks), width), np.zeros(len(peaks)),
    ])  # fmt: skip
    params[4, 3] = 4.0  # one wide fit: added pairwise, within reach only
    offsets = np.arange(-half, half + 1)
    wy, wx = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))
    expected = np.zeros((len(peaks), wy.size))
    within = np.sqrt(2.0) * half + 4.0 * width
    for i in range(len(peaks)):
        for j in range(len(peaks)):
            if i == j or (params[j, 3] > 1.5 * width and np.hypot(*(peaks[j] - peaks[i])) > within):
                continue
            cy, cx = peaks[j] + params[j, 1:3] - peaks[i]
            expected[i] += params[j, 0] * np.exp(
                -((wy - cy) ** 2 + (wx - cx) ** 2) / (2 * params[j, 3] ** 2)
            )
    # the canvas draws narrow columns to 6 widths: exp(-18) of their height is left out
    np.testing.assert_allclose(_neighbour_signal(peaks, params, half, width), expected,
                               atol=1e-7)  # fmt: skip
    assert expected[3].max() > 0.1  # the wide column reaches its neighbour's window


def test_noise_between_close_columns_does_not_shrink_the_spacing():
    # a triangular lattice 9.2 px apart, 2 px wide columns: the trial detection at half the
    # spacing finds noise maxima between the columns, whose distances scatter (a sublattice's
    # would agree); before the check, the spacing became 7.3 px
    a = 9.2
    ij = np.stack(np.meshgrid(np.arange(-40, 40), np.arange(-40, 40), indexing="ij"), -1)
    centres = ij.reshape(-1, 2) @ np.array([[0.0, a], [a * math.sqrt(3) / 2, a / 2]])
    centres = centres[(centres >= 0).all(axis=1) & (centres < 256).all(axis=1)]
    height = 200.0 / (2 * np.pi * 2.0**2)
    expected = 0.3 * height + gaussian_columns((256, 256), centres,
                                               np.full(len(centres), height), 2.0)  # fmt: skip
    image = np.random.default_rng(0).poisson(expected).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(image)
    assert table.attrs["spacing_px"] == pytest.approx(a, rel=0.03)
    assert found_against(table, centres, 3.0)["f1"] > 0.97


def test_a_window_whose_normal_matrix_underflows_costs_only_its_own_errors():
    # on a 100-frame hBN series one window's amplitude and position rows were ~1e-310: scaled
    # to a unit diagonal they overflowed to inf and the batched SVD failed for every window
    from atomlens.locate.refine import _covariance

    rng = np.random.default_rng(0)
    jacobians = rng.normal(size=(3, 5, 40))
    normal = jacobians @ jacobians.transpose(0, 2, 1)
    tiny = normal[1].copy()
    tiny[:3, :] *= 1e-155
    tiny[:, :3] *= 1e-155
    normal[1] = tiny
    covariance = _covariance(normal, np.ones(3))
    assert np.isnan(covariance[1]).all()
    for k in (0, 2):
        assert np.allclose(covariance[k], np.linalg.inv(normal[k]), rtol=1e-6)
