"""Columns found in an image scored against the true ones (the evaluation of restore and locate).

:func:`column_errors` runs the classical finder (:func:`~atomlens.locate.classical.locate_columns`)
and matches its columns one to one to the true ones (:func:`atomlens.metrics.match_positions`):
position RMSE [pm], recall, precision, F1, and the error of the intensity integrated in a disc
around each true column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from atomlens.core.validation import check_image
from atomlens.locate.classical import locate_columns
from atomlens.locate.refine import _windows
from atomlens.metrics import match_positions

__all__ = ["column_errors"]


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
