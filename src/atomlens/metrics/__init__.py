"""The metric definitions of the design document, defined once and used everywhere.

- Images: :func:`psnr` (peak = the truth's data range), :func:`ssim`.
- Detection: :func:`match_positions` (one-to-one Hungarian matching within a radius) and
  :func:`detection_scores` (precision, recall, F1 = 2TP / (2TP + FP + FN), Jaccard =
  TP / (TP + FP + FN), chamfer distance, RMSE of the matched pairs).
- The physical limit: :func:`cramer_rao_bound_pm`, the best possible position precision of an
  isolated column with no background, and :func:`cramer_rao_bound_columns`, the bound of every
  column of an image of expected counts (background and neighbours included).
- Tracking: :func:`tracking_scores` (MOTA and IDF1 on one-to-one matched identities).

Coordinates are (row, column) = (y, x) in pixels unless a name says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import spatial
from scipy.optimize import linear_sum_assignment

from atomlens.core.validation import check_image, check_parameter

__all__ = [
    "cramer_rao_bound_columns",
    "cramer_rao_bound_pm",
    "detection_scores",
    "match_positions",
    "psnr",
    "ssim",
    "tracking_scores",
]


def _pair(restored: object, truth: object) -> tuple[np.ndarray, np.ndarray]:
    r = check_image("restored", restored).astype(np.float64)
    t = check_image("truth", truth).astype(np.float64)
    if r.shape != t.shape:
        raise ValueError(f"restored {r.shape} and truth {t.shape} must have the same shape.")
    return r, t


def psnr(restored: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio against the truth, peak = the truth's range [dB].

    ``10 log10(range(truth)**2 / mean((restored - truth)**2))``; ``inf`` for identical images.

    Examples
    --------
    >>> truth = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> round(psnr(truth + 0.1, truth), 2)  # range 3, MSE 0.01
    29.54
    """
    r, t = _pair(restored, truth)
    mse = float(np.mean((r - t) ** 2))
    if mse == 0:
        return math.inf
    peak = float(np.ptp(t))
    if peak == 0:
        raise ValueError("truth is constant: its data range is 0 and PSNR is undefined.")
    return 10.0 * math.log10(peak**2 / mse)


