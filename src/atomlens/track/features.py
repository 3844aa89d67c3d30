"""Motion features of trajectories: displacement, speed, mean squared displacement, diffusion.

Positions are the drift-corrected ones (the ``drift`` of the table's ``attrs``, as
:func:`atomlens.track.track` leaves it, is removed), in Å when the table's ``attrs`` hold a pixel
size (else in px); times are in s when they hold a frame time (else in frames).

Diffusion in 2-D: MSD(tau) = 4 D tau + 4 sigma^2, sigma the localisation error per axis. D and
the offset come from a generalised least-squares line through the first ``fit_lags`` lags,
weighted by the exact covariance of the MSD estimates of a Brownian walker observed with white
localisation noise (the estimates at different lags share displacements, so they are strongly
correlated; ignoring that understates the error). For a Gaussian pair of displacements A, B,
Cov(A^2, B^2) = 2 Cov(A, B)^2; Cov(A, B) per axis is the step variance 2 D dt times the frames
the two displacements share plus sigma^2 times the signed coincidences of their end points. The
weights depend on D and sigma, so the fit is iterated from an ordinary least-squares start. The
ensemble D pools all trajectories' displacements (their covariances add), so a set of short
walks gives one precise value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atomlens.core.validation import InputError
from atomlens.track.checks import check_table

__all__ = ["drift_corrected", "ensemble_diffusion", "msd", "trajectory_features"]

#: Lags (in frames) of the MSD line fit, by default.
FIT_LAGS = 4
#: Iterations of the weighted fit.
ITERATIONS = 3


@dataclass
class _Walk:
    """One trajectory's MSD sums: per lag the summed squared displacement, the pair count, and
    the three sums that give the covariance of the lag estimates for any D and sigma."""

    sums: np.ndarray  # (K,) [length^2]
    counts: np.ndarray  # (K,)
    shared: np.ndarray  # (K, K): sum over pairs of overlap^2 [frames^2]
    mixed: np.ndarray  # (K, K): sum of overlap * coincidence
    ends: np.ndarray  # (K, K): sum of coincidence^2


def _units(attrs: dict) -> tuple[float, str, float, str]:
    """Length scale and unit, time scale and unit, from a tracks table's attrs."""
    pixel_size, frame_time = attrs.get("pixel_size"), attrs.get("frame_time")
    length, length_unit = (pixel_size, "Å") if pixel_size else (1.0, "px")
    time, time_unit = (frame_time, "s") if frame_time else (1.0, "frame")
    return float(length), length_unit, float(time), time_unit


def drift_corrected(tracks: pd.DataFrame) -> pd.DataFrame:
    """``frame``, ``particle`` and ``y``, ``x`` [px] with the drift removed, sorted.

    The positions are in the first tracked frame's coordinates (the drift in ``tracks.attrs``,
    which :func:`atomlens.track.track` records, is subtracted frame by frame).
    """
    if not isinstance(tracks, pd.DataFrame):
        raise InputError(f"tracks must be a DataFrame (atomlens.track's), got {type(tracks)}.")
    if "particle" not in tracks.columns:
        raise InputError("tracks has no particle column: link the detections first (track).")
    table = check_table(tracks, "tracks")
    table = table[["frame", "particle", "y", "x"]].copy()
    # pandas deep-copies attrs on every operation: the tracks' (the drift of every frame) would
    # cost more than the work on a long series; what is needed is read from ``tracks`` below
    table.attrs = {}
    drift, numbers = tracks.attrs.get("drift"), tracks.attrs.get("frames_tracked")
    if drift is not None and numbers is not None and len(drift) == len(numbers):
        numbers, drift = np.asarray(numbers), np.asarray(drift, dtype=float)
        index = np.clip(np.searchsorted(numbers, table["frame"].to_numpy()), 0, len(numbers) - 1)
        known = numbers[index] == table["frame"].to_numpy()
        table.loc[known, ["y", "x"]] -= drift[index[known]]
    return table.sort_values(["particle", "frame"], kind="stable").reset_index(drop=True)


