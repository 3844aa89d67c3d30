"""Whether a frame's counts show a column at a lattice site that no detection holds.

At a few tens of counts per column, ``locate`` misses some columns in one frame and finds them
in the next. Read from the detections alone, every such flicker looks like an event: a site
that empties (a vacancy made, or an atom gone to a neighbouring site) and fills again. The
frames themselves tell the two apart: at an empty site a Gaussian column fitted at the site's
fixed position has an amplitude near 0, at a missed column a positive one.

:func:`occupied_in_counts` fits that amplitude (and a constant) at every observed site a frame
left empty, in the frame with its detected columns' Gaussians subtracted
(:func:`atomlens.locate.sites.site_significance`, the test locate's lattice-site search uses),
and counts the site occupied when the amplitude is :data:`OCCUPIED_SIGNIFICANCE` standard
errors above 0 and at least :data:`LEAST_SHARE` of the site's usual column (the median
amplitude of its detections). :func:`atomlens.track.events` reads its sites with those
columns added when given the frames; :func:`missed_detections` turns them into detections, which
:func:`atomlens.track.track` links with the others when it has the stack. :func:`read_counts`
also says where the counts show a site empty (the amplitude well below half its usual column):
there :func:`atomlens.track.events` takes a site empty for one frame between two occupied ones
for a real absence (an atom can move in after it), not for a missed detection.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.core.validation import InputError, check_image
from atomlens.locate.sites import column_image, site_fit, site_significance
from atomlens.track.sites import Sites

__all__ = [
    "LEAST_SHARE",
    "OCCUPIED_SIGNIFICANCE",
    "missed_detections",
    "occupied_in_counts",
    "read_counts",
]

#: Standard errors above 0 that the amplitude of a column fitted at an empty site's fixed
#: position needs for the site to count as occupied. At an empty site the amplitude over its
#: error is close to a Student t (:func:`~atomlens.locate.sites.site_significance`): 3 is
#: passed at about 0.2 % of truly empty sites.
OCCUPIED_SIGNIFICANCE = 3.0
#: Least share of the site's usual column (the median amplitude of its detections in the other
#: frames) that the amplitude at an empty site needs to count as a column: nearer the usual column
#: than nothing. The significance alone is fooled by what the detected columns' Gaussians leave out:
#: at a Mo site of MoS2 emptied for one frame (a vacancy migration; `benchmarks/evaluate_events.py`,
#: series 2) the neighbours' fits, which most likely miss the probe's tails, left a broad hump that
#: stood 5 standard errors above 0 at 5 % of a Mo column. On the tuning series (`evaluate_events.py
#: --seed 4100000 --series 18`, `evaluate_track.py --seed 3100000`; this value edited for each run),
#: shares of 0.25, 0.4 and 0.5 took the moves' recall from 0.838 to 0.859, 0.871 and 0.877
#: (precision 0.975 -> 0.984) and MOTA with the counts from 0.8317 to 0.8316, 0.8310 and 0.8296; on
#: a second set (`--seed 4200000 --series 18`, `--seed 3200000`) 0.25 and 0.5 took the moves from
#: 0.951 / 0.791 to 0.953 / 0.832 and 0.955 / 0.834, MOTA from 0.9464 to 0.9471 and 0.9474. A column
#: the detections missed is often fainter than usual (that is why it was missed), so half, not more.
LEAST_SHARE = 0.5
#: Column width assumed when the tracks carry no fitted ``width`` [column spacings].
DEFAULT_WIDTH = 0.25


def _check_frames(frames: object, sites: Sites) -> object:
    """The stack, checked to be 3-D and to cover every frame of the tracks (each frame is read
    and checked when tested, so a lazy dask stack is never read whole), or InputError."""
    shape = getattr(frames, "shape", None)
    if shape is None:
        frames = np.asarray(frames)
        shape = frames.shape
    if len(shape) != 3:
        raise InputError(
            f"frames=... must be a stack (frames, rows, cols); got an array of shape "
            f"{tuple(shape)}."
        )
    if len(sites.frames) and (sites.frames.min() < 0 or sites.frames.max() >= shape[0]):
        raise InputError(
            f"frames=... holds {shape[0]} frame(s), but the tracks run from frame "
            f"{int(sites.frames.min())} to {int(sites.frames.max())}: give the stack the tracks "
            "were located in."
        )
    return frames


def _frame(stack: object, frame: int) -> np.ndarray:
    """Frame ``frame`` of the stack as float64, checked (finite, real)."""
    return check_image("frames", np.asarray(stack[frame]), min_size=4).astype(np.float64)


def _width(tracks: pd.DataFrame, spacing: float) -> float:
    """The detections' median fitted width [px], or :data:`DEFAULT_WIDTH` spacings."""
    if "width" in tracks:
        widths = pd.to_numeric(tracks["width"], errors="coerce").to_numpy(float)
        widths = widths[np.isfinite(widths) & (widths > 0)]
        if len(widths):
            return float(np.median(widths))
    return DEFAULT_WIDTH * spacing


