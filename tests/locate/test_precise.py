"""locate(..., precise=True): every column fitted again in a wider window, nearer the Cramer-Rao
bound where columns are wide for their spacing; the refinement's warm start it is built on."""

import warnings

import numpy as np
import pytest

from atomlens.locate import locate, refine_columns
from atomlens.metrics import cramer_rao_bound_columns, match_positions

SIZE, PERIOD, WIDTH, HEIGHT, BACKGROUND = 160, 10.0, 2.3, 12.0, 2.0  # [px], [counts per px]


def wide_lattice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts of a square lattice of Gaussian columns 0.23 spacings wide (about 400
    counts each, 2 counts per pixel between them), and the centres [px]."""
    rng = np.random.default_rng(seed)
    grid = np.arange(PERIOD / 2, SIZE, PERIOD)
    centres = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    centres = centres + rng.uniform(-0.5, 0.5, centres.shape)
    y, x = np.mgrid[:SIZE, :SIZE].astype(float)
    r2 = (y[..., None] - centres[:, 0]) ** 2 + (x[..., None] - centres[:, 1]) ** 2
    return BACKGROUND + HEIGHT * np.exp(-r2 / (2 * WIDTH**2)).sum(-1), centres


def test_precise_refinement_comes_nearer_the_cramer_rao_bound():
    squares = {False: 0.0, True: 0.0}
    bound = 0.0
    for seed in range(3):
        expected, centres = wide_lattice(seed)
        image = np.random.default_rng(seed).poisson(expected).astype(float)
        inner = centres[((centres > 8) & (centres < SIZE - 9)).all(axis=1)]
        crb = cramer_rao_bound_columns(expected, inner, np.full(len(inner), HEIGHT),
                                       np.full(len(inner), WIDTH))  # fmt: skip
        bound += np.sum(crb**2)
        counts = []
        for precise in (False, True):
            table = locate(image, pixel_size=0.2, precise=precise)
            found, true = match_positions(table[["y", "x"]].to_numpy(), inner, 3.0)
            assert len(true) == len(inner)  # every column found either way
            squares[precise] += np.sum((table[["y", "x"]].to_numpy()[found] - inner[true]) ** 2)
            counts.append(len(table))
        assert counts[0] == counts[1]  # the same columns, only fitted again
    ratio = {precise: np.sqrt(squares[precise] / bound) for precise in squares}
    # windows of one spacing cut these columns at +-2.2 widths: about 1.1 x the bound
    assert ratio[False] > 1.08
    assert ratio[True] < min(1.08, ratio[False] - 0.04)


def test_precise_keeps_everything_else_and_says_so():
    expected, _ = wide_lattice(5)
    image = np.random.default_rng(5).poisson(expected).astype(float)
    plain = locate(image, pixel_size=0.2)
    fine = locate(image, pixel_size=0.2, precise=True)
    assert fine.attrs["precise"] is True and plain.attrs["precise"] is False
    assert list(fine.columns) == list(plain.columns)
    moved = np.hypot(fine["y"] - plain["y"], fine["x"] - plain["x"])
    assert 0 < moved.max() < 0.15 * PERIOD  # refitted, never farther than POLISH_DRIFT
    assert (fine["class"] == plain["class"]).all()


def test_precise_is_for_haadf_and_a_boolean():
    expected, _ = wide_lattice(6)
    image = np.random.default_rng(6).poisson(expected).astype(float)
    with pytest.warns(UserWarning, match="HAADF columns only"):
        abf = locate(-image, pixel_size=0.2, modality="abf", precise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = locate(-image, pixel_size=0.2, modality="abf")
    np.testing.assert_array_equal(abf[["y", "x"]], plain[["y", "x"]])
    with pytest.raises(ValueError, match="precise"):
        locate(image, pixel_size=0.2, precise="yes")


def test_a_warm_start_from_a_converged_fit_stays_there():
    expected, centres = wide_lattice(7)
    peaks = np.rint(centres).astype(int)
    cold = refine_columns(expected, peaks, half=5, width=1.7, rounds=4)
    initial = np.column_stack([cold.amplitude, cold.y, cold.x, cold.width, cold.background])
    warm = refine_columns(expected, peaks, half=5, width=1.7, rounds=1, initial=initial)
    assert np.abs(warm.y - cold.y).max() < 0.01 and np.abs(warm.x - cold.x).max() < 0.01
    # a wider window from the same start: on noise-free Gaussians, the true centres
    wide = refine_columns(expected, peaks, half=9, width=1.7, rounds=3, initial=initial)
    assert np.hypot(wide.y - centres[:, 0], wide.x - centres[:, 1]).max() < 0.01
    with pytest.raises(ValueError, match=r"initial=.*\(256, 5\)"):
        refine_columns(expected, peaks, half=5, width=1.7, initial=initial[:, :4])
