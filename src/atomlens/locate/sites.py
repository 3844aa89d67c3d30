"""Lattice sites the peak finder left empty: where to look again for a column.

At a few tens of counts per column a column stands only 4-6 noise standard deviations above
its surroundings, so a test of every pixel at ``threshold`` (4) misses some of them; a weak
sublattice (S beside Mo) can be missed almost entirely. The columns that were found say where
the others should be: each votes for its lattice neighbours' sites (its own displacement
carried along, so the votes follow local strain and scan distortion), and a site that gets
enough votes and holds no column is a candidate. There are few such sites, so each can be
tested at a lower significance than a search of every pixel needs; the caller fits it with
its neighbours and keeps it only when its amplitude is significant
(:func:`site_discoveries`): a vacancy gets votes and no column.

The same votes show which columns sit on a lattice site: a column with few votes right beside
one with many is a rival (:func:`off_site_rivals`), at low dose a noise maximum on the flank of
a dumbbell; the caller drops it unless it is strong.

The lattice is :func:`atomlens.analyze.fit_lattice`'s, the one ``atomlens analyze`` reports
(the only use of another task package's function in locate).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from scipy import spatial, special

from atomlens.locate.motif import Cell, column_spacing

if TYPE_CHECKING:
    import pandas as pd

    from atomlens.analyze.lattice import Lattice

__all__ = [
    "CELL_SEPARATION",
    "SITE_DRIFT",
    "SITE_FDR",
    "SITE_FLOOR",
    "SITE_PASSES",
    "SITE_REFIT_SIGNIFICANCE",
    "SITE_SIGNIFICANCE",
    "SITE_VOTES",
    "SITE_WIDTH",
    "column_image",
    "fitted_basis",
    "lattice_sites",
    "off_site_rivals",
    "site_discoveries",
    "site_fit",
    "site_significance",
    "voted_sites",
]

#: Passes of voting, testing and fitting (the columns found in one vote in the next). A third
#: pass added 0.005-0.008 of F1 on the HAADF tuning scenes at 20-50 e-/column (MoS2, Au).
SITE_PASSES = 3
#: Votes a site needs (a site's lattice neighbours within reach each give one).
SITE_VOTES = 3
#: Lattice neighbours a column needs in place to vote (and half of those within reach).
ORDERED = 2
#: Votes closer than this [spacings] are for one site.
VOTE_RADIUS = 0.25
#: A site within this [spacings] of a found column is not empty.
OCCUPIED = 0.35
#: The averaged cell's columns are sites only when they are at least this far apart [spacings]:
#: closer, they are what the columns located hold (the two atoms of a Si [110] dumbbell in a
#: cell whose columns are the dumbbells, 0.34 spacing apart in the real Si [110] image).
CELL_SEPARATION = 0.75
#: A column off the lattice this close [spacings] to one on it is its rival.
RIVAL_DISTANCE = 0.75
#: Least amplitude / its standard error of a column of fixed width at a voted site's position.
SITE_SIGNIFICANCE = 3.0
#: False discovery rate at which voted sites are taken below that (:func:`site_discoveries`)...
SITE_FDR = 0.01
#: ... but never below this significance.
SITE_FLOOR = 1.5
#: ... and of the column fitted there with its neighbours (position and width free, so noise
#: alone reaches higher: the fixed-position test above is the one that decides). With
#: position, width and background free in a small window the amplitude's standard error is
#: several times the fixed test's: at 2, of the 60 sites of a MoS2 tuning scene at 50
#: e-/column that passed the test above (57 of them true S2 columns), 39 failed here; at 1
#: the scene's F1 went 0.923 -> 0.963 (2026-12-01).
SITE_REFIT_SIGNIFICANCE = 1.0
#: That fit's width stays within this factor of the typical width of the columns found.
SITE_WIDTH = 1.6
#: ... and its centre within this many spacings of the site.
SITE_DRIFT = 0.25


def _neighbour_offsets(basis: np.ndarray, motif: np.ndarray, reach: float) -> list[np.ndarray]:
    """For each sublattice k: the vectors (y, x) from a site of k to every site within
    ``reach`` (all sublattices), the site itself excluded."""
    steps = np.arange(-3, 4)
    cells = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2) @ basis
    offsets = []
    for own in motif:
        vectors = (cells[:, None, :] + motif[None, :, :] - own).reshape(-1, 2)
        length = np.hypot(*vectors.T)
        offsets.append(vectors[(length > 1e-6) & (length <= reach)])
    return offsets


def _ballots(
    points: np.ndarray, spacing: float, cell: Cell | None = None, basis: np.ndarray | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(m, 2) (y, x) [px]: every ordered column's votes for its lattice neighbours' sites, and
    the same with the columns of ``cell`` as sites too (empty when the cell adds none); each
    with the votes' distances (m,) to the nearest of ``points`` [px] (inf beyond a little more
    than :data:`OCCUPIED` and :data:`VOTE_RADIUS` spacings: only they are compared with).

    The lattice is fitted to all the points (once for both; ``basis``: a start for the fit,
    :func:`fitted_basis`); a column votes when
    :data:`ORDERED` (and half) of its lattice neighbours are where the lattice puts them
    (random points, an amorphous film or a grain of another orientation fit some lattice too,
    but not around each column). Each vote is the column's own position plus the ideal offset,
    so it carries the voter's displacement (local strain, scan distortion). Empty without a
    lattice.

    When the columns found make one sublattice and the image's averaged unit cell (``cell``,
    :mod:`atomlens.locate.motif`, of the same lattice) holds more columns, the found columns
    are taken as its strongest and vote for the others too: the peak finder misses a weak
    sublattice whose columns stand no higher than the median around them (B beside N in
    hBN, S2 beside Mo), and a lattice fitted to the found columns alone has no site for it.
    Not when the cell's columns are closer than :data:`CELL_SEPARATION` spacings: a column
    located then holds several of them (a dumbbell whose atoms the cell resolves), and its
    strongest is not where the column was found (at the dumbbell's middle), so the sites would
    fall off the columns, just outside the :data:`OCCUPIED` distance of the found ones.
    """
    none = (np.zeros((0, 2)), np.zeros(0))
    try:
        lattice, table = _lattice(*_key(points, basis))
    except (ValueError, np.linalg.LinAlgError):
        return none, none
    if np.hypot(*lattice.basis.T).min() < 0.8 * spacing:  # no translation is that short
        return none, none
    labels = table["sublattice"].to_numpy()
    motifs = [lattice.motif]
    separate = cell is not None and column_spacing(cell.columns, cell.vectors) >= (
        CELL_SEPARATION * spacing
    )
    if separate and len(lattice.motif) == 1 and len(cell.columns) > 1:
        area = abs(np.linalg.det(lattice.basis))
        if abs(abs(np.linalg.det(cell.vectors)) / area - 1.0) < 0.15:
            motifs.append(lattice.motif[0] + cell.columns)
    # every site of the nearest shell of the lattice translations, and the motif sites between
    reach = 1.05 * float(np.hypot(*lattice.basis.T).max())
    tree = spatial.cKDTree(points)
    results = []
    for motif in motifs:
        offsets = _neighbour_offsets(lattice.basis, motif, reach)
        votes, gaps = [none[0]], [none[1]]
        for k, vectors in enumerate(offsets[: len(lattice.motif)]):
            ballots = points[labels == k][:, None, :] + vectors[None]
            # bounded: a vote farther from every column ends its search early (a third of
            # the query's time on a 3800-column frame)
            bound = 1.01 * max(OCCUPIED, VOTE_RADIUS) * spacing
            taken = tree.query(ballots.reshape(-1, 2), distance_upper_bound=bound)[0]
            taken = taken.reshape(ballots.shape[:2])
            need = max(ORDERED, 0.5 * len(vectors))
            ordered = (taken <= VOTE_RADIUS * spacing).sum(axis=1) >= need
            votes.append(ballots[ordered].reshape(-1, 2))
            gaps.append(taken[ordered].ravel())
        results.append((np.vstack(votes), np.concatenate(gaps)))
    return results[0], results[1] if len(results) > 1 else none


