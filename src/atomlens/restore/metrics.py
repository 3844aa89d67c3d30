"""How good a restoration is: image metrics and what a microscopist measures on the columns.

- :func:`psnr`, :func:`ssim`: against the undistorted image, with the data range of the truth
  (the convention of the design document).
- :func:`locate_columns`: a deliberately simple column finder, the same for every method:
  Gaussian pre-smoothing, local maxima at least a spacing apart that stand out from their
  surroundings, then a 2D Gaussian least-squares refinement of all columns at once.
- :func:`column_errors`: the columns found matched one to one to the true ones (Hungarian
  assignment within a radius): position RMSE [pm], recall, precision, and the error of the
  intensity integrated in a disc around each true column.
- :func:`cramer_rao_bound_pm`: the best possible position precision at a dose.

Coordinates are (row, column) = (y, x) in pixels, pixel centres at integer coordinates.
Columns that are dark on a bright background (ABF, HRTEM at some foci) are found with
``dark=True``: the image is negated, so that they become maxima.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from atomlens.core.validation import check_image, check_parameter

__all__ = [
    "column_errors",
    "cramer_rao_bound_pm",
    "locate_columns",
    "match_positions",
    "psnr",
    "refine_gaussians",
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


# --------------------------------------------------------------------------------------------
# Column finding
# --------------------------------------------------------------------------------------------


def _windows(image: np.ndarray, peaks: np.ndarray, half: int) -> np.ndarray:
    """(n, k, k) windows of side ``2 half + 1`` centred on integer peaks (NaN off the image)."""
    padded = np.pad(image.astype(np.float64), half, mode="constant", constant_values=np.nan)
    offsets = np.arange(-half, half + 1)
    rows = peaks[:, 0, None, None] + half + offsets[None, :, None]
    cols = peaks[:, 1, None, None] + half + offsets[None, None, :]
    return padded[rows, cols]


def refine_gaussians(
    image: np.ndarray, peaks: np.ndarray, half: int, width: float, *, iterations: int = 20
) -> np.ndarray:
    """Least-squares 2D Gaussians ``B + A exp(-r**2 / (2 s**2))`` fitted to all peaks at once.

    A damped Gauss-Newton (Levenberg-Marquardt) iteration on every window in parallel: numpy
    builds the (n, 5, 5) normal equations and solves them together. Window pixels off the image
    are left out (no mirrored copy of an edge column biases its fit). A fit that leaves its
    window or fails keeps the integer peak.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Columns bright.
    peaks : ndarray (n, 2)
        Integer (y, x) starting positions [px].
    half : int
        Window half-side [px].
    width : float
        Starting Gaussian standard deviation [px].
    iterations : int
        Gauss-Newton steps.

    Returns
    -------
    ndarray (n, 6)
        y, x [px], amplitude A, width s [px], background B (image units), and 1 where the fit
        converged inside its window, else 0.
    """
    peaks = np.asarray(peaks, dtype=int).reshape(-1, 2)
    data = _windows(image, peaks, half).reshape(len(peaks), -1)
    mask = np.isfinite(data).astype(np.float64)  # pixels off the image weigh 0
    data = np.where(mask > 0, data, 0.0)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    gy, gx = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))
    low = np.where(mask > 0, data, np.inf).min(axis=1)
    high = np.where(mask > 0, data, -np.inf).max(axis=1)
    params = np.stack(
        [high - low, np.zeros(len(peaks)), np.zeros(len(peaks)), np.full(len(peaks), width), low],
        axis=1,
    )

    def residual_and_jacobian(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, y0, x0, s, b = (p[:, i, None] for i in range(5))
        dy, dx = gy[None, :] - y0, gx[None, :] - x0
        r2 = dy**2 + dx**2
        g = np.exp(-r2 / (2.0 * s**2))
        model = b + a * g
        jac = np.stack(
            [g, a * g * dy / s**2, a * g * dx / s**2, a * g * r2 / s**3, np.ones_like(g)], axis=2
        )
        return (data - model) * mask, jac * mask[..., None]

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        params = _levenberg_marquardt(residual_and_jacobian, params, iterations, 2.0 * half + 1)
    inside = (
        np.all(np.isfinite(params), axis=1)
        & (np.abs(params[:, 1]) <= half)
        & (np.abs(params[:, 2]) <= half)
        & (params[:, 0] > 0)
    )
    y = np.where(inside, peaks[:, 0] + params[:, 1], peaks[:, 0])
    x = np.where(inside, peaks[:, 1] + params[:, 2], peaks[:, 1])
    return np.stack([y, x, params[:, 0], params[:, 3], params[:, 4], inside.astype(float)], axis=1)


def _levenberg_marquardt(
    residual_and_jacobian, params: np.ndarray, iterations: int, widest: float
) -> np.ndarray:
    """Damped Gauss-Newton steps on (n, 5) parameters; a step is kept where it lowers the cost.

    The width (parameter 3) is kept in [0.3, ``widest``] px.
    """
    params = params.copy()
    damping = np.full(len(params), 1e-3)
    residual, jac = residual_and_jacobian(params)
    cost = np.sum(residual**2, axis=1)
    eye = np.eye(5)
    for _ in range(iterations):
        normal = np.einsum("nki,nkj->nij", jac, jac)
        gradient = np.einsum("nki,nk->ni", jac, residual)
        scale = np.einsum("nii->ni", normal)[:, :, None] * eye
        try:
            system = normal + damping[:, None, None] * scale + 1e-12 * eye
            step = np.linalg.solve(system, gradient[..., None])
        except np.linalg.LinAlgError:
            break
        trial = params + step[..., 0]
        trial[:, 3] = np.clip(trial[:, 3], 0.3, widest)
        trial_residual, trial_jac = residual_and_jacobian(trial)
        trial_cost = np.sum(trial_residual**2, axis=1)
        better = np.isfinite(trial_cost) & (trial_cost <= cost)
        params[better], residual[better], jac[better] = (
            trial[better],
            trial_residual[better],
            trial_jac[better],
        )
        cost[better] = trial_cost[better]
        damping = np.where(better, damping * 0.3, damping * 10.0)
    return params


def locate_columns(
    image: np.ndarray,
    pixel_size: float,
    *,
    spacing: float = 1.2,
    width: float = 0.4,
    dark: bool = False,
    threshold: float = 0.1,
    refine: bool = True,
) -> pd.DataFrame:
    """Atomic columns of an image: local maxima refined by 2D Gaussian fits.

    1. ``dark=True`` negates the image (dark columns on a bright background become maxima).
    2. A Gaussian of ``width / 2`` smooths it, for detection only.
    3. ``skimage.feature.peak_local_max`` keeps maxima at least ``spacing / 2`` apart that stand
       out from the lowest value within ``spacing`` by ``threshold`` times the smoothed image's
       range (0.5th to 99.5th percentile).
    4. :func:`refine_gaussians` fits each in a window of half-side ``spacing / 2`` on the image
       itself (not the smoothed one).

    Parameters
    ----------
    image : ndarray (rows, cols)
        Any units.
    pixel_size : float
        [Å].
    spacing : float
        The smallest column separation expected [Å].
    width : float
        The expected column width (Gaussian standard deviation) [Å].
    dark : bool
        Columns are darker than their surroundings.
    threshold : float
        Least prominence, as a fraction of the image range [1].
    refine : bool
        Fit Gaussians; otherwise return the integer maxima.

    Returns
    -------
    DataFrame
        One row per column: ``y``, ``x`` [px], ``y_A``, ``x_A`` [Å], ``amplitude`` (image
        units, negated for dark columns), ``sigma`` [Å] (fitted width), ``converged``.
    """
    from skimage.feature import peak_local_max

    values = check_image("image", image, min_size=4).astype(np.float64)
    pixel_size = check_parameter("pixel_size", pixel_size)
    for name, value in (("spacing", spacing), ("width", width)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}=... must be a positive length [Å], got {value}.")
    if dark:
        values = -values
    distance = max(1, int(0.5 * spacing / pixel_size))
    smooth = ndimage.gaussian_filter(values, max(0.5 * width / pixel_size, 0.5), mode="reflect")
    low, high = np.percentile(smooth, [0.5, 99.5])
    floor = ndimage.minimum_filter(smooth, size=2 * max(distance, 1) * 2 + 1, mode="reflect")
    peaks = peak_local_max(smooth, min_distance=distance, exclude_border=False)
    if len(peaks) and high > low:
        prominent = (smooth - floor)[peaks[:, 0], peaks[:, 1]] > threshold * (high - low)
        peaks = peaks[prominent]
    else:
        peaks = np.zeros((0, 2), dtype=int)
    if refine and len(peaks):
        half = int(np.clip(round(0.5 * spacing / pixel_size), 2, 12))
        fit = refine_gaussians(values, peaks, half, max(width / pixel_size, 0.7))
    else:
        fit = np.zeros((len(peaks), 6))
        fit[:, :2] = peaks
        fit[:, 2] = values[peaks[:, 0], peaks[:, 1]] if len(peaks) else 0.0
        fit[:, 3] = width / pixel_size
    return pd.DataFrame(
        {
            "y": fit[:, 0],
            "x": fit[:, 1],
            "y_A": fit[:, 0] * pixel_size,
            "x_A": fit[:, 1] * pixel_size,
            "amplitude": fit[:, 2],
            "sigma": fit[:, 3] * pixel_size,
            "converged": fit[:, 5].astype(bool),
        }
    )


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


def _disc_sums(image: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Sum of ``image`` over discs of ``radius`` [px] around each (y, x) [px]."""
    half = math.ceil(radius)
    offsets = np.arange(-half, half + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    disc = (dy**2 + dx**2) <= radius**2
    rounded = np.rint(centres).astype(int)
    windows = _windows(image, np.clip(rounded, 0, np.array(image.shape) - 1), half)
    return np.nansum(windows * disc[None], axis=(1, 2))


def column_errors(
    image: np.ndarray,
    atoms_table: pd.DataFrame,
    pixel_size: float,
    *,
    dark: bool = False,
    truth: np.ndarray | None = None,
    spacing: float = 1.2,
    width: float = 0.4,
    radius: float | None = None,
    border: float | None = None,
) -> dict[str, float]:
    """Columns found in ``image`` against the true ones.

    The columns of :func:`locate_columns` (same ``spacing``, ``width``, ``dark``) are matched one
    to one to the true columns within ``radius``; columns within ``border`` of the image edge
    (true or found) are left out of both sets.

    Parameters
    ----------
    image : ndarray (rows, cols)
        A restored (or any) image.
    atoms_table : DataFrame
        True columns, ``y`` and ``x`` [px].
    pixel_size : float
        [Å].
    dark : bool
        Columns darker than the background (ABF; HRTEM by contrast).
    truth : ndarray (rows, cols), optional
        The undistorted image in the units of ``image``, for the intensity error.
    spacing, width : float
        See :func:`locate_columns` [Å].
    radius : float, optional
        Matching radius [Å]; ``spacing / 2`` by default. Also the disc radius of the intensities.
    border : float, optional
        Edge margin [Å]; ``spacing / 2`` by default.

    Returns
    -------
    dict
        ``rmse_pm`` (radial RMSE of matched pairs [pm]; NaN with no match), ``recall``,
        ``precision``, ``f1``, ``matched``, ``true``, ``found`` (numbers of columns), and with
        ``truth`` the ``intensity_error``: RMS of (disc sum in image - disc sum in truth) over
        the RMS disc sum of the truth, both measured from the truth's median [1], at every true
        column.
    """
    values = check_image("image", image, min_size=4).astype(np.float64)
    radius_px = (0.5 * spacing if radius is None else radius) / pixel_size
    border_px = (0.5 * spacing if border is None else border) / pixel_size
    rows, cols = values.shape

    def inside(points: np.ndarray) -> np.ndarray:
        return (
            (points[:, 0] >= border_px)
            & (points[:, 0] <= rows - 1 - border_px)
            & (points[:, 1] >= border_px)
            & (points[:, 1] <= cols - 1 - border_px)
        )

    true = atoms_table[["y", "x"]].to_numpy(dtype=float).reshape(-1, 2)
    true = true[inside(true)]
    located = locate_columns(values, pixel_size, spacing=spacing, width=width, dark=dark)
    found = located[["y", "x"]].to_numpy(dtype=float)
    found = found[inside(found)]
    fi, ti = match_positions(found, true, radius_px)
    matched = len(fi)
    errors = np.hypot(*(found[fi] - true[ti]).T) if matched else np.zeros(0)
    result = {
        "rmse_pm": float(np.sqrt(np.mean(errors**2)) * pixel_size * 100) if matched else math.nan,
        "recall": matched / len(true) if len(true) else math.nan,
        "precision": matched / len(found) if len(found) else math.nan,
        "f1": 2 * matched / (len(true) + len(found)) if len(true) + len(found) else math.nan,
        "matched": float(matched),
        "true": float(len(true)),
        "found": float(len(found)),
    }
    if truth is not None:
        t = check_image("truth", truth).astype(np.float64)
        if t.shape != values.shape:
            raise ValueError(f"truth {t.shape} and image {values.shape} must have the same shape.")
        reference = float(np.median(t))
        restored_sums = _disc_sums(values - reference, true, radius_px)
        truth_sums = _disc_sums(t - reference, true, radius_px)
        scale = float(np.sqrt(np.mean(truth_sums**2))) if len(true) else 0.0
        result["intensity_error"] = (
            float(np.sqrt(np.mean((restored_sums - truth_sums) ** 2)) / scale)
            if scale > 0
            else math.nan
        )
    return result
