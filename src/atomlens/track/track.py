"""The track verb: atoms through an image series, as trajectories with trackpy's column names.

1. A stack is located first (:func:`atomlens.locate`, every frame); a table of detections is
   taken as it is (``frame``, ``y``, ``x`` [px], as locate returns for a stack).
2. The column spacing is the median nearest-neighbour distance of the detections within their
   frames; it sets the search range (half of it) and the reach of hops and fast movers (twice
   it) unless given.
3. The drift of every frame is estimated from the detections and removed
   (:mod:`atomlens.track.drift`).
4. The drift-corrected detections are linked frame by frame, each frame's links one global
   assignment: lattice links, then gaps, hops and fast movers (:mod:`atomlens.track.link`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.core.validation import InputError
from atomlens.track.checks import (
    check_distance,
    check_memory,
    check_stack,
    check_table,
    check_times,
)
from atomlens.track.drift import estimate_drift
from atomlens.track.link import intensity_scatter, link

__all__ = ["COLUMNS", "column_spacing", "track"]

#: The columns the verb puts first, in order; the input's other columns follow.
COLUMNS = ("frame", "particle", "y", "x", "y_A", "x_A", "confidence")
#: Default search range as a fraction of the column spacing.
SEARCH_FRACTION = 0.5
#: Default reach of hops and fast movers in column spacings.
FAST_SPACINGS = 2.0
#: Default largest drift looked for, as a fraction of the detections' extent.
DRIFT_FRACTION = 0.25


def column_spacing(frames: list[np.ndarray]) -> float:
    """The median nearest-neighbour distance of the detections within their frames [px].

    NaN when no frame holds two detections at distinct places.
    """
    distances = [
        cKDTree(points).query(points, k=2)[0][:, 1] for points in frames if len(points) >= 2
    ]
    values = np.concatenate(distances) if distances else np.zeros(0)
    values = values[values > 0]
    return float(np.median(values)) if len(values) else math.nan


def _detections(
    frames: object,
    pixel_size: float | None,
    modality: str,
    locate_options: dict[str, Any] | None,
    parallel: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The table of detections: the input table checked, or the stack located (on Dask with
    ``parallel``'s scheduler and workers; a dask array stack is then not read whole)."""
    if isinstance(frames, pd.DataFrame):
        if locate_options:
            raise ValueError("locate_options=... applies to a stack, not to a table of detections.")
        return check_table(frames)
    from atomlens.core.parallel import is_lazy
    from atomlens.locate import locate

    lazy = parallel and is_lazy(frames) and frames.ndim == 3 and frames.shape[0] >= 2
    stack = frames if lazy else check_stack(frames)
    options = {"modality": modality, **(locate_options or {}), **(parallel or {})}
    located = locate(stack, pixel_size=pixel_size, **options)
    if located["frame"].nunique() < 2:
        raise InputError(
            f"locate found columns in {located['frame'].nunique()} frame(s) of the stack: "
            "tracking needs detections in at least two."
        )
    return check_table(located)


def _intensities(table: pd.DataFrame) -> np.ndarray | None:
    """The detections' integrated intensities for the brightness cost of the linking, when the
    table has a finite, positive ``intensity`` for every detection (``atomlens.locate``'s);
    else None (positions alone)."""
    if "intensity" not in table:
        return None
    values = pd.to_numeric(table["intensity"], errors="coerce").to_numpy(float)
    if not len(values) or not np.all(np.isfinite(values) & (values > 0)):
        return None
    return values


