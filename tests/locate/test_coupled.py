"""Strongly overlapping columns fitted jointly (atomlens.locate.coupled) and the precision
this gives the refinement."""

import numpy as np
import pytest

from atomlens.locate import refine_columns
from atomlens.locate.coupled import COUPLED, coupled_neighbours, in_pairs, others_signal
from atomlens.locate.refine import _GroupModel
from atomlens.metrics import cramer_rao_bound_columns


def gaussians(shape, centres, heights, widths):
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    image = np.zeros(shape)
    for (cy, cx), height, width in zip(centres, heights, widths, strict=True):
        image += height * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
    return image


def test_columns_are_coupled_when_closer_than_the_sum_of_their_widths_allows():
    width = 2.0
    centres = np.array([[0.0, 0.0], [0.0, COUPLED * 2 * width - 0.1],  # a coupled pair
                        [40.0, 0.0], [40.0, COUPLED * 2 * width + 0.1]])  # fmt: skip
    found = coupled_neighbours(centres, width)
    assert [list(group) for group in found] == [[1], [0], [], []]
    # a column with close neighbours on a ring: all of them, nearest first
    angles = np.arange(5) * 2 * np.pi / 5
    radii = 3.0 + 0.1 * np.arange(5)[::-1]
    ring = np.column_stack([radii * np.sin(angles), radii * np.cos(angles)])
    found = coupled_neighbours(np.vstack([[0.0, 0.0], ring]), width)
    assert list(found[0]) == [5, 4, 3, 2, 1]
    assert coupled_neighbours(np.zeros((0, 2)), width) == []


def test_only_a_structure_of_close_pairs_is_fitted_jointly():
    width, gap = 4.0, 13.6  # Si [110]-like: every column has its partner 3.4 widths away
    cells = np.array([(y, x) for y in np.arange(0, 200, 54.3) for x in np.arange(0, 200, 38.4)])
    half_gap = np.array([gap / 2, 0.0])
    dumbbells = np.vstack([cells + half_gap, cells - half_gap])
    assert in_pairs(dumbbells, width)
    assert not in_pairs(cells, width)  # well-resolved columns: no pairs
    # a lattice the widths barely resolve (four coupled neighbours each) is not a local group
    square = np.array([(y, x) for y in np.arange(0, 100, 12.0) for x in np.arange(0, 100, 12.0)])
    assert not in_pairs(square, width)
    # nor a honeycomb whose three nearest neighbours lie about at the coupling distance, where
    # noise decides which of them count
    rng = np.random.default_rng(1)
    a = COUPLED * 2 * width
    honeycomb = np.array([(y * 1.5 * a, (x + 0.5 * (y % 2)) * np.sqrt(3) * a)
                          for y in range(8) for x in range(8)])  # fmt: skip
    bond = np.array([a, 0.0])
    honeycomb = np.vstack([honeycomb, honeycomb + bond]) + rng.normal(0, 0.05 * a, (128, 2))
    assert not in_pairs(honeycomb, width)
    # nor a few close pairs (a noise maximum beside a column) among well-resolved columns
    assert not in_pairs(np.vstack([cells, cells[:3] + np.array([5.0, 0.0])]), width)
    assert not in_pairs(np.zeros((0, 2)), width)


def test_others_signal_is_the_sum_of_the_columns_not_excluded():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0, 40, (12, 2))
    heights, widths = rng.uniform(1, 5, 12), rng.uniform(1, 3, 12)
    windows = np.array([[20, 20], [5, 33]])
    excluded = np.array([[0, 4], [7, -1]])
    half = 6
    signal = others_signal(centres, heights, widths, windows, half, excluded)
    for row, (wy, wx) in enumerate(windows):
        keep = ~np.isin(np.arange(12), excluded[row])
        image = gaussians((60, 60), centres[keep] + half, heights[keep], widths[keep])
        window = image[wy : wy + 2 * half + 1, wx : wx + 2 * half + 1]  # shifted by half
        # only columns within reach are drawn: the rest contribute under 1e-5 of a height
        np.testing.assert_allclose(signal[row], window.ravel(), atol=1e-4 * heights.max())


