"""Lattice-site search: votes of the found columns, the fixed-position test, and locate with it."""

import math
import warnings

import numpy as np
import pytest

from atomlens.locate import locate, refine_columns
from atomlens.locate.sites import (
    column_image,
    fitted_basis,
    lattice_sites,
    site_discoveries,
    site_significance,
    voted_sites,
)
from atomlens.metrics import detection_scores

from .test_locate import gaussian_columns, square_lattice


def honeycomb(rows: int = 8, cols: int = 8, bond: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Sites of the two sublattices of a honeycomb of nearest distance ``bond`` [px]."""
    a = np.array([[0.0, math.sqrt(3) * bond], [1.5 * bond, 0.5 * math.sqrt(3) * bond]])
    cells = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1)
    first = cells.reshape(-1, 2) @ a + 10.0
    return first, first + np.array([bond, 0.0])


def test_a_missing_column_of_each_sublattice_is_voted_for():
    first, second = honeycomb()
    missing = [27, 36]  # inside the patch: every neighbour is there
    kept = np.vstack([first, np.delete(second, missing, axis=0)])
    sites = lattice_sites(kept, spacing=6.0)
    distance = np.hypot(*(sites[:, None, :] - second[missing][None]).transpose(2, 0, 1))
    assert (distance.min(axis=0) < 1e-6).all()
    # every other site lies just outside the patch, off the columns
    assert (np.hypot(*(sites[:, None] - kept[None]).transpose(2, 0, 1)).min(axis=1) > 3).all()


def test_a_later_search_started_from_the_first_basis_finds_the_same_sites():
    first, second = honeycomb()
    kept = np.vstack([first, np.delete(second, [27, 36], axis=0)])
    basis = fitted_basis(kept)
    a = np.array([[0.0, math.sqrt(3) * 6.0], [9.0, 0.5 * math.sqrt(3) * 6.0]])
    # the honeycomb's translations (each basis vector one of them, up to sign and order)
    for vector in basis:
        assert min(np.hypot(*(vector - v)) for v in (*a, *-a, a[1] - a[0], a[0] - a[1])) < 1e-9
    # the next pass's columns (one site filled) from the first pass's basis, and from scratch
    filled = np.vstack([kept, second[27]])
    started = voted_sites(filled, 6.0, basis=basis)
    for got, want in zip(started, voted_sites(filled, 6.0), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-9)
    assert np.hypot(*(started[0] - second[36]).T).min() < 1e-6
    # no lattice, no basis
    assert fitted_basis(np.random.default_rng(0).uniform(0, 100, (5, 2))) is None


def test_votes_follow_a_strained_lattice():
    centres = square_lattice(size=120, jitter=0.0)
    strained = centres * [1.0, 1.04] + 0.02 * centres[:, ::-1]  # 4 % stretch, shear
    missing = int(np.argmin(np.hypot(*(centres - 60.0).T)))
    sites = lattice_sites(np.delete(strained, missing, axis=0), spacing=10.0)
    distance = np.hypot(*(sites - strained[missing]).T)
    assert distance.min() < 0.05  # [px]: the neighbours' own positions, not a rigid lattice


def test_no_lattice_gives_no_sites():
    rng = np.random.default_rng(3)
    assert lattice_sites(rng.uniform(0, 100, (60, 2)), spacing=8.0).shape == (0, 2)
    assert lattice_sites(np.array([[0.0, 0.0], [5.0, 5.0]]), spacing=5.0).shape == (0, 2)
    row = np.column_stack([np.zeros(20), np.arange(20.0) * 5])
    assert lattice_sites(row, spacing=5.0).shape == (0, 2)


def test_site_test_on_noise_is_a_unit_statistic():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 2.0, (400, 400)) + 7.0  # any offset: the background is fitted
    sites = rng.uniform(10, 390, (3000, 2))
    z = site_significance(noise, sites, width=2.0)
    assert abs(z.mean()) < 0.1
    assert 0.9 < z.std() < 1.15
    assert (z >= 3.0).mean() < 0.01


def test_site_test_of_a_planted_column_matches_least_squares_theory():
    width, amplitude, sigma = 2.0, 3.0, 1.0
    centres = np.array([[30.3, 30.6]])
    clean = gaussian_columns((64, 64), centres, np.array([amplitude]), width)
    rng = np.random.default_rng(5)
    z = np.array([
        site_significance(clean + rng.normal(0, sigma, clean.shape), centres, width)[0]
        for _ in range(200)
    ])  # fmt: skip
    # amplitude and constant fitted within 3 widths: var(A) = sigma^2 / (Sgg - Sg^2 / N)
    r2 = np.sum((np.mgrid[:64, :64] - centres[0][:, None, None]) ** 2, axis=0)
    disc = r2 <= (3 * width) ** 2
    g = np.exp(-r2[disc] / (2 * width**2))
    expected = amplitude / (sigma / math.sqrt(np.sum(g**2) - np.sum(g) ** 2 / disc.sum()))
    assert np.mean(z) == pytest.approx(expected, rel=0.08)


def test_column_image_is_the_sum_of_the_gaussians():
    columns = {"y": np.array([10.3, 14.8]), "x": np.array([12.6, 9.1]),
               "amplitude": np.array([5.0, 2.0]), "width": np.array([1.5, 2.5])}  # fmt: skip
    drawn = column_image((30, 30), columns)
    y, x = np.mgrid[:30, :30]
    exact = sum(
        a * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * w**2))
        for cy, cx, a, w in zip(*columns.values(), strict=True)
    )
    # drawn to 4 widths: what is left out is below exp(-8) of the peak
    assert np.abs(drawn - exact).max() < 5.0 * math.exp(-8) + 1e-12


def test_refined_widths_stay_within_their_bounds():
    rng = np.random.default_rng(6)
    noise = rng.normal(0.0, 1.0, (40, 40))
    peaks = np.array([[10, 10], [20, 25], [30, 12]])
    fit = refine_columns(noise, peaks, half=5, width=2.0, narrowest=1.5, widest=2.5)
    widths = fit.width[fit.converged]
    assert ((widths >= 1.5 - 1e-12) & (widths <= 2.5 + 1e-12)).all()
    with pytest.raises(ValueError):
        refine_columns(noise, peaks, half=5, width=2.0, narrowest=np.ones(2))


def low_dose_lattice(counts: float, seed: int, vacancies: tuple[int, ...] = ()) -> tuple:
    """A Poisson HAADF-like square lattice of ``counts`` per column on a background."""
    centres = square_lattice(size=128, period=10.0, seed=seed)
    present = np.delete(centres, list(vacancies), axis=0)
    width = 1.8
    expected = 0.5 + gaussian_columns(
        (128, 128), present, np.full(len(present), counts / (2 * np.pi * width**2)), width
    )
    image = np.random.default_rng(seed).poisson(expected).astype(float)
    return image, present, centres[list(vacancies)]


def test_site_search_finds_columns_the_peak_finder_missed_and_leaves_vacancies_empty():
    recall = {True: [], False: []}
    for seed in range(3):
        image, present, empty = low_dose_lattice(50.0, seed, vacancies=(30, 55, 77))
        for search in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = locate(image, pixel_size=0.2, spacing=2.0, site_search=search)
            found = table[["y", "x"]].to_numpy()
            scores = detection_scores(found, present, 3.0)
            recall[search].append(scores["recall"])
            if search:
                assert scores["precision"] > 0.99
                # no column placed at a vacancy
                assert np.hypot(*(found[:, None] - empty[None]).transpose(2, 0, 1)).min() > 3.0
    assert np.mean(recall[True]) > np.mean(recall[False]) + 0.02
    assert min(recall[True]) > 0.97


def test_site_search_is_on_for_haadf_only_unless_asked():
    image, _, _ = low_dose_lattice(500.0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert locate(image, pixel_size=0.2).attrs["site_search"] is True
        assert locate(-image, pixel_size=0.2, modality="abf").attrs["site_search"] is False
        on = locate(-image, pixel_size=0.2, modality="abf", site_search=True)
    assert on.attrs["site_search"] is True
    with pytest.raises(ValueError, match="site_search"):
        locate(image, pixel_size=0.2, site_search="yes")


def test_column_significance_does_not_depend_on_the_image_scale():
    # the amplitude's error once came out of a truncated pseudo-inverse at large scales (here
    # 6e8 x off at 1e4 x the counts), and with it which fits count as significant
    from scipy import ndimage
    from skimage.feature import peak_local_max

    y, x = np.indices((64, 64))
    lattice = 60 + 50 * np.cos(y / 1.5) ** 2 * np.cos(x / 1.5) ** 2
    image = np.random.default_rng(10).poisson(lattice).astype(float)
    image -= image.mean()
    peaks = peak_local_max(ndimage.gaussian_filter(image, 1), min_distance=2)
    z = []
    for scale in (1e-3, 1.0, 1e4):
        fit = refine_columns(image * scale, peaks, half=4, width=0.7)
        z.append(fit.amplitude / fit.sigma_amplitude)
    np.testing.assert_allclose(z[0], z[1], rtol=1e-6)
    np.testing.assert_allclose(z[2], z[1], rtol=1e-6)


def test_site_discoveries_keep_the_false_ones_near_the_rate_and_take_weak_columns():
    rng = np.random.default_rng(5)
    # mostly columns (z about 2.5) and a few vacancies: the weak columns are taken, far more
    # than a fixed 3 sigma would, and hardly any vacancy
    columns, vacancies = rng.normal(2.5, 1.0, 2000), rng.normal(0.0, 1.0, 60)
    taken = site_discoveries(np.r_[columns, vacancies])
    assert taken[:2000].sum() > 1.4 * (columns >= 3).sum()
    assert taken[2000:].sum() <= 0.01 * taken.sum() + 3
    # only empty sites (a lattice voting into vacuum): the bar rises above the floor, and only
    # what a fixed 3 sigma would take anyway passes
    empty = rng.normal(0.0, 1.0, 5000)
    assert site_discoveries(empty).sum() == (empty >= 3).sum()
    assert site_discoveries(np.zeros(0)).shape == (0,)


def test_a_width_floor_keeps_sparse_fits_from_shrinking_onto_a_few_counts():
    # 20 counts per column spread over a 3 px wide Gaussian: 0.1 counts per pixel. Free
    # widths shrink onto a few counts; held at 0.75 of the columns' width the fit uses all
    # of them, and the positions are better (3 noise draws: RMSE 1.55 -> 1.30 px)
    from atomlens.locate.motif import Cell
    from atomlens.locate.revise import fitted, width_floor

    centres = square_lattice(size=160, period=14.0, seed=2, jitter=0.5)
    height = 20.0 / (2 * np.pi * 3.0**2)
    expected = gaussian_columns((160, 160), centres, np.full(len(centres), height), 3.0)
    floor = width_floor(Cell(np.eye(2) * 14.0, np.zeros((1, 2)), 3.0), 14.0)
    assert floor == pytest.approx(2.25)
    assert width_floor(None, 14.0) == 0.3
    # a cell column wider than any column may be (0.35 spacings) sets no floor
    assert width_floor(Cell(np.eye(2) * 14.0, np.zeros((1, 2)), 5.0), 14.0) == 0.3
    errors = {0.3: [], floor: []}
    for seed in range(3):
        image = np.random.default_rng(seed).poisson(expected).astype(float)
        for least in errors:
            table = fitted(image, np.rint(centres).astype(int), 14.0, 3, floor=least)
            assert (table["width"] >= least - 1e-9).all()
            found = table[["y", "x"]].to_numpy()
            errors[least].append(detection_scores(found, centres, 4.0)["rmse"])
    assert np.mean(errors[floor]) < 0.9 * np.mean(errors[0.3])
