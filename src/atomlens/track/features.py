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
class _Walks:
    """The MSD sums of a set of trajectories, one row per trajectory: per lag the summed squared
    displacement and the pair count, and the three sums that give the covariance of the lag
    estimates for any D and sigma (zeros where they were not made)."""

    sums: np.ndarray  # (P, K) [length^2]
    counts: np.ndarray  # (P, K)
    shared: np.ndarray  # (P, K, K): sum over pairs of overlap^2 [frames^2]
    mixed: np.ndarray  # (P, K, K): sum of overlap * coincidence
    ends: np.ndarray  # (P, K, K): sum of coincidence^2

    def pooled(self) -> _Walks:
        """The sums of all trajectories added (their covariances add) as one row."""
        arrays = (self.sums, self.counts, self.shared, self.mixed, self.ends)
        return _Walks(*(a.sum(axis=0, keepdims=True) for a in arrays))


@dataclass
class _Trajectories:
    """A drift-corrected table as arrays, rows sorted by particle, then frame."""

    particles: np.ndarray  # (P,) the particle numbers
    first: np.ndarray  # (P,) each trajectory's first row
    index: np.ndarray  # (N,) each row's trajectory (0 to P - 1)
    frames: np.ndarray  # (N,) int64
    points: np.ndarray  # (N, 2) y, x [length]

    @classmethod
    def of(cls, table: pd.DataFrame, length: float) -> _Trajectories:
        """From :func:`drift_corrected`'s table (sorted), positions scaled by ``length``."""
        particle = table["particle"].to_numpy()
        first = np.flatnonzero(np.r_[True, particle[1:] != particle[:-1]]) if len(table) else []
        first = np.asarray(first, dtype=np.int64)
        index = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(table)]))
        frames = table["frame"].to_numpy().astype(np.int64)
        points = table[["y", "x"]].to_numpy(dtype=float) * length
        return cls(particle[first].astype(np.int64), first, index, frames, points)

    @property
    def last(self) -> np.ndarray:
        """Each trajectory's last row."""
        return np.r_[self.first[1:], len(self.frames)] - 1

    def partner(self, keys: np.ndarray, shift: int) -> np.ndarray:
        """Per row, the row of the same trajectory ``shift`` frames later (earlier when
        negative), or -1 where the trajectory has no detection then."""
        target = keys + shift
        at = np.searchsorted(keys, target)
        found = at < len(keys)
        found[found] = keys[at[found]] == target[found]
        return np.where(found, at, -1)

    def keys(self, reach: int) -> np.ndarray:
        """Increasing (trajectory, frame) keys with no two trajectories within ``reach`` frames."""
        if not len(self.frames):
            return self.frames
        span = int(self.frames.max() - self.frames.min()) + 2 * reach + 1
        return self.index * span + (self.frames - self.frames.min())

    def walks(self, lags: np.ndarray, covariance: bool = True) -> _Walks:
        """Every trajectory's MSD sums; the covariance sums (most of the cost) only with
        ``covariance``, else zeros (the MSD table needs none of them).

        All trajectories at once: a row's partner at a lag comes from one search of the
        (trajectory, frame) keys and the sums are counted per trajectory; a Python loop over
        trajectories took most of the time of a long series' run (a few hundred thousand
        detections). The covariance sums go over the pairs of a start of a lag-n displacement
        (frame a) and of a lag-m one (frame b = a + d): they share ``overlap`` frames and their
        ends coincide with the signs ``hit``, both functions of d alone, zero unless
        -m <= d <= n.
        """
        count, k, reach = len(self.first), len(lags), int(lags.max())
        keys = self.keys(reach)
        sums, counts = np.zeros((count, k)), np.zeros((count, k))
        starts = np.zeros((len(keys), k), dtype=bool)
        for p, lag in enumerate(lags):
            later = self.partner(keys, int(lag))
            ok = later >= 0
            steps = self.points[later[ok]] - self.points[ok]
            sums[:, p] = np.bincount(self.index[ok], (steps**2).sum(axis=1), minlength=count)
            counts[:, p] = np.bincount(self.index[ok], minlength=count)
            starts[:, p] = ok
        shared, mixed, ends = (np.zeros((count, k, k)) for _ in range(3))
        if not covariance:
            return _Walks(sums, counts, shared, mixed, ends)
        partners = {d: self.partner(keys, d) for d in range(-reach, reach + 1)}
        for p in range(k):
            for q in range(p, k):
                n, m = int(lags[p]), int(lags[q])
                for d in range(-m, n + 1):
                    overlap = max(min(n, d + m) - max(0, d), 0)
                    hit = int(n == d + m) - int(n == d) - int(d + m == 0) + int(d == 0)
                    if not overlap and not hit:
                        continue
                    later = partners[d]
                    pair = starts[:, p] & (later >= 0)
                    pair[pair] = starts[later[pair], q]
                    found = np.bincount(self.index[pair], minlength=count)
                    shared[:, p, q] += overlap**2 * found
                    mixed[:, p, q] += overlap * hit * found
                    ends[:, p, q] += hit**2 * found
                for array in (shared, mixed, ends):
                    array[:, q, p] = array[:, p, q]
        return _Walks(sums, counts, shared, mixed, ends)


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