def test_group_model_jacobian_matches_finite_differences():
    half, k = 5, 11
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, k * k))
    model = _GroupModel(data, np.ones((2, k * k)), half, np.array([[1.5, 2.0], [1.2, 1.8]]))
    params = np.array([[3.0, 0.2, -0.3, 1.6, 0.5, 2.0, 3.1, 1.0, 1.0, -2.5, 2.0],
                       [1.0, -0.4, 0.1, 2.1, 0.2, 0.7, -1.0, 3.3, 2.2, 0.5, -3.0]])  # fmt: skip
    residual, jacobian = model(params)
    np.testing.assert_allclose(residual, data - model.values(params), atol=1e-12)
    for i in range(params.shape[1]):
        step = np.zeros_like(params)
        step[:, i] = 1e-6
        numeric = -(model(params + step)[0] - model(params - step)[0]) / 2e-6
        np.testing.assert_allclose(jacobian[:, i], numeric, atol=1e-6)


@pytest.fixture(scope="module")
def dumbbells():
    """Exact Gaussian dumbbells (3.4 widths apart, like Si [110] at 0.1 Å/px) and their
    Cramer-Rao bounds at 1000 counts per column."""
    width, gap = 4.0, 13.6
    centres = []
    for cy in (22.0, 76.0):
        for cx in (20.0, 58.0, 96.0):
            centres += [(cy - gap / 2, cx), (cy + gap / 2, cx)]
    for cy in (49.0,):
        for cx in (39.0, 77.0):
            centres += [(cy - gap / 2, cx), (cy + gap / 2, cx)]
    centres = np.array(centres)
    height = 1000.0 / (2 * np.pi * width**2)
    expected = gaussians((98, 116), centres, np.full(len(centres), height),
                         np.full(len(centres), width)) + 0.05  # fmt: skip
    bound = cramer_rao_bound_columns(expected, centres, np.full(len(centres), height),
                                     np.full(len(centres), width))  # fmt: skip
    return centres, expected, bound


def test_joint_fits_bring_dumbbell_positions_near_the_cramer_rao_bound(dumbbells):
    # fitted column by column in windows of half their distance, the dumbbells' positions
    # scattered 1.38 x the bound (1.04 x for the same columns far apart); jointly about 1.1 x
    centres, expected, bound = dumbbells
    errors, stated = [], []
    for seed in range(40):
        image = np.random.default_rng(seed).poisson(expected).astype(float)
        fit = refine_columns(image, np.rint(centres).astype(int), half=7, width=2.3,
                             widest=4.76)  # fmt: skip
        assert fit.converged.all()
        errors.append((fit.y - centres[:, 0]) ** 2 + (fit.x - centres[:, 1]) ** 2)
        stated.append(fit.sigma_y**2 + fit.sigma_x**2)
    rmse, crb = np.sqrt(np.mean(errors)), np.sqrt(np.mean(np.sum(bound**2, axis=1)))
    assert rmse < 1.22 * crb
    # the stated uncertainty is the joint fit's: near the bound and the scatter
    assert 0.9 * crb < np.sqrt(np.mean(stated)) < 1.15 * crb


def test_a_noise_free_dumbbell_of_unequal_columns_is_fitted_exactly():
    centres = np.array([[20.0, 20.3], [33.4, 20.0]])
    image = gaussians((44, 40), centres, [80.0, 30.0], [4.0, 4.0]) + 2.0
    fit = refine_columns(image, np.rint(centres).astype(int), half=7, width=2.3, widest=4.7)
    np.testing.assert_allclose(np.column_stack([fit.y, fit.x]), centres, atol=1e-3)
    np.testing.assert_allclose(fit.width, 4.0, atol=1e-3)
