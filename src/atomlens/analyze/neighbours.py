"""Neighbour graphs of columns: bonds of the first shell and each column's coordination.

The first shell is the set of columns within ``shell`` x the median nearest-neighbour distance
(1.25 by default: in a square lattice the second shell lies at sqrt(2) = 1.41, in a honeycomb at
sqrt(3) = 1.73 nearest-neighbour distances, so 1.25 keeps only the first). A column whose
first-shell disc reaches beyond the imaged area (the convex hull of the columns) cannot show its
full coordination and is marked ``edge``; the expected coordination is the most common one of
the interior columns, and an interior column with fewer neighbours is under-coordinated (a
vacancy or an edge beside it), with more over-coordinated (an interstitial or adatom close by).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import spatial

__all__ = ["NeighbourGraph", "neighbour_graph"]

#: The first shell's reach in median nearest-neighbour distances.
SHELL = 1.25


class NeighbourGraph:
    """Bonds and coordination of a set of columns.

    Attributes
    ----------
    bonds : DataFrame
        One row per bond: ``a``, ``b`` (row numbers of the two columns, a < b), ``distance``
        [px], ``angle`` [degrees, of b - a in (y, x), in (-180, 180]].
    coordination : ndarray of int
        Neighbours of each column in the first shell.
    edge : ndarray of bool
        Columns whose first shell reaches outside the imaged area.
    expected : int
        The most common coordination of the interior columns (0 with none).
    cutoff : float
        The first shell's reach [px].
    """

    def __init__(
        self,
        bonds: pd.DataFrame,
        coordination: np.ndarray,
        edge: np.ndarray,
        expected: int,
        cutoff: float,
    ):
        self.bonds = bonds
        self.coordination = coordination
        self.edge = edge
        self.expected = expected
        self.cutoff = cutoff

    @property
    def under(self) -> np.ndarray:
        """Interior columns with fewer neighbours than expected."""
        return ~self.edge & (self.coordination < self.expected)

    @property
    def over(self) -> np.ndarray:
        """Interior columns with more neighbours than expected."""
        return ~self.edge & (self.coordination > self.expected)


def _edge(points: np.ndarray, reach: float) -> np.ndarray:
    """Columns nearer than ``reach`` to the boundary of the points' convex hull."""
    if len(points) < 3:
        return np.ones(len(points), dtype=bool)
    try:
        hull = spatial.ConvexHull(points)
    except spatial.QhullError:  # all on a line
        return np.ones(len(points), dtype=bool)
    # hull.equations: n . p + offset <= 0 inside; the distance to a facet is -(n . p + offset)
    distance = -(points @ hull.equations[:, :2].T + hull.equations[:, 2])
    return distance.min(axis=1) < reach


def neighbour_graph(points: np.ndarray, shell: float = SHELL) -> NeighbourGraph:
    """The first-shell neighbour graph of (n, 2) positions (y, x) [px] (module docstring).

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(6.0), np.arange(6.0), indexing="ij"), -1)
    >>> graph = neighbour_graph(grid.reshape(-1, 2) * 10)
    >>> graph.expected, int(graph.coordination[14]), len(graph.bonds)
    (4, 4, 60)
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("neighbour_graph needs finite positions (y, x) [px].")
    if not 1.0 < shell < 3.0:
        raise ValueError(f"shell=... must lie in (1, 3) nearest-neighbour distances, got {shell}.")
    empty = pd.DataFrame({"a": [], "b": [], "distance": [], "angle": []})
    if len(points) < 2:
        return NeighbourGraph(empty, np.zeros(len(points), int), np.ones(len(points), bool), 0,
                              math.nan)  # fmt: skip
    tree = spatial.cKDTree(points)
    nearest = tree.query(points, k=2)[0][:, 1]
    cutoff = shell * float(np.median(nearest[nearest > 0])) if np.any(nearest > 0) else math.nan
    pairs = tree.query_pairs(cutoff, output_type="ndarray") if math.isfinite(cutoff) else None
    if pairs is None or not len(pairs):
        pairs = np.zeros((0, 2), dtype=int)
    delta = points[pairs[:, 1]] - points[pairs[:, 0]]
    bonds = pd.DataFrame(
        {
            "a": pairs[:, 0],
            "b": pairs[:, 1],
            "distance": np.hypot(delta[:, 0], delta[:, 1]),
            "angle": np.degrees(np.arctan2(delta[:, 0], delta[:, 1])),
        }
    ).sort_values(["a", "b"], ignore_index=True)
    coordination = np.bincount(pairs.ravel(), minlength=len(points))
    edge = _edge(points, cutoff)
    interior = coordination[~edge]
    expected = int(np.bincount(interior).argmax()) if len(interior) else 0
    return NeighbourGraph(bonds, coordination, edge, expected, cutoff)
