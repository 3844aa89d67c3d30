"""Power spectra of Ronchigrams: the input of the VAE of VAE-EM (paper 004).

Inside the bright-field disc a Ronchigram of an amorphous specimen is a shadow image magnified
by the inverse Hessian of the aberration function (docs/calibrate.md, "Physics-based
measurement"). Its power spectrum shows that magnification (for defocus and two-fold
astigmatism, an ellipse whose axes scale with the principal defoci) and forgets where the
specimen's detail lies. It is the same for aberrations A and -A (the shadow is point-inverted,
its spectrum is not changed), which is the symmetry VAE-EM builds on.

The spectrum is taken on the canonical grid (:func:`~atomlens.calibrate.canonical_grid`,
96 px over +-1.25 semi-angles), so it is in units of the semi-angle whatever the detector: a
Welch average over 3 x 3 Hann-windowed 32 px windows of the central 48 px (+-0.625 semi-angles:
inside the disc, away from its edge), log of the power, each spectrum standardised to mean 0
and standard deviation 1 (the dose and the specimen's contrast drop out).
"""

from __future__ import annotations

import numpy as np

from atomlens.calibrate.preprocess import CANONICAL_SIZE

__all__ = ["SPECTRUM_SIZE", "ronchigram_spectra"]

#: Side of the spectrum [px]: frequencies up to 16 cycles per 32 px of the canonical grid.
SPECTRUM_SIZE = 32
_REGION = 48  # central part of the canonical grid used [px]
_STRIDE = 8  # between Welch windows [px]


def _windows(grids: np.ndarray) -> np.ndarray:
    """(N, 9, 32, 32): the Welch windows of the central region of each grid."""
    start = (grids.shape[-1] - _REGION) // 2
    region = grids[:, start : start + _REGION, start : start + _REGION]
    steps = range(0, _REGION - SPECTRUM_SIZE + 1, _STRIDE)
    return np.stack(
        [region[:, i : i + SPECTRUM_SIZE, j : j + SPECTRUM_SIZE] for i in steps for j in steps],
        axis=1,
    )


def ronchigram_spectra(grids: np.ndarray) -> np.ndarray:
    """Standardised log power spectra of canonical Ronchigram grids.

    Parameters
    ----------
    grids : ndarray of shape (96, 96) or (N, 96, 96)
        Canonical grids (:func:`~atomlens.calibrate.canonical_grid`).

    Returns
    -------
    ndarray of shape (32, 32) or (N, 32, 32), float32
        log power, zero frequency at (16, 16), standardised per spectrum (mean 0, std 1).

    Raises
    ------
    ValueError
        Grids of another shape, or not finite.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> grid = 1 + 0.1 * rng.standard_normal((96, 96))
    >>> spectrum = ronchigram_spectra(grid)
    >>> spectrum.shape, bool(np.allclose(spectrum, ronchigram_spectra(grid[::-1, ::-1]), atol=1e-4))
    ((32, 32), True)
    """
    array = np.asarray(grids, dtype=np.float64)
    single = array.ndim == 2
    array = array[None] if single else array
    if array.ndim != 3 or array.shape[1:] != (CANONICAL_SIZE, CANONICAL_SIZE):
        raise ValueError(
            f"ronchigram_spectra needs canonical grids of shape ({CANONICAL_SIZE}, "
            f"{CANONICAL_SIZE}) or (N, {CANONICAL_SIZE}, {CANONICAL_SIZE}), got {np.shape(grids)}."
        )
    if not np.isfinite(array).all():
        raise ValueError("ronchigram_spectra got grids with NaN or infinite values.")
    windows = _windows(array)
    windows = windows - windows.mean(axis=(-2, -1), keepdims=True)
    hann = np.hanning(SPECTRUM_SIZE + 2)[1:-1]
    power = np.abs(np.fft.fft2(windows * np.outer(hann, hann))) ** 2
    power = np.fft.fftshift(power.mean(axis=1), axes=(-2, -1))
    log_power = np.log(power + 1e-12 + 1e-6 * power.mean(axis=(-2, -1), keepdims=True))
    log_power -= log_power.mean(axis=(-2, -1), keepdims=True)
    log_power /= np.maximum(log_power.std(axis=(-2, -1), keepdims=True), 1e-12)
    out = log_power.astype(np.float32)
    return out[0] if single else out