def _walk(
    frames: np.ndarray, points: np.ndarray, lags: np.ndarray, covariance: bool = True
) -> _Walk:
    """The MSD sums of one trajectory (frames increasing, points [length]); the sums of its
    covariance (shared, mixed, ends) only with ``covariance``, else zeros: they are most of
    the cost (the double loop over lags), and the MSD table needs none of them."""
    k = len(lags)
    sums, counts = np.zeros(k), np.zeros(k)
    starts = []
    for p, lag in enumerate(lags):
        later = np.searchsorted(frames, frames + lag)
        ok = later < len(frames)
        ok[ok] = frames[later[ok]] == frames[ok] + lag
        steps = points[later[ok]] - points[ok]
        sums[p], counts[p] = float((steps**2).sum()), float(ok.sum())
        starts.append(frames[ok])
    shared, mixed, ends = (np.zeros((k, k)) for _ in range(3))
    if not covariance:
        return _Walk(sums, counts, shared, mixed, ends)
    for p in range(k):
        for q in range(p, k):
            a, b = starts[p][:, None], starts[q][None, :]
            n, m = lags[p], lags[q]
            overlap = np.clip(np.minimum(a + n, b + m) - np.maximum(a, b), 0, None)
            hit = (a + n == b + m).astype(float) - (a + n == b) - (a == b + m) + (a == b)
            for array, value in ((shared, overlap**2), (mixed, overlap * hit), (ends, hit**2)):
                array[p, q] = array[q, p] = float(value.sum())
    return _Walk(sums, counts, shared, mixed, ends)


