"""Local shifts between two Ronchigrams of one specimen, by patch cross-correlation.

Every patch of a Ronchigram is a magnified shadow image of the specimen. A patch of the reference
image is compared with the same specimen area in the other image, resampled onto the reference
patch's grid through a predicted local map (position and 2 x 2 Jacobian), so that two patches
at different magnifications look alike; what is left is a small residual shift, measured by
upsampled phase cross-correlation (:func:`skimage.registration.phase_cross_correlation`).

Coordinates are (row, column) pixels throughout; pixel centres sit at integer coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

#: Shift uncertainty [px] of a patch whose correlation is rho: SHIFT_SIGMA sqrt(1 - rho^2) / rho.
#: Only relative weights matter: the fit rescales the covariance by its residuals.
SHIFT_SIGMA = 1.0


@dataclass(frozen=True)
class PatchShifts:
    """Residual shifts of patches, with their quality.

    Attributes
    ----------
    shift : ndarray of shape (N, 2)
        (row, column) shift [px] on the reference grid: the reference patch at u matches the
        resampled patch at u - shift.
    correlation : ndarray of shape (N,)
        Normalised cross-correlation at the peak (0 to 1): near 1 for the same specimen area.
    sigma : ndarray of shape (N,)
        Standard deviation of each shift component [px], from the correlation.
    """

    shift: np.ndarray
    correlation: np.ndarray
    sigma: np.ndarray


def patch_offsets(size: int) -> np.ndarray:
    """Pixel offsets (size, size, 2) of a patch about its centre [px], (row, column)."""
    axis = np.arange(size) - (size - 1) / 2
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)


def sample_patches(
    image: np.ndarray, centres: np.ndarray, jacobians: np.ndarray | None, size: int
) -> np.ndarray:
    """Patches of ``image`` about ``centres``, each through its local linear map.

    Parameters
    ----------
    image : ndarray of shape (H, W)
    centres : ndarray of shape (N, 2)
        (row, column) [px], fractional allowed.
    jacobians : ndarray of shape (N, 2, 2) or None
        Maps a reference offset u to an offset J u in ``image`` [px / px]; None is the identity.
    size : int
        Patch side [px].

    Returns
    -------
    ndarray of shape (N, size, size), float64
        Cubic-spline samples; outside the image the nearest edge value.
    """
    offsets = patch_offsets(size).reshape(-1, 2)
    if jacobians is None:
        moved = offsets[None]
    else:
        moved = np.einsum("nij,pj->npi", jacobians, offsets)
    coords = centres[:, None, :] + moved
    values = ndimage.map_coordinates(
        np.asarray(image, dtype=np.float64), coords.reshape(-1, 2).T, order=3, mode="nearest"
    )
    return values.reshape(len(centres), size, size)


def _prepared(patch: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-free, unit-power and windowed, so that the correlation is normalised."""
    patch = (patch - patch.mean()) * window
    patch -= patch.mean()
    norm = np.sqrt((patch * patch).sum())
    return patch / norm if norm > 0 else patch


def measure_shifts(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    upsample: int = 20,
    filters: tuple[np.ndarray, np.ndarray] | None = None,
) -> PatchShifts:
    """Residual shift of each pair of patches by upsampled phase cross-correlation.

    Parameters
    ----------
    reference, moving : ndarray of shape (N, S, S)
        Patches to compare, pair by pair.
    upsample : int
        Sub-pixel precision is 1 / upsample px.
    filters : (ndarray, ndarray) of shape (N, S, S) each, optional
        Real transfer functions (FFT order) applied to the windowed reference and moving
        patches before the correlation, e.g. each the other's contrast transfer, so that two
        patches recorded with different transfers compare alike.

    Returns
    -------
    PatchShifts

    Notes
    -----
    The window (Hann) pulls shifts of a pixel or more somewhat towards zero; the measurement
    iterates until the residual shifts are small, where that bias vanishes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = ndimage.gaussian_filter(rng.normal(size=(64, 64)), 2)
    >>> moved = ndimage.shift(base, (1.5, -0.5), order=3)
    >>> result = measure_shifts(base[None, 16:48, 16:48], moved[None, 16:48, 16:48])
    >>> bool(np.allclose(result.shift[0], (-1.5, 0.5), atol=0.2))
    True
    """
    size = reference.shape[-1]
    window = np.outer(np.hanning(size + 2)[1:-1], np.hanning(size + 2)[1:-1])
    shifts = np.zeros((len(reference), 2))
    correlation = np.zeros(len(reference))
    for n, (ref, mov) in enumerate(zip(reference, moving, strict=True)):
        a, b = np.fft.fft2(_prepared(ref, window)), np.fft.fft2(_prepared(mov, window))
        if filters is not None:
            a, b = a * filters[0][n], b * filters[1][n]
        if not (np.abs(a).sum() > 0 and np.abs(b).sum() > 0):
            continue
        shift, error, _ = phase_cross_correlation(
            a, b, upsample_factor=upsample, normalization=None, space="fourier"
        )
        shifts[n] = shift
        correlation[n] = np.sqrt(max(0.0, 1.0 - float(error) ** 2))
    clipped = np.clip(correlation, 1e-3, 1 - 1e-6)
    sigma = SHIFT_SIGMA * np.sqrt(1 - clipped**2) / clipped
    return PatchShifts(shift=shifts, correlation=correlation, sigma=sigma)
