"""The classical column finder: smoothing, local maxima, and batched 2D Gaussian refinement.

- :func:`refine_gaussians`: least-squares Gaussians fitted to every column's window at once
  (a vectorised Levenberg-Marquardt iteration in numpy, not one scipy fit per column).
- :func:`locate_columns`: a deliberately simple finder (Gaussian pre-smoothing, local maxima at
  least a spacing apart that stand out from their surroundings, then the refinement), the
  Atomap-like baseline, and the finder every restoration method is scored with.

Coordinates are (row, column) = (y, x) in pixels, pixel centres at integer coordinates.
Columns that are dark on a bright background (ABF, HRTEM at some foci) are found with
``dark=True``: the image is negated, so that they become maxima.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage

from atomlens.core.validation import check_image, check_parameter
from atomlens.locate.refine import _inside, _levenberg_marquardt, _start, _WindowModel

__all__ = ["locate_columns", "refine_gaussians"]


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
    data, mask, params = _start(image, peaks, half, width)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        params = _levenberg_marquardt(
            _WindowModel(data, mask, half), params, iterations, 2.0 * half + 1
        )
    inside = _inside(params, half)
    y = np.where(inside, peaks[:, 0] + params[:, 1], peaks[:, 0])
    x = np.where(inside, peaks[:, 1] + params[:, 2], peaks[:, 1])
    return np.stack([y, x, params[:, 0], params[:, 3], params[:, 4], inside.astype(float)], axis=1)


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
