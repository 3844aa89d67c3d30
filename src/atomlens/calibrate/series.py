"""Fitting the shadow-image model to the patch shifts between the images of a series.

The equations, their weights and the fit are described in :mod:`atomlens.calibrate.multi`;
this module holds the machinery: the band-pass before the correlation, the pairs compared, one
round of predict-and-correlate per pair, the coarse search for a start, the weighted least squares
with outlier rejection, and :func:`measure_series`, which iterates them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from atomlens.calibrate.shadow import (
    gradient_basis,
    invert_shadow,
    shadow_hessian,
    shadow_position,
)
from atomlens.calibrate.shifts import measure_shifts, sample_patches
from atomlens.calibrate.symmetry import COEFFICIENTS

#: Patches whose correlation is below this are not used [0-1].
MIN_CORRELATION = 0.3
#: Equations further than this many robust standard deviations from the fit are rejected.
REJECT_SIGMAS = 4.0
#: Largest ratio of local magnifications between two compared patches.
MAX_STRETCH = 2.5
#: The shadow image is taken within this share of the semi-angle (inside the aperture's edge).
DISC_EDGE = 0.97
#: Patches reach at most this share of the convergence semi-angle from the optical axis.
DISC_SHARE = 0.92


@dataclass(frozen=True)
class MeasureOptions:
    """Settings of :func:`measure_series`.

    Attributes
    ----------
    patch : float
        Patch side [mrad].
    step : float
        Spacing of the patch grid [mrad].
    smooth : float
        Gaussian low-pass before the correlation [mrad]: detail finer than the Fresnel zone
        (sqrt(lambda / |C10|), about 7 mrad at 200 kV and 50 nm) does not follow the geometric
        shadow model, so only coarser detail is compared.
    background : float
        Gaussian scale of the smooth background removed [mrad] (the bright-field envelope,
        which stays put on the detector).
    iterations : int
        Most rounds of predict, correlate and fit.
    tolerance : float
        Stop when no coefficient moves by more than this [Å].
    free : tuple of str
        The coefficients fitted; the others keep their starting values.
    axis : bool
        Also refine the optical axis (the bright-field disc centre).
    transfer : bool
        Filter each pair of patches by the other's weak-phase contrast transfer
        (:func:`contrast_transfers`), so that images at different defocus compare alike
        (off by default: on simulated amorphous carbon it did not help).
    search : bool
        Before the fit, pick the best start among the given one and a grid of C10 values
        (:func:`coarse_start`), so that a poor network estimate does not stall the fit.
    pairs : {"auto", "same", "all"}
        The pairs of images compared: "same" only those at the same aberration setting
        (differing by a probe shift, where the geometric model is exact), "all" every pair,
        "auto" the same-setting pairs where the series has any, else all.
    """

    patch: float = 16.0
    step: float = 4.0
    smooth: float = 1.25
    background: float = 5.0
    iterations: int = 16
    tolerance: float = 0.1
    free: tuple[str, ...] = ("C10", "C12a", "C12b", "C21a", "C21b", "C23a", "C23b", "C30")
    axis: bool = False
    transfer: bool = False
    search: bool = True
    pairs: str = "auto"


@dataclass(frozen=True)
class _Pair:
    """The equations from one pair of images: rows (2N, 10), right sides and weights (2N,).

    The unknowns are the eight coefficient corrections [Å] and the optical axis' move [px].
    """

    design: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    correlation: np.ndarray
    residual: np.ndarray


def patch_centres(
    shape: tuple[int, int], centre: np.ndarray, radius: float, step: int
) -> np.ndarray:
    """Grid of patch centres (N, 2) [px] within ``radius`` [px] of ``centre`` (row, column)."""
    reach = int(radius // step) * step
    axis = np.arange(-reach, reach + 1, step, dtype=float)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    grid = grid[np.hypot(*grid.T) <= radius] + centre
    inside = (grid >= 0).all(1) & (grid[:, 0] <= shape[0] - 1) & (grid[:, 1] <= shape[1] - 1)
    return grid[inside]


def band_pass(
    image: np.ndarray,
    options: MeasureOptions,
    angular_sampling: float,
    disc: tuple[np.ndarray, float],
) -> np.ndarray:
    """Relative contrast between the ``smooth`` and ``background`` scales [mrad] inside the disc.

    Both smoothings are normalised to the bright-field disc (centre (row, column) [px] and
    radius [px] in ``disc``), so that its edge, which stays put on the detector while the
    shadow image moves, leaks into no patch; outside the disc the result is zero.
    """
    centre, radius = disc
    mask = disc_mask(image.shape, centre, radius)
    masked = np.asarray(image, dtype=np.float64) * mask
    fine, coarse = (disc_smoothing(masked, mask, scale / angular_sampling)
                    for scale in (options.smooth, options.background))  # fmt: skip
    level = max(float(np.abs(masked).sum() / max(mask.sum(), 1)), 1e-30)
    return np.nan_to_num((fine - coarse) / level * mask)


def disc_mask(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    """1 within ``radius`` [px] of ``centre`` (row, column) [px], else 0 (float64)."""
    rows, cols = np.indices(shape)
    return (np.hypot(rows - centre[0], cols - centre[1]) <= radius).astype(np.float64)


def disc_smoothing(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian smoothing of ``sigma`` px of ``image`` within ``mask`` (0 / 1), normalised by
    the mask's own smoothing, so nothing outside leaks in (NaN where the mask's weight is 0)."""
    with np.errstate(all="ignore"):
        return ndimage.gaussian_filter(image * mask, sigma) / ndimage.gaussian_filter(mask, sigma)