def _fit(walks: list[_Walk], lags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generalised least-squares (slope, offset) of the pooled MSD, their covariance, and the
    pooled MSD per lag [length^2]; NaN where fewer than two lags have pairs."""
    counts = sum(w.counts for w in walks)
    sums = sum(w.sums for w in walks)
    used = counts > 0
    nan = np.full(2, np.nan)
    pooled = np.where(used, sums / np.where(used, counts, 1), np.nan)
    if used.sum() < 2:
        return nan, np.full((2, 2), np.nan), pooled
    x = np.column_stack([lags[used], np.ones(used.sum())]).astype(float)
    y = pooled[used]
    theta = np.linalg.lstsq(x, y, rcond=None)[0]
    covariance = np.full((2, 2), np.nan)
    for _ in range(ITERATIONS):
        step = max(theta[0] / 2.0, 1e-12 * max(abs(y).max(), 1e-300))  # per axis per frame
        noise = max(theta[1] / 4.0, 0.0)  # sigma^2 per axis
        raw = sum(4.0 * (step**2 * w.shared + 2 * step * noise * w.mixed + noise**2 * w.ends)
                  for w in walks)  # fmt: skip
        sigma = raw[np.ix_(used, used)] / np.outer(counts[used], counts[used])
        sigma += 1e-12 * np.trace(sigma) / len(sigma) * np.eye(len(sigma))
        inverse = np.linalg.pinv(sigma)
        covariance = np.linalg.pinv(x.T @ inverse @ x)
        theta = covariance @ x.T @ inverse @ y
    return theta, covariance, pooled


def _walks(
    table: pd.DataFrame, length: float, lags: np.ndarray, covariance: bool = True
) -> dict[int, tuple[_Walk, np.ndarray, np.ndarray]]:
    """Per particle: its MSD sums (:func:`_walk`), frames and points [length]."""
    walks = {}
    for particle, rows in table.groupby("particle", sort=True):
        frames = rows["frame"].to_numpy()
        points = rows[["y", "x"]].to_numpy() * length
        walks[int(particle)] = (_walk(frames, points, lags, covariance), frames, points)
    return walks


def _check_lags(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
        raise ValueError(f"{name}=... must be a whole number of lags >= 2, got {value!r}.")
    return int(value)


def msd(tracks: pd.DataFrame, max_lag: int = 10) -> pd.DataFrame:
    """The mean squared displacement of every trajectory per lag.

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track` (``frame``, ``particle``, ``y``, ``x``).
    max_lag : int
        Largest lag [frames].

    Returns
    -------
    DataFrame
        ``particle``, ``lag`` [frames], ``lag_time`` [s, or frames without a frame time],
        ``msd`` [Å^2, or px^2 without a pixel size], ``count`` (displacement pairs); lags with
        no pair are left out. ``attrs["units"]`` names the units.
    """
    max_lag = _check_lags("max_lag", max_lag)
    length, length_unit, time, time_unit = _units(tracks.attrs)
    lags = np.arange(1, max_lag + 1)
    rows = []
    walks = _walks(drift_corrected(tracks), length, lags, covariance=False)
    for particle, (walk, _, _) in walks.items():
        for lag, total, count in zip(lags, walk.sums, walk.counts, strict=True):
            if count:
                rows.append((particle, int(lag), lag * time, total / count, int(count)))
    result = pd.DataFrame(rows, columns=["particle", "lag", "lag_time", "msd", "count"])
    result.attrs["units"] = {"lag_time": time_unit, "msd": f"{length_unit}^2"}
    return result


def trajectory_features(tracks: pd.DataFrame, fit_lags: int = FIT_LAGS) -> pd.DataFrame:
    """Per-trajectory motion features.

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track`; its ``attrs`` give the pixel size [Å/px],
        frame time [s] and drift.
    fit_lags : int
        Lags (1 to ``fit_lags`` frames) of the MSD line fit.

    Returns
    -------
    DataFrame
        One row per particle: ``first_frame``, ``last_frame``, ``detections``, ``duration``
        [s, or frames], ``displacement`` (first to last position) [Å, or px],
        ``path_length`` (summed steps between successive detections) [Å, or px],
        ``mean_speed`` (path length over duration) [Å/s; px/frame without a pixel size and
        a frame time], ``D`` and ``D_err`` (diffusion coefficient and its standard error,
        MSD = 4 D t + offset) [Å^2/s, or px^2/frame], ``msd_offset`` (4 sigma^2, sigma the
        localisation error per axis) [Å^2, or px^2]. NaN where a trajectory is too short
        (D needs pairs at two lags). ``attrs["units"]`` names the units.
    """
    fit_lags = _check_lags("fit_lags", fit_lags)
    length, length_unit, time, time_unit = _units(tracks.attrs)
    lags = np.arange(1, fit_lags + 1)
    rows = []
    for particle, (walk, frames, points) in _walks(drift_corrected(tracks), length, lags).items():
        theta, covariance, _ = _fit([walk], lags)
        steps = np.hypot(*np.diff(points, axis=0).T) if len(points) > 1 else np.zeros(0)
        duration = float(frames[-1] - frames[0]) * time
        path = float(steps.sum())
        rows.append(
            {
                "particle": particle,
                "first_frame": int(frames[0]),
                "last_frame": int(frames[-1]),
                "detections": len(frames),
                "duration": duration,
                "displacement": float(np.hypot(*(points[-1] - points[0]))),
                "path_length": path,
                "mean_speed": path / duration if duration > 0 else math.nan,
                "D": theta[0] / 4.0 / time,
                "D_err": math.sqrt(covariance[0, 0]) / 4.0 / time,
                "msd_offset": theta[1],
            }
        )
    result = pd.DataFrame(rows)
    result.attrs["units"] = {
        "duration": time_unit,
        "displacement": length_unit,
        "path_length": length_unit,
        "mean_speed": f"{length_unit}/{time_unit}",
        "D": f"{length_unit}^2/{time_unit}",
        "msd_offset": f"{length_unit}^2",
    }
    return result


def ensemble_diffusion(
    tracks: pd.DataFrame,
    particles: object = None,
    fit_lags: int = FIT_LAGS,
) -> dict[str, float | int | str]:
    """One diffusion coefficient for a set of trajectories, from their pooled displacements.

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track`.
    particles : sequence of int, optional
        The trajectories to pool (e.g. the adatoms); default all.
    fit_lags : int
        Lags (1 to ``fit_lags`` frames) of the MSD line fit.

    Returns
    -------
    dict
        ``D``, ``D_err`` [Å^2/s, or px^2/frame; ``unit`` says which], ``msd_offset``,
        ``msd_offset_err`` [Å^2, or px^2], ``trajectories`` pooled, ``pairs`` (displacements at
        lag 1), ``msd`` (the pooled MSD per lag) and ``unit``.
    """
    fit_lags = _check_lags("fit_lags", fit_lags)
    length, length_unit, time, time_unit = _units(tracks.attrs)
    table = drift_corrected(tracks)
    if particles is not None:
        table = table[table["particle"].isin(np.asarray(particles).ravel())]
    lags = np.arange(1, fit_lags + 1)
    walks = [walk for walk, _, _ in _walks(table, length, lags).values()]
    if not walks:
        raise InputError("No trajectory to pool: the selection of particles is empty.")
    theta, covariance, pooled = _fit(walks, lags)
    return {
        "D": float(theta[0] / 4.0 / time),
        "D_err": float(math.sqrt(covariance[0, 0]) / 4.0 / time),
        "msd_offset": float(theta[1]),
        "msd_offset_err": float(math.sqrt(covariance[1, 1])),
        "trajectories": len(walks),
        "pairs": int(sum(w.counts[0] for w in walks)),
        "msd": [float(v) for v in pooled],
        "unit": f"{length_unit}^2/{time_unit}",
    }


def site_features(tracks: pd.DataFrame, **options) -> pd.DataFrame:
    """Per-trajectory residence on lattice sites, hop rates and directions.

    The sites and every detection's site come from :func:`atomlens.track.sites.lattice_sites`
    (``options`` go to it: ``min_frames``, ``spread``, ``radius``). A **residence** is a run of
    consecutive detections of a trajectory on one site; a **hop** is a change from one site to
    another between successive detections (an off-lattice detection in between ends the
    residence without a hop).

    Returns
    -------
    DataFrame
        One row per particle: ``sites_visited``, ``residences``, ``mean_residence`` and
        ``longest_residence`` (in frames from the first to the last detection of a residence,
        plus one) [s, or frames without a frame time], ``on_lattice`` (share of detections on
        a site), ``hops``, ``hop_rate`` (hops per time tracked) [1/s, or 1/frame],
        ``hop_angles`` (the direction of each hop, degrees of (dy, dx) in (-180, 180],
        space-separated) and ``hop_length`` (mean) [Å, or px].
    """
    from atomlens.track.sites import lattice_sites

    length, length_unit, time, time_unit = _units(tracks.attrs)
    sites = lattice_sites(tracks, **options)
    rows = []
    for particle, part in sites.table.groupby("particle", sort=True):
        frames, site = part["frame"].to_numpy(), part["site"].to_numpy()
        cut = np.flatnonzero(np.diff(site) != 0) + 1
        runs = [r for r in np.split(np.arange(len(site)), cut) if site[r[0]] >= 0]
        spans = [float(frames[r[-1]] - frames[r[0]] + 1) * time for r in runs]
        hops = [(site[i - 1], site[i]) for i in cut if site[i - 1] >= 0 and site[i] >= 0]
        steps = np.array([sites.positions[b] - sites.positions[a] for a, b in hops]).reshape(-1, 2)
        duration = float(frames[-1] - frames[0] + 1) * time
        rows.append(
            {
                "particle": int(particle),
                "sites_visited": len({int(s) for s in site if s >= 0}),
                "residences": len(runs),
                "mean_residence": float(np.mean(spans)) if spans else math.nan,
                "longest_residence": max(spans) if spans else math.nan,
                "on_lattice": float((site >= 0).mean()),
                "hops": len(hops),
                "hop_rate": len(hops) / duration,
                "hop_angles": " ".join(f"{a:.0f}" for a in np.degrees(np.arctan2(*steps.T))),
                "hop_length": float(np.hypot(*steps.T).mean()) * length if len(hops) else math.nan,
            }
        )
    result = pd.DataFrame(rows)
    result.attrs["units"] = {
        "mean_residence": time_unit,
        "longest_residence": time_unit,
        "hop_rate": f"1/{time_unit}",
        "hop_length": length_unit,
    }
    return result
