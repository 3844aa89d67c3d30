"""The lattice of a set of column positions: its basis vectors, the ideal lattice, displacements.

- :func:`lattice_vectors`: the two shortest independent vectors of the lattice, from the
  vectors between neighbouring columns (their densest clusters), refined by least squares.
- :func:`fit_lattice`: every column gets integer lattice indices (and a sublattice when the
  unit cell holds several columns); origin and basis are fitted by least squares to all of them;
  each column's displacement from its ideal site follows.

Positions are (y, x) in pixels or Å (any one length unit, kept throughout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import spatial

__all__ = ["Lattice", "fit_lattice", "lattice_vectors"]


def _points(positions: object) -> np.ndarray:
    array = np.asarray(positions, dtype=float)
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise ValueError(f"positions must be finite (n, 2) (y, x), got shape {array.shape}.")
    if len(array) < 6:
        raise ValueError(f"A lattice needs at least 6 columns, got {len(array)}.")
    return array


def _neighbour_vectors(points: np.ndarray, count: int = 8) -> np.ndarray:
    """Vectors from every column to its ``count`` nearest neighbours."""
    k = min(count + 1, len(points))
    _, index = spatial.cKDTree(points).query(points, k=k)
    return (points[index[:, 1:]] - points[:, None, :]).reshape(-1, 2)


def _cluster_centres(
    vectors: np.ndarray, radius: float, least: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and sizes of the dense clusters of vectors (greedy, densest seed first), down
    to clusters of ``least`` vectors (a cluster never holds more than its seed's neighbours,
    so the scattered vectors of noise and disorder need no query of their own)."""
    tree = spatial.cKDTree(vectors)
    # the seeds' densities from a regular subsample of at most about 2000 vectors: counting
    # around every one of 16,000 vectors (2000 columns) took 0.1 s, and a cluster is found
    # from any of its members
    seeds = np.arange(0, len(vectors), max(1, len(vectors) // 2000))
    counts = np.zeros(len(vectors), dtype=int)
    counts[seeds] = tree.query_ball_point(vectors[seeds], radius, return_length=True)
    taken = np.zeros(len(vectors), dtype=bool)
    centres, sizes = [], []
    order = seeds[np.argsort(-counts[seeds], kind="stable")]
    order = order[counts[order] >= least]
    while True:
        # the densest untaken vector seeds the next cluster (a few tens of clusters: one
        # array pass each is faster than a Python step per vector)
        untaken = order[~taken[order]]
        if not len(untaken):
            break
        i = untaken[0]
        members = np.asarray(tree.query_ball_point(vectors[i], radius), dtype=int)
        members = members[~taken[members]]
        taken[members] = True
        centres.append(vectors[members].mean(axis=0))
        sizes.append(len(members))
    return np.array(centres), np.array(sizes)


def lattice_vectors(positions: object) -> np.ndarray:
    """The two shortest independent lattice vectors (rows, (y, x)) of a set of columns.

    Neighbour vectors of every column are clustered (radius a fifth of the median nearest
    distance); clusters that hold at least three quarters as many vectors as the largest are the
    lattice's translations (every column has them; a vector from one sublattice to another
    belongs to that sublattice's columns only). The shortest is the first basis vector a; the
    second, b, is the shortest remaining one at least 20 degrees from it; both are refined by
    least squares on all neighbour vectors. Signs: a has x > 0 (y > 0 when x is 0) and
    ``a_x b_y - a_y b_x > 0``.

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(8.0), indexing="ij"), -1)
    >>> points = (grid.reshape(-1, 2) @ np.array([[0.0, 4.0], [3.0, 0.0]]))  # rows: a, b
    >>> (np.round(lattice_vectors(points), 3) + 0.0).tolist()
    [[3.0, 0.0], [0.0, -4.0]]
    """
    points = _points(positions)
    vectors = _neighbour_vectors(points)
    nearest = float(np.median(np.hypot(*vectors.T)))
    centres, sizes = _cluster_centres(vectors, 0.2 * nearest, least=int(0.25 * len(points)))
    if len(centres) < 2:
        raise ValueError("The columns show no two independent lattice translations.")
    translations = centres[(sizes >= 0.75 * sizes.max()) & (sizes >= 0.25 * len(points))]
    translations = translations[np.argsort(np.hypot(*translations.T))]
    if len(translations) < 2:
        raise ValueError("The columns show no two independent lattice translations.")
    first = translations[0]
    for candidate in translations[1:]:
        cosine = abs(first @ candidate) / (np.hypot(*first) * np.hypot(*candidate))
        if cosine < np.cos(np.radians(20)):
            second = candidate
            break
    else:
        raise ValueError("The columns show no two independent lattice translations.")
    basis = _canonical(np.array([first, second]))
    return _refine_basis(points, basis)


def _canonical(basis: np.ndarray) -> np.ndarray:
    """First vector with x > 0 (or y > 0 at x = 0); the second with ``a_x b_y - a_y b_x > 0``."""
    first, second = basis
    if first[1] < 0 or (first[1] == 0 and first[0] < 0):
        first = -first
    cross = first[1] * second[0] - first[0] * second[1]  # x1 y2 - y1 x2
    if cross < 0:
        second = -second
    return np.array([first, second])


def _refine_basis(points: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Least-squares basis from the neighbour vectors that are small integer combinations."""
    vectors = _neighbour_vectors(points, count=12)
    coefficients = vectors @ np.linalg.inv(basis)
    rounded = np.rint(coefficients)
    good = (np.abs(coefficients - rounded).max(axis=1) < 0.15) & (np.abs(rounded).sum(axis=1) > 0)
    if good.sum() < 4:
        return basis
    solution, *_ = np.linalg.lstsq(rounded[good], vectors[good], rcond=None)
    return solution


@dataclass(frozen=True)
class Lattice:
    """A fitted lattice.

    Attributes
    ----------
    origin : ndarray (2,)
        (y, x) of the site (0, 0) of sublattice 0.
    basis : ndarray (2, 2)
        Rows: the lattice vectors a and b, (y, x).
    motif : ndarray (m, 2)
        Offset (y, x) of each sublattice's site from the lattice point.
    """

    origin: np.ndarray
    basis: np.ndarray
    motif: np.ndarray

    def sites(self, indices: np.ndarray, sublattice: np.ndarray) -> np.ndarray:
        """Ideal positions (y, x) of sites with integer ``indices`` (n, 2) on ``sublattice``."""
        return self.origin + indices @ self.basis + self.motif[sublattice]

    @property
    def lengths(self) -> np.ndarray:
        """|a|, |b| (the unit of the positions)."""
        return np.hypot(*self.basis.T)

    @property
    def angle(self) -> float:
        """The angle between a and b [degrees]."""
        a, b = self.basis
        return float(np.degrees(np.arccos(a @ b / (np.hypot(*a) * np.hypot(*b)))))


def fit_lattice(
    positions: object, basis: np.ndarray | None = None, *, tolerance: float = 0.25
) -> tuple[Lattice, pd.DataFrame]:
    """Assign every column to a lattice site and fit the lattice to all of them.

    Fractional coordinates of every column in the basis (``lattice_vectors`` unless given) are
    folded into the unit cell; their clusters are the sublattices (columns more than
    ``tolerance`` cells from every cluster are left unassigned: interstitials, noise). The
    origin, the basis and the sublattice offsets are then fitted by linear least squares to all
    assigned columns at once.

    Parameters
    ----------
    positions : array-like (n, 2)
        (y, x) of the columns.
    basis : ndarray (2, 2), optional
        Rows a, b, (y, x): a starting basis.
    tolerance : float
        Largest distance of a column from its sublattice, in fractions of the cell.

    Returns
    -------
    Lattice
    DataFrame
        Per column: ``i``, ``j`` (integer indices), ``sublattice`` (-1 when unassigned),
        ``y_ideal``, ``x_ideal``, ``dy``, ``dx`` (displacement from the ideal site).

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij"), -1)
    >>> square = grid.reshape(-1, 2) * 4.0
    >>> points = np.vstack([square, square + [2.0, 1.0]])  # two sublattices
    >>> lattice, table = fit_lattice(points)
    >>> len(lattice.motif), float(np.abs(table[["dy", "dx"]]).max().max()) < 1e-9
    (2, True)
    """
    points = _points(positions)
    basis = lattice_vectors(points) if basis is None else np.asarray(basis, dtype=float)
    inverse = np.linalg.inv(basis)
    reference = points[np.argmin(np.hypot(*(points - points.mean(axis=0)).T))]
    fractional = (points - reference) @ inverse
    wrapped = fractional - np.floor(fractional + 0.5)  # in [-0.5, 0.5)
    centres, labels = _sublattices(wrapped, tolerance)
    indices = np.rint(fractional - centres[np.maximum(labels, 0)]).astype(int)
    assigned = labels >= 0
    m = len(centres)
    # unknowns: origin (2), basis (4), motif offsets of sublattices 1.. (2 (m - 1))
    design = np.zeros((assigned.sum(), 3 + m - 1))
    design[:, 0] = 1.0
    design[:, 1:3] = indices[assigned]
    for k in range(1, m):
        design[:, 2 + k] = labels[assigned] == k
    solution, *_ = np.linalg.lstsq(design, points[assigned], rcond=None)
    origin, fitted_basis = solution[0], solution[1:3]
    motif = np.vstack([np.zeros(2), solution[3:]]) if m > 1 else np.zeros((1, 2))
    lattice = Lattice(origin, fitted_basis, motif)
    ideal = np.full_like(points, np.nan)
    ideal[assigned] = lattice.sites(indices[assigned], labels[assigned])
    table = pd.DataFrame(
        {
            "i": np.where(assigned, indices[:, 0], -1),
            "j": np.where(assigned, indices[:, 1], -1),
            "sublattice": labels,
            "y_ideal": ideal[:, 0],
            "x_ideal": ideal[:, 1],
            "dy": points[:, 0] - ideal[:, 0],
            "dx": points[:, 1] - ideal[:, 1],
        }
    )
    return lattice, table


#: The most columns whose neighbours are counted to seed a sublattice (:func:`_sublattices`).
SEED_POINTS = 500


def _sublattices(wrapped: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Cluster fractional positions in the unit cell (periodic); the most populated first.

    Seeded greedily (each cluster takes the remaining columns within ``tolerance`` of its
    seed), then settled by :func:`_nearest_centres`. Returns the clusters' fractional centres
    and each column's label.
    """
    centres = []
    remaining = np.ones(len(wrapped), dtype=bool)
    while remaining.sum() >= max(3, 0.05 * len(wrapped)):
        candidates = np.flatnonzero(remaining)
        # a periodic k-d tree counts the neighbours in the cell: n log n, not an n x n matrix
        # (2000 columns took 0.3 s per sublattice that way)
        cell = np.mod(wrapped[candidates], 1.0)
        cell[cell >= 1.0] = 0.0
        tree = spatial.cKDTree(cell, boxsize=1.0)
        # the seed is the densest point on half the tolerance: on the full tolerance a point
        # between two sublattices closer than 2 tolerances (a honeycomb's, 0.47 cells apart at
        # tolerance 0.25) counts both and wins, and its cluster then takes parts of both
        # counted around a regular subsample of at most about SEED_POINTS of them: around
        # every one of 3800 columns took a fifth of the fit (each sublattice's columns lie
        # within a few hundredths of a cell), and any of a cluster's members seeds it
        probes = np.arange(0, len(candidates), max(1, len(candidates) // SEED_POINTS))
        near = tree.query_ball_point(cell[probes], 0.5 * tolerance, return_length=True)
        seed = candidates[probes[np.argmax(near)]]
        offset = wrapped[candidates] - wrapped[seed]
        offset -= np.rint(offset)
        members = candidates[np.hypot(*offset.T) < tolerance]
        if len(members) < max(3, 0.05 * len(wrapped)):
            break
        centre = wrapped[seed] + np.mean(offset[np.hypot(*offset.T) < tolerance], axis=0)
        centres.append(centre)
        remaining[members] = False
    if not centres:
        raise ValueError("No sublattice holds enough columns to fit a lattice.")
    return _nearest_centres(wrapped, np.array(centres), tolerance)


#: Rounds of :func:`_nearest_centres`.
REASSIGNMENTS = 3


def _nearest_centres(
    wrapped: np.ndarray, centres: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each column joins the nearest centre within ``tolerance`` (periodic), and each centre
    moves to its columns' mean, :data:`REASSIGNMENTS` times (k-means from the seeded clusters).

    The greedy clusters take every column within the tolerance of their seed, first come
    first served. A start basis 1 % off smears each sublattice over a few tenths of the cell
    (a honeycomb's sublattices are 0.47 cells apart), and of the other sublattice's 900
    columns the first cluster took 40-100 when seeded on the full tolerance, 1-3 seeded on
    half of it, and 0-1 after this (tests/analyze/test_analyze.py's honeycomb, 4 seeds).
    """
    labels = np.full(len(wrapped), -1)
    for _ in range(REASSIGNMENTS):
        offsets = wrapped[:, None, :] - centres[None, :, :]
        offsets -= np.rint(offsets)
        distance = np.hypot(offsets[..., 0], offsets[..., 1])
        nearest = np.argmin(distance, axis=1)
        labels = np.where(distance[np.arange(len(wrapped)), nearest] < tolerance, nearest, -1)
        for k in range(len(centres)):
            if (labels == k).any():
                centres[k] = centres[k] + offsets[labels == k, k].mean(axis=0)
    return centres, labels