def _fit(walks: _Walks, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``walks``: the generalised least-squares (slope, offset) of its MSD line,
    their covariance, and its MSD per lag [length^2]; NaN where fewer than two lags have pairs.

    Batched over the rows: a lag without pairs gets zero weight (its rows and columns of the
    MSD covariance are zero, and the pseudo-inverse keeps them zero), which equals a fit to the
    lags with pairs alone.
    """
    counts, used = walks.counts, walks.counts > 0
    pooled = np.where(used, walks.sums / np.where(used, counts, 1), np.nan)
    x = np.column_stack([lags, np.ones(len(lags))]).astype(float)
    x = x[None] * used[..., None]  # (P, K, 2)
    y = np.where(used, pooled, 0.0)[..., None]  # (P, K, 1)
    both = used[:, :, None] & used[:, None, :]
    eye = np.eye(len(lags))[None] * used[:, None, :]
    theta = (np.linalg.pinv(x) @ y)[..., 0]
    covariance = np.full((len(counts), 2, 2), np.nan)
    scale = 1e-12 * np.maximum(np.abs(y[..., 0]).max(axis=1, initial=0.0), 1e-300)
    pairs = np.where(both, counts[:, :, None] * counts[:, None, :], 1.0)
    for _ in range(ITERATIONS):
        step = np.maximum(theta[:, 0] / 2.0, scale)[:, None, None]  # per axis per frame
        noise = np.maximum(theta[:, 1] / 4.0, 0.0)[:, None, None]  # sigma^2 per axis
        raw = 4.0 * (step**2 * walks.shared + 2 * step * noise * walks.mixed
                     + noise**2 * walks.ends)  # fmt: skip
        sigma = np.where(both, raw / pairs, 0.0)
        trace = np.trace(sigma, axis1=1, axis2=2) / np.maximum(used.sum(axis=1), 1)
        sigma += 1e-12 * trace[:, None, None] * eye
        inverse = np.linalg.pinv(sigma)
        xt = np.swapaxes(x, 1, 2)
        covariance = np.linalg.pinv(xt @ inverse @ x)
        theta = (covariance @ xt @ inverse @ y)[..., 0]
    short = used.sum(axis=1) < 2
    theta[short], covariance[short] = np.nan, np.nan
    return theta, covariance, pooled


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
    trajectories = _Trajectories.of(drift_corrected(tracks), length)
    walks = trajectories.walks(lags, covariance=False)
    row, lag = np.nonzero(walks.counts)  # per particle, lags increasing
    counts = walks.counts[row, lag]
    result = pd.DataFrame(
        {
            "particle": trajectories.particles[row],
            "lag": lags[lag],
            "lag_time": lags[lag] * time,
            "msd": walks.sums[row, lag] / np.where(counts > 0, counts, 1),
            "count": counts.astype(np.int64),
        }
    )
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
    trajectories = _Trajectories.of(drift_corrected(tracks), length)
    theta, covariance, _ = _fit(trajectories.walks(lags), lags)
    first, last, points = trajectories.first, trajectories.last, trajectories.points
    index = trajectories.index
    step = np.hypot(*np.diff(points, axis=0).T) if len(points) > 1 else np.zeros(0)
    within = index[1:] == index[:-1]  # successive rows of one trajectory
    path = np.bincount(index[1:][within], step[within], minlength=len(first))
    frames = trajectories.frames
    duration = (frames[last] - frames[first]).astype(float) * time
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(duration > 0, path / duration, math.nan)
    result = pd.DataFrame(
        {
            "particle": trajectories.particles,
            "first_frame": frames[first],
            "last_frame": frames[last],
            "detections": last - first + 1,
            "duration": duration,
            "displacement": np.hypot(*(points[last] - points[first]).T),
            "path_length": path,
            "mean_speed": speed,
            "D": theta[:, 0] / 4.0 / time,
            "D_err": np.sqrt(covariance[:, 0, 0]) / 4.0 / time,
            "msd_offset": theta[:, 1],
        }
    )
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
    trajectories = _Trajectories.of(table, length)
    if not len(trajectories.first):
        raise InputError("No trajectory to pool: the selection of particles is empty.")
    walks = trajectories.walks(lags).pooled()
    theta, covariance, pooled = (a[0] for a in _fit(walks, lags))
    return {
        "D": float(theta[0] / 4.0 / time),
        "D_err": float(math.sqrt(covariance[0, 0]) / 4.0 / time),
        "msd_offset": float(theta[1]),
        "msd_offset_err": float(math.sqrt(covariance[1, 1])),
        "trajectories": len(trajectories.first),
        "pairs": int(walks.counts[0, 0]),
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