def track(
    frames: pd.DataFrame | np.ndarray,
    pixel_size: float | None = None,
    frame_time: float | None = None,
    *,
    search_range: float | None = None,
    memory: int = 3,
    fast_range: float | None = None,
    max_drift: float | None = None,
    drift: bool = True,
    modality: str = "haadf",
    locate_options: dict[str, Any] | None = None,
    scheduler: str | Any = None,
    workers: int | None = None,
    stack: np.ndarray | None = None,
    fill: bool = True,
) -> pd.DataFrame:
    """Link the atoms of an image series into trajectories.

    Parameters
    ----------
    frames : DataFrame or ndarray (frames, rows, cols)
        Detections with ``frame``, ``y``, ``x`` [px] (the table ``atomlens.locate`` returns
        for a stack; other columns are kept), or the stack itself, located first.
    pixel_size : float, optional
        [Å/px]; fills ``y_A``, ``x_A``. Taken from the table's ``attrs["pixel_size"]`` when not
        given.
    frame_time : float, optional
        Time between frames [s]; kept in ``attrs`` for the features (speeds in Å/s).
    search_range : float, optional
        The farthest an atom moves between frames and keeps its lattice link [px]; default half
        the column spacing (the median nearest-neighbour distance of the detections).
    memory : int
        The most frames an atom may be missed and keep its identity.
    fast_range : float, optional
        The reach of a hop to a neighbouring site and of a fast mover's step from its
        constant-velocity prediction [px]; default twice the column spacing (four search
        ranges when ``search_range`` is given).
    max_drift : float, optional
        The largest drift looked for between frames [px / frame]; default a quarter of the
        detections' extent.
    drift : bool
        Estimate and remove the drift (else positions are linked as they are).
    modality : {"haadf", "abf", "hrtem"}
        For a stack: what the images show (``atomlens.locate``'s ``modality``).
    locate_options : dict, optional
        For a stack: further keywords of ``atomlens.locate`` (``spacing``, ``threshold``,
        ``method``...).
    scheduler : {"threads", "processes", "synchronous"} or str, optional
        For a stack: locate its frames in parallel on Dask, locally or on the
        dask.distributed cluster at an address (``atomlens.locate``'s ``scheduler``; the
        detections, and so the tracks, are the serial ones). The stack may then be a dask
        array (``atomlens.core.parallel.open_stack``), read a block of frames at a time.
    workers : int, optional
        Local Dask workers (``atomlens.locate``'s ``workers``). Both are checked, then
        ignored for a table of detections (the linking is one serial pass).
    stack : ndarray or dask array (frames, rows, cols), optional
        For a table of detections: the stack they were located in (``frames`` itself when it
        is the stack).
    fill : bool
        With the stack: once linked, a lattice site that a frame's detections missed but
        where that frame's counts show a column (3 standard errors;
        :func:`atomlens.track.evidence.missed_detections`) gets a detection at the site's
        place, with the site's median intensity and width, and everything is linked again
        (the search and fast ranges and the drift of the first pass kept). Such detections have
        ``from_counts`` True; that column is in the output whenever the stack is.

    Returns
    -------
    DataFrame
        One row per detection, sorted by frame and particle: ``frame``, ``particle`` (the
        trajectory, numbered from 0 in order of first appearance), ``y``, ``x`` [px] (as
        detected, drift included), ``y_A``, ``x_A`` [Å] (NaN without a pixel size),
        ``confidence`` (in [0, 1]: the mean quality of the links into and out of the detection,
        1 - distance / search range for a lattice link, lower across gaps and for hops and fast
        movers; 0 for a trajectory of one detection), then the input's other columns. ``attrs``:
        ``pixel_size`` [Å/px], ``frame_time`` [s], ``drift`` (per frame of ``frames_tracked``:
        the shift (dy, dx) from the first frame [px]), ``frames_tracked``, ``search_range``,
        ``fast_range`` [px], ``memory`` [frames], ``spacing_px``, ``intensity_scatter`` (the
        free intensity ratio of the linking's brightness cost, :func:`intensity_scatter`; inf
        when the detections have no intensities).

    Raises
    ------
    InputError
        A table without frame, y, x; non-finite positions; one frame only; a stack of frames of
        different sizes, or one locate refuses.
    ParameterError
        A pixel size, frame time, search range, fast range or maximal drift that is not a
        positive number in range; a negative or fractional memory.
    ValueError
        An unknown scheduler, or workers < 1 (``atomlens.core.parallel.check_scheduler``).

    Examples
    --------
    >>> grid = np.stack(np.mgrid[0:50:10, 0:50:10], -1).reshape(-1, 2).astype(float)
    >>> table = pd.DataFrame(
    ...     [(t, y + 3 * t, x) for t in range(3) for y, x in grid], columns=["frame", "y", "x"]
    ... )
    >>> tracks = track(table, pixel_size=0.2)
    >>> int(tracks["particle"].nunique()), tracks.attrs["drift"][-1]
    (25, [6.0, 0.0])
    """
    pixel_size, frame_time = check_times(pixel_size, frame_time)
    search_range = check_distance("search_range", search_range)
    fast_range = check_distance("fast_range", fast_range)
    max_drift = check_distance("max_drift", max_drift)
    memory = check_memory(memory)
    if not isinstance(fill, bool | np.bool_):
        raise ValueError(f"fill=... must be True or False; got {fill!r}.")
    parallel = _parallel(frames, scheduler, workers)
    table = _detections(frames, pixel_size, modality, locate_options, parallel)
    if pixel_size is None and table.attrs.get("pixel_size") is not None:
        pixel_size, _ = check_times(table.attrs["pixel_size"], None)
    counts = stack if stack is not None else (None if isinstance(frames, pd.DataFrame) else frames)
    if counts is not None and fill:
        table = table.assign(from_counts=False)
    options = {"max_drift": max_drift, "drift": drift, "memory": memory}
    tracks = _linked(table, pixel_size, frame_time, search_range, fast_range, **options)
    if counts is None or not fill:
        return tracks
    # here, not at the top: both modules use this one's column_spacing
    from atomlens.track.evidence import missed_detections
    from atomlens.track.sites import lattice_sites

    try:
        sites = lattice_sites(tracks)
    except InputError:
        return tracks  # no lattice to miss a column of
    added = missed_detections(sites, counts, tracks)
    if not len(added):
        return tracks
    merged = pd.concat([table, added], ignore_index=True)
    merged.attrs = dict(table.attrs)
    ranges = tracks.attrs["search_range"], tracks.attrs["fast_range"]
    # the added detections sit at sites placed with the first pass's drift: it stays, and so
    # do the spacing and the intensity scatter, which are the located columns' own
    first = {
        "shifts": np.asarray(tracks.attrs["drift"], dtype=float),
        "spacing": tracks.attrs["spacing_px"],
        "scatter": tracks.attrs["intensity_scatter"],
    }
    return _linked(merged, pixel_size, frame_time, *ranges, **options, first=first)