def contrast_transfers(
    hess_i: np.ndarray, hess_j: np.ndarray, pixel: float, wavelength: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's filter by the other image's weak-phase contrast transfer.

    A thin weak-phase specimen seen where the shadow Hessian is H gives intensity contrast
    sin(pi lambda q^T H q) at specimen frequency q. On the reference patch grid (pixel
    ``pixel`` [rad], specimen x = H_i pixel u) the frequency f [1/px] is q = (pixel H_i)^-1 f,
    so image i transfers sin(pi lambda f^T H_i^-1 f / pixel^2) and the resampled image j
    sin(pi lambda f^T H_i^-1 H_j H_i^-1 f / pixel^2). Filtering the reference by j's transfer
    and the moving patch by i's makes both the specimen times T_i T_j.

    Parameters
    ----------
    hess_i, hess_j : ndarray of shape (N, 2, 2)
        Shadow Hessians [Å / rad] of the two images at the compared points.
    pixel : float
        [rad / px].
    wavelength : float
        [Å].
    size : int
        Patch side [px].

    Returns
    -------
    (ndarray, ndarray) of shape (N, size, size)
        The filters for the reference and the moving patches, FFT order.
    """
    freq = np.fft.fftfreq(size)
    f = np.stack(np.meshgrid(freq, freq, indexing="ij"), axis=-1)  # (S, S, 2)
    with np.errstate(all="ignore"):
        inv_i = np.linalg.inv(hess_i)
    quad_i = np.einsum("abi,nij,abj->nab", f, inv_i, f)
    quad_j = np.einsum("abi,nij,abj->nab", f, inv_i @ hess_j @ inv_i, f)
    scale = np.pi * wavelength / pixel**2
    return np.sin(scale * quad_j), np.sin(scale * quad_i)


def _pair_equations(
    images: tuple[np.ndarray, np.ndarray],
    coefficients: tuple[np.ndarray, np.ndarray],
    shifts: tuple[np.ndarray, np.ndarray],
    geometry: tuple[np.ndarray, float, float],
    options: MeasureOptions,
    wavelength: float = 0.0,
) -> _Pair | None:
    """Correlate image j against image i at the predicted positions; equations for the update.

    ``coefficients`` are A0 + O_i and A0 + O_j [Å] under the current estimate A0 (the
    equations are for the correction delta, A = A0 + delta), ``shifts`` the
    probe positions [Å], ``geometry`` the optical axis (row, column) [px], the pixel [rad] and
    the largest usable angle [rad].
    """
    centre, pixel, reach = geometry
    size = max(8, round(options.patch * 1e-3 / pixel))
    step = max(2, round(options.step * 1e-3 / pixel))
    half = size / 2 * pixel
    points = patch_centres(images[0].shape, centre, (reach - half) / pixel, step)
    alpha_i = (points - centre) * pixel
    target = shadow_position(coefficients[0], alpha_i, shifts[0])
    alpha_j, converged = invert_shadow(coefficients[1], target, alpha_i, shifts[1])
    hess_i = shadow_hessian(coefficients[0], alpha_i)
    hess_j = shadow_hessian(coefficients[1], alpha_j)
    with np.errstate(all="ignore"):
        stretch = np.linalg.solve(hess_j, hess_i)
        singular = np.linalg.svd(stretch, compute_uv=False)
    usable = (
        converged
        & (np.hypot(*alpha_j.T) <= reach - half * singular.max(-1, initial=0))
        & (singular.max(-1) <= MAX_STRETCH)
        & (singular.min(-1) >= 1 / MAX_STRETCH)
    )
    if usable.sum() < 3:
        return None
    points, alpha_i, alpha_j = points[usable], alpha_i[usable], alpha_j[usable]
    stretch, hess_i = stretch[usable], hess_i[usable]
    reference = sample_patches(images[0], points, None, size)
    moving = sample_patches(images[1], alpha_j / pixel + centre, stretch, size)
    filters = None
    if options.transfer and wavelength > 0:
        hess_j = shadow_hessian(coefficients[1], alpha_j)
        filters = contrast_transfers(hess_i, hess_j, pixel, wavelength, size)
    found = measure_shifts(reference, moving, filters=filters)
    alpha_j = alpha_j - np.einsum("nij,nj->ni", stretch, found.shift) * pixel
    basis_i, basis_j = gradient_basis(alpha_i), gradient_basis(alpha_j)
    # The last two unknowns move the optical axis: x changes by the Hessian times the move.
    axis_move = shadow_hessian(coefficients[1], alpha_j) - hess_i
    design = np.concatenate([basis_j - basis_i, axis_move * pixel], axis=-1)  # (N, 2, 10)
    # x_j(alpha') = x_i(alpha) with A = A0 + delta: design delta = G c_i - G' c_j + s_i - s_j
    rhs = basis_i @ coefficients[0] - basis_j @ coefficients[1] + shifts[0] - shifts[1]
    # Whiten: the shift error sigma [px] in image i is hess_i * pixel * sigma in the specimen.
    with np.errstate(all="ignore"):
        to_pixels = np.linalg.inv(hess_i * pixel)
    design = np.einsum("nij,njk->nik", to_pixels, design).reshape(-1, design.shape[-1])
    rhs = np.einsum("nij,nj->ni", to_pixels, rhs).reshape(-1)
    weight = np.repeat(1 / found.sigma**2, 2)
    weight[np.repeat(found.correlation < MIN_CORRELATION, 2)] = 0
    return _Pair(design, rhs, weight, found.correlation, np.hypot(*found.shift.T) / size)


def _round(
    images: Sequence[np.ndarray],
    offsets: np.ndarray,
    shifts: np.ndarray,
    values: np.ndarray,
    geometry: tuple[np.ndarray, float, float],
    options: MeasureOptions,
    wavelength: float,
    compared: Sequence[tuple[int, int]] | None = None,
) -> tuple[list[_Pair], np.ndarray, np.ndarray]:
    """One round of correlations at the estimate ``values``: the equations of every pair that
    could be compared, and (N, N) matrices of the median patch correlation and the median
    residual shift [patch sides] of each pair (NaN where none)."""
    count = len(images)
    pairs, correlation = [], np.full((count, count), np.nan)
    residual = correlation.copy()
    for i, j in _pairs(offsets, options.pairs) if compared is None else compared:
        pair = _pair_equations(
            (images[i], images[j]),
            (values + offsets[i], values + offsets[j]),
            (shifts[i], shifts[j]),
            geometry,
            options,
            wavelength,
        )
        if pair is not None:
            pairs.append(pair)
            correlation[i, j] = np.median(pair.correlation)
            residual[i, j] = np.median(pair.residual)
    return pairs, correlation, residual


def coarse_start(
    images: Sequence[np.ndarray],
    offsets: np.ndarray,
    shifts: np.ndarray,
    candidates: Sequence[np.ndarray],
    geometry: tuple[np.ndarray, float, float],
    options: MeasureOptions,
) -> np.ndarray:
    """The candidate estimate under which the images match best.

    Each candidate (8,) [Å] is scored by the mean over pairs of the median patch correlation
    times the number of patches that could be compared, on a grid three times as coarse and
    with each pair in one direction only.
    """
    coarse = MeasureOptions(**{**options.__dict__, "step": 3 * options.step})
    compared = [(i, j) for i, j in _pairs(offsets, options.pairs) if i < j]
    best, best_score = candidates[0], -1.0
    for candidate in candidates:
        pairs, _, _ = _round(images, offsets, shifts, candidate, geometry, coarse, 0.0, compared)
        everyone = len(compared)
        score = sum(float(np.median(p.correlation)) * len(p.correlation) for p in pairs)
        score /= max(1, everyone)
        if score > best_score:
            best, best_score = candidate, score
    return np.array(best, dtype=float)


#: C10 values tried by the coarse search when the starting estimate matches poorly [Å].
C10_GRID = np.concatenate([-np.geomspace(20, 2000, 11)[::-1], np.geomspace(20, 2000, 11)])


def _pairs(offsets: np.ndarray, policy: str) -> list[tuple[int, int]]:
    """The ordered pairs of images to compare under the ``pairs`` policy."""
    if policy not in ("auto", "same", "all"):
        raise ValueError(f"pairs must be 'auto', 'same' or 'all', got {policy!r}.")
    every = list(itertools.permutations(range(len(offsets)), 2))
    same = [(i, j) for i, j in every if np.array_equal(offsets[i], offsets[j])]
    if policy == "all" or (policy == "auto" and not same):
        return every
    if not same:
        raise ValueError("pairs='same' needs images at the same setting (probe shifts).")
    return same


def _solve(pairs: Sequence[_Pair], columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Weighted least squares with outlier rejection.

    Returns the correction (10,), its covariance scaled by chi^2 / dof, and the number of
    equations used.
    """
    design = np.concatenate([p.design for p in pairs])[:, columns]
    target = np.concatenate([p.target for p in pairs])
    weight = np.concatenate([p.weight for p in pairs])
    finite = np.isfinite(design).all(1) & np.isfinite(target)
    keep = finite & (weight > 0)
    design, target = np.where(finite[:, None], design, 0), np.where(finite, target, 0)
    root = np.sqrt(weight)
    for _ in range(4):
        scaled = root * keep
        solution = np.linalg.lstsq(design * scaled[:, None], target * scaled, rcond=None)[0]
        residual = (design @ solution - target) * root
        spread = 1.4826 * np.median(np.abs(residual[keep])) if keep.any() else 0.0
        updated = finite & (weight > 0) & (np.abs(residual) <= REJECT_SIGMAS * max(spread, 1e-12))
        if (updated == keep).all():
            break
        keep = updated
    used = int(keep.sum())
    scaled = root * keep
    normal = (design * scaled[:, None]).T @ (design * scaled[:, None])
    chi2 = float(((design @ solution - target) * scaled) @ ((design @ solution - target) * scaled))
    dof = max(1, used - design.shape[1])
    covariance = np.linalg.pinv(normal) * chi2 / dof
    full, full_cov = np.zeros(10), np.zeros((10, 10))
    full[columns], full_cov[np.ix_(columns, columns)] = solution, covariance
    return full, full_cov, used


@dataclass(frozen=True)
class SeriesFit:
    """What :func:`measure_series` found.

    Attributes
    ----------
    values, sigma : ndarray of shape (8,)
        Cartesian coefficients at offset zero and their standard deviations [Å].
    centre : ndarray of shape (2,)
        The optical axis (row, column) [px].
    correlation : ndarray of shape (N, N)
        Median patch correlation of each pair of images in the last round (NaN where no patch
        could be compared; symmetric).
    residual : ndarray of shape (N, N)
        Median residual shift of each pair's patches in the last round [patch sides]: small
        where the images show one specimen and the model fits, about 0.15 for unrelated ones.
    equations : int
        Equations used in the last fit.
    iterations : int
        Rounds run.
    """

    values: np.ndarray
    sigma: np.ndarray
    centre: np.ndarray
    correlation: np.ndarray
    residual: np.ndarray
    equations: int
    iterations: int


def measure_series(
    images: Sequence[np.ndarray],
    offsets: np.ndarray,
    shifts: np.ndarray,
    *,
    initial: np.ndarray,
    centre: np.ndarray,
    angular_sampling: float,
    semiangle: float,
    wavelength: float = 0.0,
    options: MeasureOptions | None = None,
) -> SeriesFit:
    """Fit the aberrations to the patch shifts between every pair of images.

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W)
        Ronchigrams of one specimen, all on one detector.
    offsets : ndarray of shape (N, 8)
        Cartesian offsets of each image [Å] (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`).
    shifts : ndarray of shape (N, 2)
        Probe position (y, x) of each image [Å].
    initial : ndarray of shape (8,)
        Starting estimate at offset zero [Å].
    centre : ndarray of shape (2,)
        First guess of the optical axis (row, column) [px], refined by the fit.
    angular_sampling : float
        [mrad / px].
    semiangle : float
        Convergence semi-angle [mrad].
    wavelength : float
        Electron wavelength [Å], for the contrast transfer; 0 leaves it out.
    options : MeasureOptions, optional

    Returns
    -------
    SeriesFit
    """
    options = options or MeasureOptions()
    pixel, reach = angular_sampling * 1e-3, DISC_SHARE * semiangle * 1e-3
    disc = (np.array(centre, dtype=float), DISC_EDGE * semiangle / angular_sampling)
    images = [band_pass(image, options, angular_sampling, disc) for image in images]
    geometry = (np.array(centre, dtype=float), pixel, reach)
    if options.search:
        candidates = [np.array(initial, dtype=float)]
        for c10 in C10_GRID:
            candidates.append(np.concatenate([[c10], candidates[0][1:]]))
        initial = coarse_start(images, offsets, shifts, candidates, geometry, options)
    columns = np.array([COEFFICIENTS.index(name) for name in options.free]
                       + ([8, 9] if options.axis else []), dtype=int)  # fmt: skip
    values, centre = np.array(initial, dtype=float), np.array(centre, dtype=float)
    count = len(images)
    covariance, used, rounds = np.zeros((10, 10)), 0, 0
    previous = (values, centre)
    correlation = np.full((count, count), np.nan)
    residual = correlation.copy()
    while rounds < options.iterations:
        rounds += 1
        pairs, found, moved = _round(images, offsets, shifts, values, (centre, pixel, reach),
                                     options, wavelength)  # fmt: skip
        if not pairs:  # the last step went astray: back to where the images still matched
            values, centre = previous
            break
        correlation, residual = found, moved
        step, covariance, used = _solve(pairs, columns)
        previous = (values, centre)
        values, centre = values + step[:8], centre + step[8:]
        if np.abs(step[:8]).max() < options.tolerance and np.abs(step[8:]).max() < 0.05:
            break
    correlation = np.fmax(correlation, correlation.T)
    residual = np.fmin(residual, residual.T)
    # Overlapping patches share their pixels: about (patch / step)^2 equations per independent one.
    overlap = max(1.0, options.patch / options.step) ** 2
    sigma = np.sqrt(np.clip(np.diag(covariance)[:8], 0, None) * overlap)
    return SeriesFit(values, sigma, centre, correlation, residual, used, rounds)
