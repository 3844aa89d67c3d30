"""The averaged unit cell: cell vectors, its columns, the spacing they give, and locate with it
on honeycombs whose probe is about as wide as the columns are apart."""

import math
import warnings

import numpy as np
import pytest
from skimage.feature import peak_local_max

from atomlens.locate import locate
from atomlens.locate.motif import (
    Cell,
    cell_vectors,
    column_spacing,
    fitted_motif_columns,
    motif,
    motif_columns,
    motif_spacing,
    stacked_motif,
)
from atomlens.locate.preprocess import _autocorrelation, estimate_cell
from atomlens.locate.sites import lattice_sites

from .test_locate import found_against, gaussian_columns

SIZE = 128


def honeycomb(bond: float, size: int = SIZE, angle: float = 0.2, shift=(0.0, 0.0)):
    """(sublattice A, sublattice B, cell vectors) of a honeycomb of nearest distance ``bond``
    [px] filling a ``size`` square, rotated by ``angle`` [rad]."""
    a = math.sqrt(3) * bond
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    vectors = np.array([[0.0, a], [a * math.sqrt(3) / 2, a / 2]]) @ rotation.T
    n = int(2 * size / a) + 2
    ij = np.stack(np.meshgrid(np.arange(-n, n), np.arange(-n, n), indexing="ij"), -1)
    first = ij.reshape(-1, 2) @ vectors + np.asarray(shift)
    second = first + (vectors[0] + vectors[1]) / 3.0
    inside = [(p > -3).all(axis=1) & (p < size + 2).all(axis=1) for p in (first, second)]
    return first[inside[0]], second[inside[1]], vectors


def blurred_honeycomb(
    dose: float, seed: int, weak: float = 1.0, width: float | None = None, **kw
) -> tuple[np.ndarray, ...]:
    """A Poisson image of a honeycomb of 7 px bonds whose columns are ``width`` wide (default
    2 px: FWHM two thirds of the bond), sublattice B ``weak`` x as strong as A, on a
    background of a third of a column's peak; ``dose``: counts per A column."""
    bond = 7.0
    width = 2.0 if width is None else width
    first, second, vectors = honeycomb(bond, **kw)
    height = dose / (2 * np.pi * width**2)
    expected = gaussian_columns((SIZE, SIZE), np.vstack([first, second]),
                                np.r_[np.full(len(first), height),
                                      np.full(len(second), weak * height)], width)  # fmt: skip
    image = np.random.default_rng(seed).poisson(expected + height / 3).astype(float)
    return image, first, second, vectors


def test_cell_vectors_are_the_lattice_to_a_small_fraction_of_a_pixel():
    first, second, vectors = honeycomb(7.0)
    image = gaussian_columns((SIZE, SIZE), np.vstack([first, second]),
                             np.ones(len(first) + len(second)), 1.2)  # fmt: skip
    estimate, found = estimate_cell(image)
    # the found vectors span the same lattice: each is an integer combination of the true ones
    combination = found @ np.linalg.inv(vectors)
    assert np.allclose(combination, np.round(combination), atol=0.01)
    assert abs(np.linalg.det(np.round(combination))) == 1
    assert estimate == pytest.approx(7.0, rel=0.03)  # resolved: the ACF sees the bond


def test_cell_vectors_need_two_independent_strong_peaks():
    correlation = np.zeros((41, 41))
    peaks = np.array([[20, 30], [20, 10]])  # one direction only
    assert cell_vectors(correlation, peaks, np.ones(2)).shape == (0, 2)