def ssim(restored: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity (scikit-image, 7 x 7 window) with the truth's data range [1]."""
    from skimage.metrics import structural_similarity

    r, t = _pair(restored, truth)
    peak = float(np.ptp(t))
    if peak == 0:
        raise ValueError("truth is constant: its data range is 0 and SSIM is undefined.")
    return float(structural_similarity(t, r, data_range=peak))


def cramer_rao_bound_pm(
    dose: float | np.ndarray, width: float | np.ndarray, pixel_size: float
) -> float | np.ndarray:
    """The Cramer-Rao lower bound of a column's position, per axis [pm].

    ``sqrt(width**2 + pixel_size**2 / 12) / sqrt(dose)``: a Gaussian column of standard deviation
    ``width`` carrying ``dose`` counts, Poisson noise, no background (design document). A 2D
    (radial) RMSE is bounded by sqrt(2) times this.

    Parameters
    ----------
    dose : float or ndarray
        Electrons in the column [e-].
    width : float or ndarray
        The column's Gaussian standard deviation [Å].
    pixel_size : float
        [Å].

    Examples
    --------
    >>> round(cramer_rao_bound_pm(100, 0.5, 0.2), 3)
    5.033
    """
    dose_array = np.asarray(dose, dtype=np.float64)
    width_array = np.asarray(width, dtype=np.float64)
    check_parameter("pixel_size", pixel_size)
    if not (np.all(np.isfinite(dose_array)) and np.all(dose_array > 0)):
        raise ValueError(f"dose=... must be positive electrons per column, got {dose}.")
    if not (np.all(np.isfinite(width_array)) and np.all(width_array > 0)):
        raise ValueError(f"width=... must be a positive column width [Å], got {width}.")
    bound = 100.0 * np.sqrt(width_array**2 + pixel_size**2 / 12.0) / np.sqrt(dose_array)
    return float(bound) if bound.ndim == 0 else bound


def cramer_rao_bound_columns(
    expected: np.ndarray,
    positions: np.ndarray,
    amplitude: np.ndarray,
    width: np.ndarray,
) -> np.ndarray:
    """The Cramer-Rao lower bound of every column's (y, x) in an image of expected counts [px].

    Each column is modelled as the Gaussian ``A exp(-((y - y0)**2 + (x - x0)**2) / (2 w**2))``
    (``A`` = ``amplitude``, ``w`` = ``width``); the counts are Poisson with mean ``expected``,
    which holds everything that reaches the pixel: the columns, the background. A column's
    bound comes from the Fisher information ``F = sum_pixels J J^T / expected`` (J: the model's
    derivatives) of it and of the columns that overlap it (centres closer than three times the
    sum of the two widths), all unknown together: each one's y0, x0, A and w, and one local
    constant background, over the pixels within 4 widths of any of them. The bound is the
    square root of the column's position terms of ``F^-1``. Close columns (a Si dumbbell)
    share their information and each gets a larger bound than alone; with no background and
    fine pixels an isolated column's bound is :func:`cramer_rao_bound_pm`'s ``w / sqrt(N)``.

    Parameters
    ----------
    expected : ndarray (rows, cols)
        Expected counts per pixel [e-] (the noise-free image times the dose scale), >= 0.
    positions : ndarray (n, 2)
        Column (y, x) [px].
    amplitude : ndarray (n,)
        Peak height of each column's Gaussian above the background [e- per pixel], > 0.
    width : ndarray (n,)
        Gaussian standard deviation of each column [px], > 0.

    Returns
    -------
    ndarray (n, 2)
        The bound of y and of x [px] (per axis; a radial RMSE is bounded by the root of the
        sum of squares); NaN for a column off the image or with too few pixels of positive
        expected counts around it.

    Examples
    --------
    >>> yy, xx = np.indices((41, 41))
    >>> gauss = 50.0 * np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / (2 * 3.0**2))
    >>> bound = cramer_rao_bound_columns(gauss + 1e-9, [[20.0, 20.0]], [50.0], [3.0])
    >>> n = 2 * np.pi * 50.0 * 3.0**2  # the counts in the column
    >>> round(float(bound[0, 0] * np.sqrt(n)), 2)  # w / sqrt(N)
    3.0
    """
    counts = check_image("expected", expected).astype(np.float64)
    if np.any(counts < 0):
        raise ValueError("expected=... must be expected counts per pixel, >= 0.")
    centres = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    heights = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), len(centres))
    widths = np.broadcast_to(np.asarray(width, dtype=np.float64), len(centres))
    for name, values in (("amplitude", heights), ("width", widths)):
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise ValueError(f"{name}=... must be positive and finite for every column.")
    if not np.all(np.isfinite(centres)):
        raise ValueError("positions=... must be finite (y, x) [px].")
    bounds = np.full((len(centres), 2), np.nan)
    if not len(centres):
        return bounds
    tree = spatial.cKDTree(centres)
    widest = float(widths.max())
    for index in range(len(centres)):
        near = tree.query_ball_point(centres[index], 3.0 * (widths[index] + widest))
        members = [index] + [
            j for j in near
            if j != index and np.hypot(*(centres[j] - centres[index]))
            < 3.0 * (widths[index] + widths[j])
        ]  # fmt: skip
        bounds[index] = _column_bound(counts, centres[members], heights[members], widths[members])
    return bounds