def _key(points: np.ndarray, basis: np.ndarray | None) -> tuple[bytes, bytes | None]:
    """The arguments of :func:`_lattice` for (n, 2) points and an optional start basis."""
    start = None if basis is None else np.ascontiguousarray(basis, dtype=np.float64).tobytes()
    return np.ascontiguousarray(points, dtype=np.float64).tobytes(), start


@functools.lru_cache(maxsize=8)
def _lattice(points: bytes, basis: bytes | None = None) -> tuple[Lattice, pd.DataFrame]:
    """:func:`~atomlens.analyze.fit_lattice` of the (n, 2) float64 points in ``points``, from
    the (2, 2) float64 start ``basis`` when given (its own lattice vectors else).

    Kept for the next call: the rival check and the first site search of a frame see the same
    columns whenever no rival was dropped, and one fit of 3800 columns takes 60-110 ms, 5 % of
    locating a frame. (lru_cache is thread-safe; the frames of the threads scheduler only
    evict each other's fits.)
    """
    from atomlens.analyze.lattice import fit_lattice

    start = None if basis is None else np.frombuffer(basis, dtype=np.float64).reshape(2, 2)
    return fit_lattice(np.frombuffer(points, dtype=np.float64).reshape(-1, 2), start)


def fitted_basis(points: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray | None:
    """The basis (rows a, b, (y, x) [px]) of the lattice that :func:`voted_sites` fitted to
    ``points`` (from the start ``basis``, as it was given); None when they show no lattice.

    The next site search of the same frame starts its fit from it: a few columns more leave
    the lattice as it was, and finding its vectors anew took half of each fit (50 ms of
    3800 columns).
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    try:
        return _lattice(*_key(points, basis))[0].basis
    except (ValueError, np.linalg.LinAlgError):
        return None


def _counted(votes: tuple[np.ndarray, np.ndarray], spacing: float) -> np.ndarray:
    """The sites (m, 2) that :data:`SITE_VOTES` or more of ``votes`` agree on, away from the
    columns (``votes``: positions and distances to the nearest column, :func:`_ballots`)."""
    votes, gaps = votes
    votes = votes[gaps > OCCUPIED * spacing]
    if len(votes) < SITE_VOTES:
        return np.zeros((0, 2))
    tree = spatial.cKDTree(votes)
    neighbourhoods = tree.query_ball_point(votes, VOTE_RADIUS * spacing)
    counts = np.array([len(items) for items in neighbourhoods])
    used = np.zeros(len(votes), dtype=bool)
    sites = []
    for i in np.argsort(-counts, kind="stable"):
        if used[i] or counts[i] < SITE_VOTES:
            continue
        members = [j for j in neighbourhoods[i] if not used[j]]
        if len(members) < SITE_VOTES:
            continue
        used[members] = True
        sites.append(votes[members].mean(axis=0))
    return np.array(sites).reshape(-1, 2)


def voted_sites(
    points: np.ndarray, spacing: float, cell: Cell | None = None, basis: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lattice_sites` without and with ``cell``'s columns as sites, from one lattice
    fit (from the start ``basis`` when given: :func:`fitted_basis`); the second is empty when
    the cell adds no site."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    plain, with_cell = _ballots(points, spacing, cell, basis)
    empty = np.zeros((0, 2))
    return _counted(plain, spacing), (_counted(with_cell, spacing) if len(with_cell[0]) else empty)


def lattice_sites(points: np.ndarray, spacing: float, cell: Cell | None = None) -> np.ndarray:
    """(m, 2) float (y, x) of the empty lattice sites that enough found columns vote for.

    Parameters
    ----------
    points : ndarray (n, 2)
        (y, x) of the columns found [px].
    spacing : float
        Nearest-neighbour distance of the columns [px].
    cell : Cell, optional
        The image's averaged unit cell (:func:`atomlens.locate.motif.motif_columns`): its
        columns are sites even when none of their sublattice was found.

    Returns
    -------
    ndarray (m, 2)
        Each site is the mean of its :data:`SITE_VOTES` or more votes (within
        :data:`VOTE_RADIUS` spacings); none within :data:`OCCUPIED` spacings of a found
        column. Empty when the columns show no lattice (fewer than 6, or no two independent
        translations: an amorphous film, a single row).

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij"), -1)
    >>> points = grid.reshape(-1, 2) * 5.0
    >>> missing = (points == [15.0, 20.0]).all(axis=1)
    >>> lattice_sites(points[~missing], spacing=5.0).round(6).tolist()
    [[15.0, 20.0]]
    """
    plain, with_cell = voted_sites(points, spacing, cell)
    return with_cell if cell is not None and len(with_cell) else plain


def off_site_rivals(points: np.ndarray, spacing: float) -> np.ndarray:
    """Mask of the columns that sit off the lattice right beside a column on it.

    A column on a lattice site gets :data:`SITE_VOTES` or more votes within
    :data:`VOTE_RADIUS` spacings of it; a rival gets fewer and lies within
    :data:`RIVAL_DISTANCE` spacings of one that gets them: at a few tens of counts, noise
    makes a third maximum on the flank of a dumbbell or of an elongated column. (Columns in an
    amorphous film or in vacuum get no votes and have no such neighbour, so they are never
    rivals.) The caller drops a rival unless its amplitude is significant.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij"), -1)
    >>> points = np.vstack([grid.reshape(-1, 2) * 5.0, [[15.0, 17.0]]])  # beside (15, 15)
    >>> np.flatnonzero(off_site_rivals(points, spacing=5.0)).tolist()
    [64]
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    rivals = np.zeros(len(points), dtype=bool)
    votes = _ballots(points, spacing)[0][0]
    if len(votes) < SITE_VOTES:
        return rivals
    support = spatial.cKDTree(votes).query_ball_point(points, VOTE_RADIUS * spacing,
                                                      return_length=True)  # fmt: skip
    on_site = support >= SITE_VOTES
    if not on_site.any():
        return rivals
    distance, _ = spatial.cKDTree(points[on_site]).query(points)
    return ~on_site & (distance <= RIVAL_DISTANCE * spacing)


def site_discoveries(z: np.ndarray) -> np.ndarray:
    """Mask of the voted sites taken as columns, from their significances ``z``
    (:func:`site_significance`).

    Each site is a test of "no column here"; z is close to a standard normal where there is
    none. Most voted sites hold a column the peak finder missed, a few are vacancies or lie
    beyond the crystal's edge, so a fixed 3 sigma loses many weak columns for nothing.
    The sites are taken at a false discovery rate of :data:`SITE_FDR` (Benjamini and
    Hochberg, with Storey's estimate of the share of empty sites: twice the share with
    z < 0), never below :data:`SITE_FLOOR` and always from :data:`SITE_SIGNIFICANCE`
    up: mostly empty sites (vacuum beside a crystal) raise the bar, a lattice whose
    sites nearly all hold columns lowers it.

    Examples
    --------
    >>> z = np.r_[np.full(90, 2.4), [-0.5, 0.3, -1.2, 0.8, 0.1]]  # 90 weak columns, 5 empty
    >>> int(site_discoveries(z).sum())
    90
    """
    z = np.asarray(z, dtype=float)
    if not len(z):
        return np.zeros(0, dtype=bool)
    p = special.ndtr(-z)  # one-sided p-values
    empty = min(1.0, 2.0 * float(np.mean(z < 0)) + 1.0 / len(z))
    order = np.argsort(p, kind="stable")
    bound = SITE_FDR * np.arange(1, len(z) + 1) / (empty * len(z))
    passing = np.flatnonzero(p[order] <= bound)
    taken = np.zeros(len(z), dtype=bool)
    if len(passing):
        taken[order[: passing[-1] + 1]] = True
    return (taken & (z >= SITE_FLOOR)) | (z >= SITE_SIGNIFICANCE)


def column_image(shape: tuple[int, int], columns: dict[str, np.ndarray]) -> np.ndarray:
    """The fitted columns' Gaussians (no background) drawn on an image of ``shape``.

    ``columns``: ``y``, ``x`` [px], ``amplitude`` (image units) and ``width`` [px], each drawn
    to 4 of its widths around its nearest pixel; centres more than that off the image draw
    nothing there. A Gaussian is the product of a row and a column profile, so each is two
    small exponentials and one outer product (2000 columns of 4 px: about 30 ms).
    """
    rows, cols = shape
    y, x = np.asarray(columns["y"], float), np.asarray(columns["x"], float)
    amplitude, width = np.asarray(columns["amplitude"], float), np.asarray(columns["width"], float)
    reaches = np.ceil(4.0 * width).astype(int)
    margin = int(reaches.max(initial=0)) + 1
    padded = (rows + 2 * margin, cols + 2 * margin)
    cells, weights = [], []  # one bincount for all (one per reach cost a whole image each)
    iy = np.clip(np.rint(y).astype(int), -margin + 1, rows + margin - 2) if len(y) else y
    ix = np.clip(np.rint(x).astype(int), -margin + 1, cols + margin - 2) if len(x) else x
    for reach in np.unique(reaches):
        group = np.flatnonzero(reaches == reach)
        steps = np.arange(-reach, reach + 1)
        gy = np.exp(-((iy[group, None] + steps - y[group, None]) ** 2)
                    / (2.0 * width[group, None] ** 2))  # fmt: skip
        gx = np.exp(-((ix[group, None] + steps - x[group, None]) ** 2)
                    / (2.0 * width[group, None] ** 2))  # fmt: skip
        values = (amplitude[group, None, None] * gy[:, :, None]) * gx[:, None, :]
        top = np.clip(iy[group] + margin - reach, 0, padded[0] - 2 * reach - 1)
        left = np.clip(ix[group] + margin - reach, 0, padded[1] - 2 * reach - 1)
        span = np.arange(2 * reach + 1)
        index = (top[:, None, None] + span[None, :, None]) * padded[1]
        index = index + (left[:, None, None] + span[None, None, :])
        cells.append(index.ravel())
        weights.append(values.ravel())
    size = padded[0] * padded[1]
    image = (np.bincount(np.concatenate(cells), np.concatenate(weights), minlength=size)
             if cells else np.zeros(size))  # fmt: skip
    return image.reshape(padded)[margin : margin + rows, margin : margin + cols]


def site_significance(residual: np.ndarray, sites: np.ndarray, width: float) -> np.ndarray:
    """How many standard errors a column of ``width`` [px] at each site stands above 0: the
    amplitude of :func:`site_fit` over its standard error (0 where the fit has none)."""
    amplitude, error = site_fit(residual, sites, width)
    return amplitude / error


def site_fit(
    residual: np.ndarray, sites: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """The amplitude of a column of ``width`` [px] at each site and its standard error, in the
    units of ``residual`` (0 and infinite where too few pixels or a degenerate fit leave it
    undetermined).

    At each site (y, x) [px], fixed, the amplitude A of a Gaussian of the given width and a
    constant are fitted by least squares to ``residual`` (the image less the columns already
    found) within 3 widths; its significance is A / its standard error, with the noise variance
    taken from the fit's own residuals. The position is not searched, so under "no column"
    the value is close to a Student t of that many pixels: 3 is exceeded in about 0.2 % of
    empty sites.
    """
    sites = np.asarray(sites, dtype=float).reshape(-1, 2)
    if not len(sites):
        return np.zeros(0), np.zeros(0)
    reach = int(np.ceil(3.0 * width))
    steps = np.arange(-reach, reach + 1)
    dy, dx = (g.ravel() for g in np.meshgrid(steps, steps, indexing="ij"))
    rows = np.rint(sites[:, 0, None]).astype(int) + dy
    cols = np.rint(sites[:, 1, None]).astype(int) + dx
    r2 = (rows - sites[:, 0, None]) ** 2 + (cols - sites[:, 1, None]) ** 2
    use = (r2 <= (3.0 * width) ** 2) & (rows >= 0) & (rows < residual.shape[0])
    use &= (cols >= 0) & (cols < residual.shape[1])
    data = np.where(use, residual[np.clip(rows, 0, residual.shape[0] - 1),
                                  np.clip(cols, 0, residual.shape[1] - 1)], 0.0)  # fmt: skip
    g = np.exp(-r2 / (2.0 * width**2)) * use
    one = use.astype(float)
    # normal equations of (A, background), one 2 x 2 system per site
    sgg, sg1, s11 = (g * g).sum(1), (g * one).sum(1), one.sum(1)
    sgd, s1d = (g * data).sum(1), (one * data).sum(1)
    det = sgg * s11 - sg1**2
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = (s11 * sgd - sg1 * s1d) / det
        background = (sgg * s1d - sg1 * sgd) / det
        rss = (((data - amplitude[:, None] * g - background[:, None] * one) * use) ** 2).sum(1)
        variance = rss / np.maximum(s11 - 2, 1)
        error = np.sqrt(variance * s11 / det)
        z = amplitude / error
    ok = np.isfinite(z) & (s11 > 2)
    return np.where(ok, amplitude, 0.0), np.where(ok, error, np.inf)