def test_the_motif_of_a_wide_probe_honeycomb_shows_both_columns():
    # the columns overlap (FWHM 0.67 bonds): the autocorrelation's nearest strong peak is the
    # lattice constant, the averaged cell still has two maxima a bond apart
    image, _, _, vectors = blurred_honeycomb(dose=300.0, seed=1, weak=0.6)
    estimate, found = estimate_cell(image)
    assert estimate == pytest.approx(7.0 * math.sqrt(3), rel=0.03)
    flat = image - image.mean()
    spacing, count = motif_spacing(flat, found, noise=math.sqrt(image.mean()))
    assert count == 2
    # the overlapping tails pull the two maxima together by a few percent
    assert 0.92 * 7.0 < spacing < 7.0
    # the weak column is where sublattice B is from A (or the mirror offset of a 120° turn)
    columns = motif_columns(*motif(flat, found), found, math.sqrt(image.mean()))
    offset = columns[1]
    expected = [(vectors[0] + vectors[1]) / 3, -(vectors[0] + vectors[1]) / 3]
    assert min(column_spacing(np.array([offset, e]), found) for e in expected) < 0.5


def test_the_cells_spacing_does_not_depend_on_which_cell_vectors_describe_the_lattice():
    # a MoS2-like cell: a strong and a weak column a bond (7 px) apart, 1.6 px wide; every
    # basis of the same lattice (60 or 120 degrees, either sign) gives one spacing (the axis
    # parabolas of the sheared sample grid gave 18.2 to 19.2 px on a 1024 px MoS2 image)
    image, _, _, vectors = blurred_honeycomb(dose=2000.0, seed=3, weak=0.5, width=1.6)
    flat, noise = image - image.mean(), math.sqrt(image.mean())
    a, b = vectors
    bases = [np.array(v) for v in ([a, b], [a, -b], [-a, b], [b, b - a])]
    spacings = [column_spacing(motif_columns(*motif(flat, basis), basis, noise), basis)
                for basis in bases]  # fmt: skip
    assert max(spacings) - min(spacings) < 0.05
    assert np.mean(spacings) == pytest.approx(7.0, rel=0.03)