def _widths(tracks: pd.DataFrame, width: float) -> np.ndarray:
    """Every detection's fitted ``width`` [px], ``width`` where the tracks carry none."""
    if "width" not in tracks:
        return np.full(len(tracks), width)
    widths = pd.to_numeric(tracks["width"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(widths) & (widths > 0), widths, width)


def _amplitudes(tracks: pd.DataFrame, width: float) -> np.ndarray:
    """Every detection's Gaussian peak height, ``intensity`` / (2 pi width^2) (:func:`_widths`),
    in the table's order; NaN where the tracks carry no finite ``intensity``."""
    if "intensity" not in tracks:
        return np.full(len(tracks), np.nan)
    intensity = pd.to_numeric(tracks["intensity"], errors="coerce").to_numpy(float)
    return intensity / (2.0 * math.pi * _widths(tracks, width) ** 2)


def _columns(tracks: pd.DataFrame, width: float) -> dict[str, np.ndarray]:
    """Every detection's frame, y, x [px], amplitude (from ``intensity``; 0 without) and width
    [px] (``width`` where the tracks carry none), as arrays sorted by frame: per-frame slices
    of arrays, not of the table (slicing the table copied its ``attrs`` each time)."""
    order = np.argsort(tracks["frame"].to_numpy(np.int64), kind="stable")
    amplitude = _amplitudes(tracks, width)
    columns = {
        "frame": tracks["frame"].to_numpy(np.int64),
        "y": tracks["y"].to_numpy(float),
        "x": tracks["x"].to_numpy(float),
        "amplitude": np.where(np.isfinite(amplitude), amplitude, 0.0),
        "width": _widths(tracks, width),
    }
    return {name: values[order] for name, values in columns.items()}


def _detected(
    columns: dict[str, np.ndarray], places: np.ndarray, shape: tuple[int, int], width: float
) -> np.ndarray:
    """The Gaussians of one frame's detections (``columns``) drawn on an image of ``shape``:
    only those whose drawn reach (4 of their widths) meets the pixels the test reads (3
    ``width`` s around each place); the others change nothing there."""
    if not len(columns["y"]):
        return np.zeros(shape)
    reach = 3.0 * width + 4.0 * float(columns["width"].max()) + 2.0
    distance, _ = cKDTree(places).query(np.column_stack([columns["y"], columns["x"]]))
    near = distance <= reach
    return column_image(shape, {name: values[near] for name, values in columns.items()})


def _contrast(stack: object, tracks: pd.DataFrame, width: float) -> float:
    """+1 when the detected columns are brighter than their surroundings (HAADF), -1 when
    darker (ABF): the sign of the median amplitude at the detections of the first frames."""
    values = []
    for frame, group in tracks.groupby("frame", sort=True):
        points = group[["y", "x"]].to_numpy(float)
        values.append(site_significance(_frame(stack, int(frame)), points, width))
        if sum(len(v) for v in values) >= 200:
            break
    middle = float(np.median(np.concatenate(values))) if values else 0.0
    return -1.0 if middle < 0 else 1.0


def occupied_in_counts(
    sites: Sites,
    frames: np.ndarray,
    tracks: pd.DataFrame,
    significance: float = OCCUPIED_SIGNIFICANCE,
) -> np.ndarray:
    """(F, S) bool: the observed sites no detection holds where the frame shows a column
    (:func:`read_counts`'s first result).

    Parameters
    ----------
    sites : Sites
        The lattice sites of ``tracks`` (:func:`atomlens.track.sites.lattice_sites`).
    frames : ndarray or dask array (frames, rows, cols)
        The stack the tracks were located in (frame ``f`` of the tracks is ``frames[f]``), any
        units; columns bright or dark (told from the frames at the detections). Only the
        frames with an empty site are read, one at a time.
    tracks : DataFrame
        The tracks (``frame``, ``y``, ``x`` [px]; ``intensity`` and ``width`` as ``locate``
        writes them, when present, to subtract the detected columns before the test).
    significance : float
        Least amplitude of a column at the site [standard errors].

    Returns
    -------
    ndarray (F, S) of bool
        True where a site that no detection holds shows a column in the counts (a missed
        detection: ``significance`` standard errors above 0 and at least :data:`LEAST_SHARE`
        of the median amplitude of the site's detections, where it has any); False
        elsewhere, and at every site a detection holds.

    Raises
    ------
    InputError
        ``frames`` not a finite 3-D stack, or fewer frames than the tracks name.
    """
    return read_counts(sites, frames, tracks, significance)[0]


def read_counts(
    sites: Sites,
    frames: np.ndarray,
    tracks: pd.DataFrame,
    significance: float = OCCUPIED_SIGNIFICANCE,
) -> tuple[np.ndarray, np.ndarray]:
    """What the counts show at every observed site that no detection of a frame holds.

    Parameters and errors as :func:`occupied_in_counts`.

    Returns
    -------
    column, empty : ndarray (F, S) of bool
        ``column``: the counts show a column there (:func:`occupied_in_counts`). ``empty``:
        they show none, the amplitude being ``significance`` standard errors below
        :data:`LEAST_SHARE` of the site's usual column (only at sites with detections in
        other frames). Both False at every site a detection holds; a site whose test is
        undecided is in neither.
    """
    stack = _check_frames(frames, sites)
    width = _width(tracks, sites.spacing)
    sign = _contrast(stack, tracks, width)
    column = np.zeros_like(sites.occupied)
    shown_empty = np.zeros_like(sites.occupied)
    candidates = sites.observed & ~sites.occupied
    columns = _columns(tracks, width)
    usual = _usual_amplitudes(sites, tracks, width)
    bounds = (
        np.searchsorted(columns["frame"], sites.frames),
        np.searchsorted(columns["frame"], sites.frames, side="right"),
    )
    for index in np.flatnonzero(candidates.any(axis=1)):
        image = sign * _frame(stack, int(sites.frames[index]))
        empty = np.flatnonzero(candidates[index])
        places = sites.positions[empty] + sites.shift[index]
        rows = slice(bounds[0][index], bounds[1][index])
        detected = _detected({k: v[rows] for k, v in columns.items()}, places, image.shape, width)
        amplitude, error = site_fit(image - detected, places, width)
        # a site never detected has no usual column (NaN): the significance alone decides
        # whether it holds one, and nothing shows it empty
        half = LEAST_SHARE * usual[empty]
        column[index, empty] = (amplitude / error >= significance) & ~(amplitude < half)
        shown_empty[index, empty] = (half - amplitude) / error >= significance
    return column, shown_empty


def _usual_amplitudes(sites: Sites, tracks: pd.DataFrame, width: float) -> np.ndarray:
    """Each site's median column amplitude (:func:`_amplitudes` of its detections, in the
    frames' units with the columns bright); NaN for a site without one, and everywhere when
    the tracks carry no ``intensity``."""
    detections = tracks[["frame", "particle"]].assign(amplitude=_amplitudes(tracks, width))
    return _site_medians(sites, detections, "amplitude", np.nan)


def _site_medians(sites: Sites, tracks: pd.DataFrame, name: str, fallback: float) -> np.ndarray:
    """The median ``name`` of each site's detections (``fallback`` where none is finite)."""
    out = np.full(len(sites.positions), fallback)
    if name not in tracks:
        return out
    values = tracks[["frame", "particle", name]].astype({"frame": np.int64})
    on = sites.table[sites.table["site"] >= 0][["frame", "particle", "site"]]
    merged = on.merge(values, on=["frame", "particle"], how="left")
    medians = pd.to_numeric(merged[name], errors="coerce").groupby(merged["site"]).median()
    medians = medians[np.isfinite(medians.to_numpy(float))]
    out[medians.index.to_numpy(int)] = medians.to_numpy(float)
    return out


def missed_detections(
    sites: Sites,
    frames: np.ndarray,
    tracks: pd.DataFrame,
    significance: float = OCCUPIED_SIGNIFICANCE,
) -> pd.DataFrame:
    """Detections for the columns the counts show at sites a frame's detections missed.

    Each is put at the site's place in that frame (drift included), with the median
    ``intensity`` and ``width`` of the site's own detections in the other frames (the same
    column; the median of all detections where the site's are not finite), when the tracks
    carry those columns, and ``from_counts`` True.

    Parameters
    ----------
    sites, frames, tracks, significance
        As :func:`occupied_in_counts`.

    Returns
    -------
    DataFrame
        ``frame``, ``y``, ``x`` [px], (``intensity``, ``width`` [px]), ``from_counts``; one
        row per missed column, sorted by frame.
    """
    found = occupied_in_counts(sites, frames, tracks, significance)
    index, site = np.nonzero(found)
    places = sites.positions[site] + sites.shift[index]
    out = pd.DataFrame({"frame": sites.frames[index].astype(np.int64), "y": places[:, 0],
                        "x": places[:, 1]})  # fmt: skip
    for name in ("intensity", "width"):
        if name in tracks:
            values = pd.to_numeric(tracks[name], errors="coerce").to_numpy(float)
            values = values[np.isfinite(values)]
            typical = float(np.median(values)) if len(values) else math.nan
            out[name] = _site_medians(sites, tracks, name, typical)[site]
    out["from_counts"] = np.ones(len(out), dtype=bool)
    return out
