"""Strongly overlapping columns, fitted jointly with their close neighbours.

The refinement (:mod:`atomlens.locate.refine`) fits each column in a window of about a spacing
with its neighbours' current Gaussians subtracted, round after round (block iteration). Where
two columns overlap strongly (a Si [110] dumbbell: 1.36 Å apart, each about 0.4 Å wide) that
loses precision in two ways: the window (half a spacing each side) holds only about 1.7 of the
column's widths, and the rounds converge slowly, each column's error being handed to its
partner and back. On exact Gaussian dumbbells 3.4 widths apart at 1000 counts per column the
position error was 1.38 x the Cramer-Rao bound after 3 rounds, against 1.04 x for the same
columns far apart; wider windows needed about 10 rounds to come within 1.1 x.

Here such a column is fitted in a window of three of its widths, with the amplitudes and
positions of its coupled neighbours free in the same fit (their widths held) and every other
column subtracted (the model: ``atomlens.locate.refine._GroupModel``). The joint fit reaches
the information of the pair in one round. This module chooses the groups and draws the
columns around them.

Coordinates are (row, column) = (y, x) in pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

__all__ = ["COUPLED", "MOST_COUPLED", "coupled_neighbours", "in_pairs", "others_signal"]

#: Two columns are coupled (fitted jointly) when their centres are closer than this many
#: times the sum of their Gaussian widths. Beyond it a window of half a spacing holds over 2
#: widths of the column and the block iteration is within about 1.1 x the bound (on exact
#: Gaussians 1.12 x at 4 widths apart, 1.04 x at 6.75: ``benchmarks/locate_coupled_check.py``).
COUPLED = 2.0
#: Joint fits are for local groups: a column with at most this many coupled neighbours (a
#: dumbbell, a short chain). Where the coupled columns typically have more, the lattice is one
#: its widths barely resolve (HRTEM fringes, columns at the width bound, a honeycomb at 60 kV),
#: and joint fits with some of the neighbours were worse than the block iteration (HRTEM
#: SrTiO3 and Au in ``evaluate_locate.py``: RMSE / CRB 1.8 -> 3.5 with the three nearest of
#: four or six).
MOST_COUPLED = 2
#: A structure of close pairs has its pairs inside the coupling distance (the median nearest
#: neighbour within this share of it) and its next neighbours clearly outside (at most
#: :data:`MOST_COUPLED` within it times :data:`PAIR_MARGIN`): Si [110] has the partner at 3.4
#: widths and the next columns at 5.9, against a coupling distance of 4.
PAIR_INSIDE = 0.95
PAIR_MARGIN = 1.25


def coupled_neighbours(centres: np.ndarray, width: float) -> list[np.ndarray]:
    """For each column, the indices of its coupled neighbours, nearest first.

    Parameters
    ----------
    centres : ndarray (n, 2)
        Column (y, x) [px].
    width : float
        The columns' (typical) Gaussian standard deviation [px]: columns closer than
        :data:`COUPLED` x 2 ``width`` are coupled.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    found = [np.zeros(0, dtype=int) for _ in range(len(centres))]
    if len(centres) < 2:
        return found
    # one pair query for all columns (a per-column loop cost 0.05 s per 2000 columns)
    pairs = spatial.cKDTree(centres).query_pairs(COUPLED * 2.0 * width, output_type="ndarray")
    if not len(pairs):
        return found
    both = np.concatenate([pairs, pairs[:, ::-1]])
    distance = np.hypot(*(centres[both[:, 0]] - centres[both[:, 1]]).T)
    order = np.lexsort((distance, both[:, 0]))
    both = both[order]
    counts = np.bincount(both[:, 0], minlength=len(centres))
    starts = np.concatenate([[0], np.cumsum(counts)])
    for column in np.flatnonzero(counts):
        found[column] = both[starts[column] : starts[column + 1], 1]
    return found


def in_pairs(centres: np.ndarray, width: float) -> bool:
    """Whether the structure's columns come in close groups fitted jointly: the typical column
    (the median) has its nearest neighbour within :data:`PAIR_INSIDE` of the coupling
    distance (every column of Si [110] is in a dumbbell) and at most :data:`MOST_COUPLED`
    neighbours within :data:`PAIR_MARGIN` times it. Not for the odd close pair of a column and
    a noise maximum or a defect, not for a lattice its widths barely resolve (three or more
    coupled neighbours each), and not where the nearest neighbours lie about at the coupling
    distance, where noise would pick the pairs (the real 60 kV MoS2 image, the honeycombs of
    the tracking benchmark)."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if len(centres) < 2:
        return False
    # the pairs clearly inside the coupling distance (not picked by noise around it) ...
    nearest = spatial.cKDTree(centres).query(centres, k=2)[0][:, 1]
    if np.median(nearest) > PAIR_INSIDE * COUPLED * 2.0 * width:
        return False
    # ... and the next neighbours clearly outside it
    wider = [len(group) for group in coupled_neighbours(centres, PAIR_MARGIN * width)]
    return float(np.median(wider)) <= MOST_COUPLED


def others_signal(
    centres: np.ndarray,
    amplitudes: np.ndarray,
    widths: np.ndarray,
    windows: np.ndarray,
    half: int,
    excluded: np.ndarray,
) -> np.ndarray:
    """(n, k*k): the Gaussians of all columns but the ``excluded`` ones at each window's pixels.

    Parameters
    ----------
    centres, amplitudes, widths : ndarray (c, 2), (c,), (c,)
        Every column's (y, x) [px], peak height and width [px]; a zero amplitude draws nothing.
    windows : ndarray (n, 2)
        Integer (y, x) centres of the windows [px]; a window is ``2 half + 1`` px wide.
    excluded : ndarray (n, e)
        Per window, the columns left out (-1 pads).
    """
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    k = len(offsets)
    total = np.zeros((len(windows), k, k))
    if not len(windows) or not len(centres):
        return total.reshape(len(windows), k * k)
    reach = np.sqrt(2.0) * half + 5.0 * float(widths.max())
    lists = spatial.cKDTree(centres).query_ball_point(windows.astype(np.float64), reach)
    counts = np.array([len(items) for items in lists])
    members = np.zeros((len(windows), max(1, counts.max())), dtype=int)
    heights = np.zeros(members.shape)
    for row, items in enumerate(lists):
        items = np.asarray(items, dtype=int)
        keep = ~np.isin(items, excluded[row])
        members[row, : keep.sum()] = items[keep]
        heights[row, : keep.sum()] = amplitudes[items[keep]]
    # separable: a row and a column profile per (window, column), summed by one batched product
    sigma = widths[members][:, :, None]
    cy = (centres[members, 0] - windows[:, 0, None])[:, :, None]
    cx = (centres[members, 1] - windows[:, 1, None])[:, :, None]
    gy = heights[:, :, None] * np.exp(-((offsets - cy) ** 2) / (2.0 * sigma**2))
    gx = np.exp(-((offsets - cx) ** 2) / (2.0 * sigma**2))
    total = gy.transpose(0, 2, 1) @ gx
    return total.reshape(len(windows), k * k)
