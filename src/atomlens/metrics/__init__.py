"""The metric definitions of the design document, defined once and used everywhere.

- Images: :func:`psnr` (peak = the truth's data range), :func:`ssim`.
- Detection: :func:`match_positions` (one-to-one Hungarian matching within a radius) and
  :func:`detection_scores` (precision, recall, F1 = 2TP / (2TP + FP + FN), Jaccard =
  TP / (TP + FP + FN), chamfer distance, RMSE of the matched pairs).
- The physical limit: :func:`cramer_rao_bound_pm`, the best possible column-position precision.

Coordinates are (row, column) = (y, x) in pixels unless a name says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import spatial
from scipy.optimize import linear_sum_assignment

from atomlens.core.validation import check_image, check_parameter

__all__ = [
    "cramer_rao_bound_pm",
    "detection_scores",
    "match_positions",
    "psnr",
    "ssim",
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