def test_cell_vectors_do_not_depend_on_the_order_of_equal_peaks():
    # a hexagonal lattice's autocorrelation has six equally high nearest peaks
    first, _, _ = honeycomb(7.0)
    image = gaussian_columns((SIZE, SIZE), first, np.ones(len(first)), 1.2)
    correlation = _autocorrelation(image - image.mean())
    peaks = peak_local_max(correlation, min_distance=1, exclude_border=1)
    peaks = peaks[np.hypot(*(peaks - np.array(correlation.shape) // 2).T) > 3]
    strength = correlation[tuple(peaks.T)]
    expected = cell_vectors(correlation, peaks, strength)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(peaks))
        assert np.array_equal(cell_vectors(correlation, peaks[order], strength[order]), expected)


def test_one_column_per_cell_and_noise_give_one_column():
    rng = np.random.default_rng(2)
    vectors = np.array([[0.0, 12.0], [12.0 * math.sqrt(3) / 2, 6.0]])
    ij = np.stack(np.meshgrid(np.arange(-20, 20), np.arange(-20, 20), indexing="ij"), -1)
    centres = ij.reshape(-1, 2) @ vectors
    centres = centres[(centres > -4).all(axis=1) & (centres < SIZE + 4).all(axis=1)]
    image = rng.poisson(gaussian_columns((SIZE, SIZE), centres, np.full(len(centres), 20.0),
                                         2.5) + 5.0).astype(float)  # fmt: skip
    spacing, count = motif_spacing(image - image.mean(), vectors, math.sqrt(image.mean()))
    assert count == 1
    assert spacing == pytest.approx(12.0, rel=1e-6)
    # white noise folded on any cell: no maximum is significant beyond the strongest
    noise = rng.normal(0.0, 1.0, (SIZE, SIZE))
    assert motif_spacing(noise, vectors, 1.0)[1] == 1


def test_frames_of_a_drifting_specimen_are_registered_before_they_are_averaged():
    frames, shifts = [], [(0.0, 0.0), (3.0, -2.0), (6.0, -4.0), (9.0, -6.0)]
    for i, shift in enumerate(shifts):
        frames.append(blurred_honeycomb(dose=60.0, seed=10 + i, weak=0.6, shift=shift)[0])
    vectors = honeycomb(7.0)[2]
    flats = [frame - frame.mean() for frame in frames]
    noise = math.sqrt(np.mean(frames))
    _, cells = motif(flats[0], vectors)
    together, all_cells = stacked_motif(flats, vectors)
    assert all_cells == 4 * cells
    columns = motif_columns(together, all_cells, vectors, noise)
    assert len(columns) == 2
    assert column_spacing(columns, vectors) == pytest.approx(7.0, rel=0.05)
    # the mean frame of the drifting specimen is blurred: its cell's contrast is lower
    blurred, _ = motif(np.mean(flats, axis=0), vectors)
    assert np.ptp(together) > 1.2 * np.ptp(blurred)


def test_locate_takes_the_spacing_of_the_averaged_cell_and_finds_both_sublattices():
    image, first, second, _ = blurred_honeycomb(dose=300.0, seed=3, weak=0.6)
    centres = np.vstack([first, second])
    centres = centres[(centres > 0).all(axis=1) & (centres < SIZE - 1).all(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(image, pixel_size=0.2)
    assert table.attrs["spacing_source"] == "shortest column distance of the averaged unit cell"
    assert table.attrs["spacing_px"] == pytest.approx(7.0, rel=0.05)
    # with free widths (before the bound) the fits spread over their neighbours and diverged:
    # F1 0.82-0.87, and half of the weak sublattice was lost (ad hoc, seeds 3-5)
    scores = found_against(table, centres, 2.5)
    assert scores["f1"] > 0.93
    assert scores["rmse"] < 0.65  # [px]
    inside = second[(second > 0).all(axis=1) & (second < SIZE - 1).all(axis=1)]
    assert found_against(table, inside, 2.5)["recall"] > 0.8


def test_the_cell_lets_one_found_sublattice_vote_for_the_other():
    first, second, vectors = honeycomb(7.0)
    found = first[(first > 5).all(axis=1) & (first < SIZE - 5).all(axis=1)]
    inner = second[(second > 20).all(axis=1) & (second < SIZE - 20).all(axis=1)]

    def voted(sites: np.ndarray) -> np.ndarray:
        """Which inner B sites have a voted site within 0.01 px."""
        if not len(sites):
            return np.zeros(len(inner), dtype=bool)
        gaps = np.hypot(*(inner[:, None, :] - sites[None]).transpose(2, 0, 1))
        return gaps.min(axis=1) < 0.01

    # a lattice fitted to the found columns alone (one sublattice) has no site for B
    assert not voted(lattice_sites(found, spacing=7.0)).any()
    cell = Cell(vectors, np.array([[0.0, 0.0], (vectors[0] + vectors[1]) / 3]))
    assert voted(lattice_sites(found, spacing=7.0, cell=cell)).all()
    # a cell of another lattice (four times the area) adds nothing
    other = Cell(2 * vectors, cell.columns)
    assert not voted(lattice_sites(found, spacing=7.0, cell=other)).any()


def test_a_cell_that_resolves_the_columns_located_into_pairs_adds_no_site():
    # dumbbells located as one column each (10 px apart), whose averaged cell shows both atoms
    # 3.7 px apart: taken as sites, the cell's second column falls beside every found one, just
    # beyond the 0.35 spacing that counts as occupied (the U-Net's 21 false columns between
    # the blobs of the real Si [110] image)
    vectors = np.array([[0.0, 10.0], [10.0 * math.sqrt(3) / 2, 5.0]])
    grid = np.stack(np.meshgrid(np.arange(-12.0, 12.0), np.arange(-12.0, 12.0), indexing="ij"), -1)
    found = grid.reshape(-1, 2) @ vectors
    found = found[(found >= 0).all(axis=1) & (found < SIZE).all(axis=1)]
    pair = Cell(vectors, np.array([[0.0, 0.0], [0.0, 3.7]]))

    def inside(sites: np.ndarray) -> np.ndarray:  # (sites beyond the edge are the caller's)
        return sites[((sites >= 0) & (sites < SIZE)).all(axis=1)]

    assert len(inside(lattice_sites(found, spacing=10.0, cell=pair))) == 0
    # the cell's sites are still taken where its columns are as far apart as the spacing
    # (the honeycomb above); and where they are the columns located, as before: a vacancy
    vacancy = np.hypot(*(found - [60.6, 65.0]).T) < 1.0
    assert vacancy.sum() == 1
    sites = inside(lattice_sites(found[~vacancy], spacing=10.0, cell=pair))
    assert np.allclose(sites, found[vacancy], atol=0.01)


def test_the_cells_sites_are_taken_only_where_most_of_them_hold_a_column():
    from atomlens.locate.revise import fitted, with_sites
    from atomlens.locate.sites import column_image, site_significance

    first, second, vectors = honeycomb(7.0)
    inside = [p[(p > 3).all(axis=1) & (p < SIZE - 4).all(axis=1)] for p in (first, second)]
    cell = Cell(vectors, np.array([[0.0, 0.0], (vectors[0] + vectors[1]) / 3]))
    rng = np.random.default_rng(0)
    for weak in (0.6, 0.1):
        expected = gaussian_columns((SIZE, SIZE), np.vstack(inside),
                                    np.r_[np.full(len(inside[0]), 30.0),
                                          np.full(len(inside[1]), 30.0 * weak)], 1.5)  # fmt: skip
        flat = rng.poisson(expected + 5.0).astype(float) - 5.0
        table = fitted(flat, np.rint(inside[0]).astype(int), 7.0, 2)  # only sublattice A found
        result = with_sites(flat, table, 7.0, 2, len(table), cell)
        if weak == 0.6:  # every B site away from the edge (where A voters are fewer) is filled
            inner = inside[1][(inside[1] > 12).all(axis=1) & (inside[1] < SIZE - 13).all(axis=1)]
            assert found_against(result, inner, 2.0)["recall"] > 0.95
        else:
            # B at a tenth of A: a fifth of its sites pass the test alone, which would scatter
            # columns over the image; most fail, so none is taken
            sites = lattice_sites(table[["y", "x"]].to_numpy(), 7.0, cell)
            sites = sites[((sites >= 0) & (sites < SIZE - 1)).all(axis=1)]
            z = site_significance(flat - column_image(flat.shape, table), sites, 1.5)
            assert 10 <= (z >= 3.0).sum() < 0.5 * len(z)
            assert len(result) == len(table)


def test_a_column_under_a_seventh_of_the_strongest_is_not_a_cell_column():
    # O beside Sr in a real ADF image stands at 0.09 of Sr: significant after averaging, too
    # faint to find cell by cell; at 0.3 (S2 beside Mo) it counts
    first, second, vectors = honeycomb(7.0)
    for weak, count in ((0.08, 1), (0.3, 2)):
        heights = np.r_[np.ones(len(first)), np.full(len(second), weak)]
        image = gaussian_columns((SIZE, SIZE), np.vstack([first, second]), heights, 1.3)
        image += np.random.default_rng(1).normal(0.0, 0.002, image.shape)
        assert motif_spacing(image, vectors, 0.002)[1] == count


def _faint_honeycomb(seed: int, counts: float = 50.0, size: int = 256) -> tuple[np.ndarray, ...]:
    """A GaN-like [0001] image at 0.1 Å/px: a strong sublattice (``counts`` per column, 3 px
    wide) and one at a fifth of it, 18.4 px apart (lattice 31.9 px), Poisson noise."""
    first, second, vectors = honeycomb(18.4, size=size, angle=0.3 + 0.1 * seed)
    height = counts / (2 * np.pi * 3.0**2)
    heights = np.r_[np.full(len(first), height), np.full(len(second), 0.2 * height)]
    clean = gaussian_columns((size, size), np.vstack([first, second]), heights, 3.0)
    image = np.random.default_rng(seed).poisson(clean + 0.3).astype(float)
    return image, first, vectors


@pytest.mark.parametrize("seed", [0, 3])
def test_cell_vectors_are_refined_on_the_reflections_of_a_faint_lattice(seed):
    # about 60 cells at 50 counts per column: the autocorrelation's peaks alone were off by
    # up to 5 %, which blurred the averaged cell
    image, _, vectors = _faint_honeycomb(seed)
    _, found = estimate_cell(image, min_spacing=7.5)
    combination = found @ np.linalg.inv(vectors)
    assert np.allclose(combination, np.round(combination), atol=0.01)
    assert np.allclose(np.hypot(*found.T), np.hypot(*vectors.T)[0], rtol=0.006)


def test_with_a_pixel_size_no_spacing_is_shorter_than_any_crystal_has():
    # at 50 counts per column the autocorrelation's noise maxima near its centre once gave
    # spacings of 10-12 px (1.0-1.2 Å here, the true one is 1.84 Å) and 5-30 % false columns
    for seed in range(3):
        image, first, _ = _faint_honeycomb(seed)
        table = locate(image, pixel_size=0.1)
        assert table.attrs["spacing_px"] * 0.1 >= 0.75
        assert len(table) <= 1.1 * len(first)


def blurred_dumbbells(size: int, separation: float, width: float) -> tuple[np.ndarray, ...]:
    """(image, pair centres, cell vectors) of Si [110]-like dumbbells (a centred rectangular
    lattice, pairs ``separation`` px apart along its long side, 0.41 of the nearest translation)
    of Gaussian columns ``width`` px wide filling a ``size`` square."""
    a = separation / 1.36 * 5.431  # [px] the cubic cell, along the pairs
    vectors = np.array([[0.0, a], [a / math.sqrt(8), a / 2]])
    n = int(2 * size / a) + 3
    ij = np.stack(np.meshgrid(np.arange(-n, n), np.arange(-n, n), indexing="ij"), -1)
    centres = ij.reshape(-1, 2) @ vectors + 3.0
    half = np.array([0.0, separation / 2])
    columns = np.vstack([centres - half, centres + half])
    columns = columns[((columns > -3 * width) & (columns < size + 3 * width)).all(axis=1)]
    image = gaussian_columns((size, size), columns, np.ones(len(columns)), width)
    return image, columns, vectors


def test_the_cell_fit_puts_overlapping_columns_where_they_are_not_at_their_maxima():
    # a blurred dumbbell's two maxima lie closer together than its columns (the real Si [110]
    # image: 0.34 instead of 0.41 of the lattice spacing); a Gaussian each, fitted to the
    # whole motif, puts them 15 px apart again
    image, _, vectors = blurred_dumbbells(256, 15.0, 5.5)
    average, cells = motif(image, vectors)
    at_maxima, columns, widths = fitted_motif_columns(average, cells, vectors, 1e-3)
    np.testing.assert_array_equal(at_maxima, motif_columns(average, cells, vectors, 1e-3))
    maxima = column_spacing(at_maxima, vectors)
    assert maxima < 14.0
    assert column_spacing(columns, vectors) == pytest.approx(15.0, abs=0.1)
    assert widths == pytest.approx([5.5, 5.5], rel=0.02)
    # resolved columns keep their maxima (to the fit's precision)
    image, _, vectors = blurred_dumbbells(256, 15.0, 3.0)
    average, cells = motif(image, vectors)
    _, columns, widths = fitted_motif_columns(average, cells, vectors, 1e-3)
    assert column_spacing(columns, vectors) == pytest.approx(15.0, abs=0.05)
    assert widths == pytest.approx([3.0, 3.0], rel=0.02)


def test_locate_finds_both_columns_of_blurred_dumbbells():
    # the spacing from the averaged cell's maxima was 0.79 of the dumbbell; that spacing bounds
    # the fitted widths (0.35 of it), and the fits set a third column between the two
    image, columns, _ = blurred_dumbbells(256, 15.0, 5.5)
    noisy = np.random.default_rng(3).poisson(40.0 * image + 2.0).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(noisy, pixel_size=0.1)
    assert table.attrs["spacing_source"] == "shortest column distance of the averaged unit cell"
    assert table.attrs["spacing_px"] == pytest.approx(15.0, rel=0.03)
    inner = columns[((columns > 10) & (columns < 246)).all(axis=1)]
    found = table[["y", "x"]]
    scores = found_against(table[((found > 10) & (found < 246)).all(axis=1)], inner, 3.0)
    assert scores["f1"] > 0.98