def _column_bound(
    counts: np.ndarray, centres: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """(y, x) bound [px] of the first of a group of columns fitted together (see above)."""
    reach = 4.0 * widths
    top = max(0, math.floor(np.min(centres[:, 0] - reach)))
    bottom = min(counts.shape[0], math.ceil(np.max(centres[:, 0] + reach)) + 1)
    left = max(0, math.floor(np.min(centres[:, 1] - reach)))
    right = min(counts.shape[1], math.ceil(np.max(centres[:, 1] + reach)) + 1)
    if bottom <= top or right <= left:
        return np.full(2, np.nan)
    window = counts[top:bottom, left:right].ravel()
    rows, cols = np.meshgrid(np.arange(top, bottom), np.arange(left, right), indexing="ij")
    keep = window > 0
    if keep.sum() <= 4 * len(centres) + 1:
        return np.full(2, np.nan)
    derivatives = []
    for (y0, x0), a, w in zip(centres, heights, widths, strict=True):
        dy, dx = rows.ravel()[keep] - y0, cols.ravel()[keep] - x0
        r2 = dy**2 + dx**2
        g = np.exp(-r2 / (2.0 * w**2))
        derivatives += [a * g * dy / w**2, a * g * dx / w**2, g, a * g * r2 / w**3]
    jacobian = np.stack([*derivatives, np.ones(int(keep.sum()))])
    fisher = (jacobian / window[keep]) @ jacobian.T
    try:
        covariance = np.linalg.inv(fisher)
    except np.linalg.LinAlgError:
        return np.full(2, np.nan)
    return np.sqrt(np.clip(np.diag(covariance)[:2], 0, None))


def match_positions(
    found: np.ndarray, true: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching (Hungarian) of found to true positions within ``radius`` [px].

    Returns
    -------
    found_index, true_index : ndarray of int
        The matched pairs.
    """
    found = np.asarray(found, dtype=float).reshape(-1, 2)
    true = np.asarray(true, dtype=float).reshape(-1, 2)
    if not len(found) or not len(true):
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    distance = np.hypot(*(found[:, None, :] - true[None, :, :]).transpose(2, 0, 1))
    cost = np.where(distance <= radius, distance, 1e6 * (radius + 1.0))
    rows, cols = linear_sum_assignment(cost)
    keep = distance[rows, cols] <= radius
    return rows[keep], cols[keep]


def _points(name: str, points: object) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (n, 2) positions (y, x), got shape {array.shape}.")
    return array


def detection_scores(found: object, true: object, radius: float) -> dict[str, float]:
    """How well a set of found positions matches the true ones.

    Parameters
    ----------
    found, true : array-like (n, 2)
        Positions (y, x), in any one length unit.
    radius : float
        Matching radius, in the same unit.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (counts), ``precision``, ``recall``, ``f1`` (2TP / (2TP + FP + FN)),
        ``jaccard`` (TP / (TP + FP + FN)), ``rmse`` (radial RMSE of the matched pairs; NaN with
        no match) and ``chamfer``: the mean of the two directions' mean nearest-neighbour
        distances (every found position to its nearest true one, and every true one to its
        nearest found one; unmatched positions count too, so it penalises both misses and false
        detections; NaN when either set is empty). Ratios with a zero denominator are NaN, except
        that F1 and Jaccard of two empty sets are 1.

    Examples
    --------
    >>> scores = detection_scores([[0, 0], [10, 10]], [[0, 1], [20, 20]], radius=2)
    >>> scores["tp"], scores["f1"], scores["jaccard"], scores["rmse"]
    (1, 0.5, 0.3333333333333333, 1.0)
    """
    found, true = _points("found", found), _points("true", true)
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius=... must be a positive distance, got {radius}.")
    fi, ti = match_positions(found, true, radius)
    tp, fp, fn = len(fi), len(found) - len(fi), len(true) - len(ti)
    errors = np.hypot(*(found[fi] - true[ti]).T) if tp else np.zeros(0)
    if len(found) and len(true):
        to_true = spatial.cKDTree(true).query(found)[0]
        to_found = spatial.cKDTree(found).query(true)[0]
        chamfer = 0.5 * (float(to_true.mean()) + float(to_found.mean()))
    else:
        chamfer = math.nan
    empty = tp + fp + fn == 0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "f1": 1.0 if empty else 2 * tp / (2 * tp + fp + fn),
        "jaccard": 1.0 if empty else tp / (tp + fp + fn),
        "rmse": float(np.sqrt(np.mean(errors**2))) if tp else math.nan,
        "chamfer": chamfer,
    }


def _frames_of(name: str, table: object) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per frame: the particle ids and (y, x) positions of a track table."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame) or not {"frame", "particle", "y", "x"} <= set(
        table.columns
    ):
        raise ValueError(f"{name} must be a DataFrame with frame, particle, y, x columns.")
    values = table[["y", "x"]].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} has non-finite positions.")
    frames = table["frame"].to_numpy()
    ids = table["particle"].to_numpy()
    return {int(f): (ids[frames == f], values[frames == f]) for f in np.unique(frames)}


def _frame_matches(
    truth: tuple[np.ndarray, np.ndarray],
    found: tuple[np.ndarray, np.ndarray],
    radius: float,
    previous: dict,
) -> list[tuple[int, int]]:
    """CLEAR-MOT matching of one frame: last frame's pairs kept while within ``radius``, the
    rest matched one-to-one (Hungarian) within ``radius``; (truth id, found id) pairs."""
    t_ids, t_pos = truth
    f_ids, f_pos = found
    f_index = {int(p): k for k, p in enumerate(f_ids)}
    pairs, used_t, used_f = [], set(), set()
    for k, tid in enumerate(t_ids):
        fid = previous.get(int(tid))
        j = f_index.get(fid) if fid is not None else None
        if j is not None and j not in used_f and np.hypot(*(t_pos[k] - f_pos[j])) <= radius:
            pairs.append((int(tid), int(fid)))
            used_t.add(k)
            used_f.add(j)
    rest_t = np.array([k for k in range(len(t_ids)) if k not in used_t], dtype=int)
    rest_f = np.array([j for j in range(len(f_ids)) if j not in used_f], dtype=int)
    rows, cols = match_positions(f_pos[rest_f], t_pos[rest_t], radius)
    pairs += [
        (int(t_ids[rest_t[c]]), int(f_ids[rest_f[r]])) for r, c in zip(rows, cols, strict=True)
    ]
    return pairs


def tracking_scores(found: object, truth: object, radius: float) -> dict[str, float]:
    """How well found trajectories follow the true ones: MOTA and IDF1.

    Parameters
    ----------
    found, truth : DataFrame
        ``frame``, ``particle``, ``y``, ``x`` (trackpy's names), positions in one length unit.
    radius : float
        A found and a true position further apart than this never match (same unit).

    Returns
    -------
    dict
        ``mota`` = 1 - (FN + FP + IDSW) / GT (CLEAR MOT: per frame, last frame's matches are
        kept while within ``radius``, the rest matched one-to-one by the Hungarian algorithm;
        an identity switch is a true trajectory matched to another found one than at its last
        match); ``idf1`` = 2 IDTP / (2 IDTP + IDFP + IDFN), ``idp``, ``idr`` (Ristani et al.
        2016: true and found trajectories paired one-to-one for the most frames matched within
        ``radius``); and the counts ``gt``, ``found``, ``tp``, ``fn``, ``fp``, ``idsw``,
        ``idtp``.

    Examples
    --------
    >>> import pandas as pd
    >>> truth = pd.DataFrame({"frame": [0, 1, 0, 1], "particle": [0, 0, 1, 1],
    ...                       "y": [0.0, 0.0, 5.0, 5.0], "x": [0.0, 1.0, 0.0, 1.0]})
    >>> swapped = truth.assign(particle=[7, 8, 8, 7])  # the two identities swap in frame 1
    >>> scores = tracking_scores(swapped, truth, radius=1.0)
    >>> scores["mota"], scores["idsw"], scores["idf1"]
    (0.5, 2, 0.5)
    """
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius=... must be a positive distance, got {radius}.")
    truths, founds = _frames_of("truth", truth), _frames_of("found", found)
    empty = (np.zeros(0, dtype=int), np.zeros((0, 2)))
    last: dict[int, int] = {}
    overlap: dict[tuple[int, int], int] = {}
    gt = tp = idsw = n_found = 0
    for frame in sorted(set(truths) | set(founds)):
        t_frame, f_frame = truths.get(frame, empty), founds.get(frame, empty)
        gt += len(t_frame[0])
        n_found += len(f_frame[0])
        pairs = _frame_matches(t_frame, f_frame, radius, last)
        tp += len(pairs)
        for tid, fid in pairs:
            idsw += int(tid in last and last[tid] != fid)
            last[tid] = fid
        _count_overlaps(t_frame, f_frame, radius, overlap)
    idtp = _identity_matches(overlap)
    fn, fp = gt - tp, n_found - tp
    return {
        "mota": 1.0 - (fn + fp + idsw) / gt if gt else math.nan,
        "idf1": 2 * idtp / (gt + n_found) if gt + n_found else math.nan,
        "idp": idtp / n_found if n_found else math.nan,
        "idr": idtp / gt if gt else math.nan,
        "gt": gt,
        "found": n_found,
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "idsw": idsw,
        "idtp": idtp,
    }


def _count_overlaps(truth, found, radius: float, overlap: dict) -> None:
    """Add one frame's (truth id, found id) pairs within ``radius`` to the overlap counts."""
    if not len(truth[0]) or not len(found[0]):
        return
    pairs = spatial.cKDTree(truth[1]).query_ball_tree(spatial.cKDTree(found[1]), radius)
    for k, near in enumerate(pairs):
        for j in near:
            key = (int(truth[0][k]), int(found[0][j]))
            overlap[key] = overlap.get(key, 0) + 1


def _identity_matches(overlap: dict) -> int:
    """The most frames matched by a one-to-one pairing of true and found trajectories (IDTP)."""
    if not overlap:
        return 0
    keys = np.array(list(overlap))
    t_ids, t_index = np.unique(keys[:, 0], return_inverse=True)
    f_ids, f_index = np.unique(keys[:, 1], return_inverse=True)
    gain = np.zeros((len(t_ids), len(f_ids)))
    gain[t_index, f_index] = list(overlap.values())
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return int(gain[rows, cols].sum())
