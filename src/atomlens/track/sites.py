"""Lattice sites from the tracks themselves, and every detection's site.

No lattice model is fitted: a **site** is a place where one atom sat still for a while.

1. Positions are drift-corrected (the ``drift`` of the tracks' ``attrs`` removed), so a site
   has one position for the whole series (in the coordinates of the first frame).
2. Every trajectory is cut into **stays** where it moves by more than half a column spacing
   between successive detections. A stay of at least ``min_frames`` detections whose RMS
   distance from its median is under ``spread`` column spacings is a still atom; its median is
   a candidate site with that many detections as support.
3. Candidates within ``merge`` column spacings of a better supported one are dropped (the
   stays of one column before and after a gap, or of two atoms that took turns on it, are one
   site; a slow adatom that paused on a column adds nothing).
4. A detection belongs to the nearest site within ``radius`` column spacings, else it is
   off-lattice (site -1). A site is occupied in a frame when a detection of that frame belongs
   to it, and observed when it lies at least a quarter of a column spacing inside the box the
   detections of all frames cover (the field of view; drift moves sites across it). The box's
   edge is the outermost columns themselves: a margin of half a spacing, before, left many of
   the outermost sites and their events out; a quarter keeps the sites whose atoms jitter or
   drift in and out of view out.

A site that was empty for the whole series (a vacancy from the start) is not found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.core.validation import InputError, ParameterError
from atomlens.track.features import drift_corrected
from atomlens.track.track import column_spacing

__all__ = ["Sites", "lattice_sites"]

#: Shortest stay that defines a site [detections].
MIN_FRAMES = 3
#: Largest RMS spread of a stay about its median [column spacings].
SPREAD = 0.2
#: Candidates closer than this are one site [column spacings].
MERGE = 0.5
#: A detection belongs to a site within this distance [column spacings].
RADIUS = 0.35
#: A site is observed in a frame when it lies this far inside the box the detections of all
#: frames cover (the field of view), drift included [column spacings].
EDGE = 0.25
#: A move between successive detections longer than this ends a stay [column spacings].
JUMP = 0.5


@dataclass
class Sites:
    """Lattice sites and the tracks seen against them.

    Attributes
    ----------
    positions : ndarray (S, 2)
        Sites (y, x) in drift-corrected px (the first frame's coordinates).
    support : ndarray (S,)
        Detections of the stays that defined each site.
    table : DataFrame
        The tracks' ``frame``, ``particle``, drift-corrected ``y``, ``x`` [px], the raw
        (detected) ``y_raw``, ``x_raw`` [px], ``site`` (-1 off-lattice) and ``distance`` to it
        [px], sorted by particle and frame.
    frames : ndarray (F,)
        The frame numbers of the series.
    shift : ndarray (F, 2)
        The drift of every frame [px] (raw = corrected + shift).
    occupied, observed : ndarray (F, S) of bool
        Whether a detection of frame f belongs to site s, and whether s lies inside the field
        of view in frame f.
    spacing : float
        The column spacing [px].
    """

    positions: np.ndarray
    support: np.ndarray
    table: pd.DataFrame
    frames: np.ndarray
    shift: np.ndarray
    occupied: np.ndarray
    observed: np.ndarray
    spacing: float

    def raw(self, site: int, frame: int) -> np.ndarray:
        """Where site ``site`` appears in frame ``frame`` (drift included) [px]."""
        return self.positions[site] + self.shift[np.searchsorted(self.frames, frame)]


def _check_fraction(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{name}=... must be a number of column spacings, got {value!r}.")
    if not low < value < high:
        raise ParameterError(
            f"{name}=... must lie in ({low}, {high}) column spacings, got {value}."
        )
    return float(value)


def _spacing(tracks: pd.DataFrame, table: pd.DataFrame) -> float:
    spacing = tracks.attrs.get("spacing_px")
    if spacing is None or not math.isfinite(float(spacing)) or float(spacing) <= 0:
        spacing = column_spacing(
            [g[["y", "x"]].to_numpy() for _, g in table.groupby("frame", sort=True)]
        )
    if not math.isfinite(spacing):
        raise InputError("No frame of tracks holds two atoms: there is no lattice to find.")
    return float(spacing)


def _stays(table: pd.DataFrame, spacing: float, min_frames: int, spread: float) -> tuple:
    """Candidate sites (n, 2) and their support from the still stretches of every track."""
    points = table[["y", "x"]].to_numpy()
    particle = table["particle"].to_numpy()
    step = np.r_[np.inf, np.hypot(*np.diff(points, axis=0).T)]
    new = (step > JUMP * spacing) | np.r_[True, particle[1:] != particle[:-1]]
    starts = np.flatnonzero(new)
    lengths = np.diff(np.r_[starts, len(points)])
    long = lengths >= min_frames
    starts, lengths = starts[long], lengths[long]
    # the medians of all stretches at once (each stretch's values sorted within it; the middle
    # one, or the mean of the middle two, as np.median); one np.median per stretch took a
    # tenth of `events` on a long series
    stretch = np.repeat(np.arange(len(starts)), lengths)
    first = np.cumsum(lengths) - lengths  # each stretch's first place among the kept rows
    rows = np.repeat(starts - first, lengths) + np.arange(len(stretch))
    centre = np.empty((len(starts), 2))
    for axis in range(2):
        values = points[rows, axis]
        ordered = values[np.lexsort((values, stretch))]
        middle = (ordered[first + (lengths - 1) // 2] + ordered[first + lengths // 2]) / 2.0
        centre[:, axis] = middle
    # each stretch's RMS distance from its median, all at once as well
    squares = ((points[rows] - centre[stretch]) ** 2).sum(axis=1)
    rms = np.sqrt(np.bincount(stretch, squares, minlength=len(starts)) / np.maximum(lengths, 1))
    still = rms <= spread * spacing
    return centre[still].reshape(-1, 2), lengths[still].astype(int)


def _suppress(candidates: np.ndarray, support: np.ndarray, reach: float) -> np.ndarray:
    """Indices of the candidates kept: best supported first, none within ``reach`` of another."""
    order = np.argsort(-support, kind="stable")
    if not len(order):
        return order
    # every candidate's neighbours from one query (a query per kept candidate took a tenth
    # of `lattice_sites` on a long series)
    neighbours = cKDTree(candidates).query_ball_point(candidates, reach)
    taken = np.zeros(len(candidates), dtype=bool)
    keep = []
    for index in order:
        if taken[index]:
            continue
        keep.append(index)
        taken[neighbours[index]] = True
    return np.asarray(keep, dtype=int)


def lattice_sites(
    tracks: pd.DataFrame,
    *,
    min_frames: int = MIN_FRAMES,
    spread: float = SPREAD,
    radius: float = RADIUS,
) -> Sites:
    """The lattice sites of a tracks table and every detection's site (module docstring).

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track` (its ``attrs`` give the drift and spacing).
    min_frames : int
        Shortest stay that defines a site [detections].
    spread : float
        Largest RMS spread of such a stay about its median [column spacings].
    radius : float
        A detection belongs to a site within this distance [column spacings].

    Returns
    -------
    Sites
    """
    if isinstance(min_frames, bool) or not isinstance(min_frames, int | np.integer):
        raise ParameterError(f"min_frames=... must be a whole number >= 2, got {min_frames!r}.")
    if min_frames < 2:
        raise ParameterError(f"min_frames=... must be a whole number >= 2, got {min_frames}.")
    spread = _check_fraction("spread", spread, 0.0, 0.5)
    radius = _check_fraction("radius", radius, 0.0, 0.5)
    table = drift_corrected(tracks)
    if table.duplicated(["frame", "particle"]).any():
        raise InputError("tracks has a particle twice in one frame: it is not a table of tracks.")
    raw = tracks[["frame", "particle", "y", "x"]].astype({"frame": np.int64})
    raw = raw.sort_values(["particle", "frame"], kind="stable").reset_index(drop=True)
    table["y_raw"], table["x_raw"] = raw["y"].to_numpy(float), raw["x"].to_numpy(float)
    spacing = _spacing(tracks, table)
    candidates, support = _stays(table, spacing, int(min_frames), spread)
    keep = _suppress(candidates, support, MERGE * spacing)
    positions, support = candidates[keep], support[keep]
    points = table[["y", "x"]].to_numpy()
    site = np.full(len(points), -1)
    distance = np.full(len(points), np.nan)
    if len(positions):
        found, nearest = cKDTree(positions).query(points)
        near = found <= radius * spacing
        site[near], distance[near] = nearest[near], found[near]
    table["site"], table["distance"] = site, distance
    frames = np.unique(table["frame"].to_numpy())
    shift = (table[["y_raw", "x_raw"]].to_numpy() - points).copy()
    per_frame = np.zeros((len(frames), 2))
    index = np.searchsorted(frames, table["frame"].to_numpy())
    per_frame[index] = shift
    occupied = np.zeros((len(frames), len(positions)), dtype=bool)
    occupied[index[site >= 0], site[site >= 0]] = True
    low, high = table[["y_raw", "x_raw"]].min().to_numpy(), table[["y_raw", "x_raw"]].max()
    margin = EDGE * spacing
    seen = positions[None, :, :] + per_frame[:, None, :]
    observed = ((seen >= low + margin) & (seen <= high.to_numpy() - margin)).all(axis=2)
    return Sites(positions, support, table, frames, per_frame, occupied, observed, spacing)