def _linked(
    table: pd.DataFrame,
    pixel_size: float | None,
    frame_time: float | None,
    search_range: float | None,
    fast_range: float | None,
    *,
    max_drift: float | None,
    drift: bool,
    memory: int,
    first: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The detections of ``table`` (checked) linked: drift removed, then :func:`link`. The
    drift (``shifts`` [px] per frame), column spacing [px] and intensity scatter are estimated,
    or taken from ``first`` (a first pass's)."""
    table = table.sort_values("frame", kind="stable").reset_index(drop=True)
    frame = table["frame"].to_numpy()
    numbers, starts = np.unique(frame, return_index=True)
    raw = table[["y", "x"]].to_numpy()
    per_frame = np.split(raw, starts[1:])
    first = first or {}
    spacing = first["spacing"] if "spacing" in first else column_spacing(per_frame)
    search_range, fast_range = _ranges(spacing, search_range, fast_range)
    shifts = first.get("shifts")
    if shifts is None and drift:
        extent = float(np.ptp(raw, axis=0).max()) if len(raw) > 1 else 0.0
        reach = max_drift or max(DRIFT_FRACTION * extent, 2.0 * search_range)
        shifts = estimate_drift(per_frame, numbers, search_range, reach)
    elif shifts is None:
        shifts = np.zeros((len(numbers), 2))
    corrected = raw - shifts[np.searchsorted(numbers, frame)]
    intensity = _intensities(table)
    if "scatter" in first:
        free = first["scatter"]
    else:
        free = (
            math.inf
            if intensity is None
            else intensity_scatter(frame, corrected, intensity, search_range)
        )
    if not math.isfinite(free):
        intensity = None
    result = link(frame, corrected, search_range, fast_range, memory, intensity, free)
    return _tracks_table(table, result, pixel_size, frame_time, numbers, shifts,
                         {"search_range": search_range, "fast_range": fast_range,
                          "memory": memory, "spacing_px": spacing,
                          "intensity_scatter": free})  # fmt: skip


def _parallel(frames: object, scheduler: object, workers: object) -> dict[str, Any] | None:
    """``locate``'s scheduler and workers, checked; None for the serial run."""
    if scheduler is None and workers is None:
        return None
    from atomlens.core.parallel import check_scheduler

    scheduler, workers = check_scheduler(scheduler, workers)
    if isinstance(frames, pd.DataFrame):
        return None  # nothing to locate; the linking is one serial pass
    return {"scheduler": scheduler, "workers": workers}


def _ranges(
    spacing: float, search_range: float | None, fast_range: float | None
) -> tuple[float, float]:
    """The search range and the fast range [px], the defaults from the column spacing."""
    if search_range is None:
        if not math.isfinite(spacing):
            raise InputError(
                "No frame holds two detections, so the column spacing (and from it the search "
                "range) cannot be estimated: give search_range=... [px]."
            )
        search_range = SEARCH_FRACTION * spacing
    if fast_range is None:
        fast_range = (
            FAST_SPACINGS * spacing
            if math.isfinite(spacing)
            else FAST_SPACINGS / SEARCH_FRACTION * search_range
        )
    return search_range, max(fast_range, search_range)


def _tracks_table(
    table: pd.DataFrame,
    result,
    pixel_size: float | None,
    frame_time: float | None,
    numbers: np.ndarray,
    shifts: np.ndarray,
    settings: dict[str, float],
) -> pd.DataFrame:
    """The output table: trackpy's columns first, the input's others after, and the attrs."""
    quality = np.column_stack([result.quality_in, result.quality_out])
    seen = np.isfinite(quality).any(axis=1)
    confidence = np.zeros(len(table))
    confidence[seen] = np.nanmean(quality[seen], axis=1)
    scale = math.nan if pixel_size is None else pixel_size
    out = pd.DataFrame(
        {
            "frame": table["frame"].to_numpy(),
            "particle": result.particle,
            "y": table["y"].to_numpy(),
            "x": table["x"].to_numpy(),
            "y_A": table["y"].to_numpy() * scale,
            "x_A": table["x"].to_numpy() * scale,
            "confidence": np.clip(confidence, 0.0, 1.0),
        }
    )
    others = [c for c in table.columns if c not in COLUMNS]
    out = pd.concat([out, table[others].reset_index(drop=True)], axis=1)
    out = out.sort_values(["frame", "particle"], kind="stable").reset_index(drop=True)
    out.attrs.update(
        {k: v for k, v in table.attrs.items() if k not in ("pixel_size",)},
    )
    out.attrs.update(
        pixel_size=pixel_size,
        frame_time=frame_time,
        drift=shifts.round(6).tolist(),
        frames_tracked=numbers.tolist(),
        **settings,
    )
    return out
