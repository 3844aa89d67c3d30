"""Sample drift between the frames of a series, from the detections alone.

Between two frames the drift is the shift that lays the most detections of the first frame onto
detections of the second:

1. every displacement from a detection of the earlier frame (at most
   :data:`HISTOGRAM_POINTS` of them) to one of the later frame within ``max_drift`` is put into
   a 2-D histogram with bins of half the search range (at most
   :data:`MAX_BINS` on each side of zero), smoothed by a
   Gaussian of one bin (the point-set analogue of phase correlation);
2. the strongest few peaks are refined by the mean of the displacements within half a search
   range and scored by how many displacements lie there. On a lattice every lattice vector
   gives a peak too; a shift by a lattice vector lays fewer detections onto each other only
   where the lattice ends within the view or has defects, and columns entering the view at one
   edge and leaving at the other can tip the balance either way. So the peaks scoring within
   1.5 square roots of the best score (about one row of the lattice) count as ties, and the one
   nearest the previous frame pair's drift (zero for the first pair) wins: drift is taken to
   change by less than half the column spacing from one frame to the next;
3. the winner is refined by the median displacement of mutually nearest neighbours (the earlier
   frame shifted by the estimate) within the search range, twice.

Drift is accumulated from frame to frame: ``drift[k]`` is the shift of frame ``k`` from the first
frame [px]; frames with no detections get the drift interpolated linearly in frame number.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["estimate_drift", "pair_drift"]

#: How many histogram peaks are refined and scored.
PEAKS = 12
#: The most histogram bins on each side of zero (a coarser histogram for a far reach).
MAX_BINS = 256
#: The most detections of the earlier frame whose displacements make the histogram (every
#: k-th one; the shift is refined on all of them): a 512 px frame of 2000 columns would give
#: 800 000 displacements per frame pair within a quarter of the frame, most of the run's time.
HISTOGRAM_POINTS = 400
#: Peaks scoring within this many square roots of the best score (about one row of the
#: lattice: the border effect) are ties, decided by the previous drift.
TIE = 1.5


def _displacements(before: np.ndarray, after: np.ndarray, max_drift: float) -> np.ndarray:
    """All vectors ``after[j] - before[i]`` no longer than ``max_drift`` [px], shape (n, 2).

    The pairs come from the trees' sparse distance matrix, built in C (a Python loop over the
    neighbour lists took most of the time of a 2000-column frame pair).
    """
    pairs = cKDTree(before).sparse_distance_matrix(cKDTree(after), max_drift, output_type="ndarray")
    if not len(pairs):
        return np.zeros((0, 2))
    return after[pairs["j"]] - before[pairs["i"]]


def _bins(values: np.ndarray, edges: np.ndarray, width: float) -> np.ndarray:
    """The bin of each value between uniform ``edges`` (``width`` apart; the last bin holds its
    right edge), as ``np.histogram2d`` assigns them: arithmetic, then the neighbour where
    rounding put a value across an edge (numpy's edge search took a tenth of the tracking)."""
    last = len(edges) - 2
    index = np.clip(np.floor((values - edges[0]) / width).astype(np.intp), 0, last)
    index -= (values < edges[index]) & (index > 0)
    index += (values >= edges[index + 1]) & (index < last)
    return index


def _peaks(vectors: np.ndarray, max_drift: float, width: float) -> np.ndarray:
    """Centres of the strongest peaks of the smoothed displacement histogram [px], (k, 2)."""
    width = max(width, max_drift / MAX_BINS)
    bins = max(1, math.ceil(max_drift / width))
    edges = np.linspace(-bins * width, bins * width, 2 * bins + 1)
    row, col = _bins(vectors[:, 0], edges, width), _bins(vectors[:, 1], edges, width)
    counts = np.bincount(row * (2 * bins) + col, minlength=(2 * bins) ** 2).astype(float)
    counts = counts.reshape(2 * bins, 2 * bins)  # float: the smoothing keeps its input type
    smooth = ndimage.gaussian_filter(counts, 1.0, mode="constant")
    top = ndimage.maximum_filter(smooth, size=3, mode="constant")
    rows, cols = np.nonzero((smooth == top) & (smooth > 0))
    order = np.argsort(-smooth[rows, cols], kind="stable")[:PEAKS]
    centres = 0.5 * (edges[:-1] + edges[1:])
    return np.column_stack([centres[rows[order]], centres[cols[order]]])


def _refine_peak(vectors: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, int]:
    """The mean of the vectors within ``radius`` of ``centre`` (two mean-shift steps), and how
    many lie within ``radius`` of it; ``vectors`` is (2, n): dy, then dx.

    Only the vectors in a box of 3 radii around ``centre`` are looked at (the two steps move
    the centre at most a radius each), picked by a mask on each axis rather than from a k-d
    tree: building a tree of the ~200 000 displacements of a 512 px frame pair took most of
    the drift estimate.
    """
    box = 3.0 * radius
    inside = (np.abs(vectors[0] - centre[0]) <= box) & (np.abs(vectors[1] - centre[1]) <= box)
    vectors = vectors[:, inside].T
    for _ in range(2):
        near = ((vectors - centre) ** 2).sum(axis=1) <= radius**2
        if not near.any():
            return centre, 0
        centre = vectors[near].mean(axis=0)
    return centre, int((((vectors - centre) ** 2).sum(axis=1) <= radius**2).sum())


def _mutual_nearest(before: np.ndarray, after: np.ndarray, shift: np.ndarray, radius: float):
    """Residual displacements of mutually nearest neighbours (``before + shift`` to ``after``)."""
    moved = before + shift
    forward_d, forward = cKDTree(after).query(moved, distance_upper_bound=radius)
    _, backward = cKDTree(moved).query(after)
    ok = np.isfinite(forward_d)
    ok[ok] = backward[forward[ok]] == np.flatnonzero(ok)
    return after[forward[ok]] - moved[ok]


def pair_drift(
    before: np.ndarray,
    after: np.ndarray,
    search_range: float,
    max_drift: float,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """The drift (dy, dx) from one frame's detections to the next's [px] (module docstring).

    Parameters
    ----------
    before, after : ndarray (n, 2), (m, 2)
        Positions (y, x) [px] in the earlier and the later frame.
    search_range : float
        The linking search range [px]: sets the histogram bins and the matching radius.
    max_drift : float
        The largest drift looked for [px / frame].
    prior : ndarray (2,), optional
        The previous pair's drift [px]; breaks ties between equally good peaks (default 0).

    Returns
    -------
    ndarray (2,)
        NaN when no displacement lies within ``max_drift``.
    """
    prior = np.zeros(2) if prior is None else np.asarray(prior, dtype=float)
    every = max(1, math.ceil(len(before) / HISTOGRAM_POINTS))
    vectors = _displacements(before[::every], after, max_drift)
    if not len(vectors):
        return np.full(2, np.nan)
    axes = np.ascontiguousarray(vectors.T)
    candidates = [
        _refine_peak(axes, centre, 0.5 * search_range)
        for centre in _peaks(vectors, max_drift, 0.5 * search_range)
    ]
    best = max(score for _, score in candidates)
    margin = max(2.0, TIE * math.sqrt(best))
    tied = [centre for centre, score in candidates if score >= best - margin]
    shift = min(tied, key=lambda centre: float(np.hypot(*(centre - prior))))
    for _ in range(2):
        residual = _mutual_nearest(before, after, shift, search_range)
        if len(residual):
            shift = shift + np.median(residual, axis=0)
    return shift


def estimate_drift(
    positions: list[np.ndarray],
    frames: np.ndarray,
    search_range: float,
    max_drift: float,
) -> np.ndarray:
    """The accumulated drift of every frame from the first [px], shape (len(frames), 2).

    Parameters
    ----------
    positions : list of ndarray (n_k, 2)
        The detections (y, x) [px] of each frame, in the order of ``frames``.
    frames : ndarray of int
        The frame numbers, increasing.
    search_range : float
        The linking search range [px].
    max_drift : float
        The largest drift looked for between two frames with detections [px].
    """
    frames = np.asarray(frames)
    known = [k for k, p in enumerate(positions) if len(p)]
    drift = np.full((len(frames), 2), np.nan)
    if not known:
        return np.zeros((len(frames), 2))
    drift[known[0]] = 0.0
    prior = np.zeros(2)
    for a, b in itertools.pairwise(known):
        gap = frames[b] - frames[a]
        step = pair_drift(positions[a], positions[b], search_range, max_drift * gap, prior * gap)
        if not np.all(np.isfinite(step)):
            step = prior * gap
        drift[b] = drift[a] + step
        prior = step / gap
    for axis in range(2):  # frames without detections: linear in frame number
        drift[:, axis] = np.interp(frames, frames[known], drift[known, axis])
    return drift
