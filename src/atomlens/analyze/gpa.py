"""Geometric phase analysis (Hytch, Snoeck and Kilaas 1998): strain maps from the image itself.

The second strain method beside :func:`~atomlens.analyze.strain.local_strain` (which works on
located columns). Two non-collinear Bragg reflections g1, g2 of the image's Fourier transform are
isolated by Gaussian masks; the phase of each filtered image, less the carrier ``2 pi g.r``, is
``P_g = -2 pi g.u`` with u the displacement field, so the distortion tensor is
``du_i/dx_j = -1 / (2 pi) sum_k (G^-1)_ik dP_k/dx_j`` with G the matrix of rows g1, g2. Phase
gradients are taken from the filtered complex images directly (``Im(conj(H) grad H) / |H|^2``),
so phase wraps need no unwrapping.

Conventions as in :mod:`atomlens.analyze.strain`: x along the image columns, y along the rows,
``exy`` the tensor shear, rotation positive from x towards y [degrees]; strain is relative to the
lattice that g1 and g2 describe (by default the image's mean lattice, from its Fourier peaks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from atomlens.core.validation import check_image

__all__ = ["StrainMaps", "bragg_peaks", "gpa", "reciprocal_basis"]


@dataclass(frozen=True)
class StrainMaps:
    """Strain maps of :func:`gpa` (arrays of the image's shape).

    Attributes
    ----------
    exx, eyy, exy : ndarray
        Strain [1].
    rotation : ndarray
        [degrees], from x towards y.
    amplitude : ndarray
        The smaller of the two filtered images' amplitudes, relative to its median: where it is
        low (amorphous regions, vacuum, edges) the phase and the strain mean nothing.
    reliable : ndarray of bool
        Amplitude above 0.3 and at least two resolution lengths ``1 / (2 pi sigma)`` from the
        image edge (the Fourier transform's periodic boundary corrupts the phase there).
    g : ndarray (2, 2)
        The reflections used, rows (gy, gx) [cycles/px].
    """

    exx: np.ndarray
    eyy: np.ndarray
    exy: np.ndarray
    rotation: np.ndarray
    amplitude: np.ndarray
    reliable: np.ndarray
    g: np.ndarray


def bragg_peaks(image: np.ndarray, *, min_frequency: float = 0.02) -> np.ndarray:
    """The two strongest non-collinear reflections (rows (gy, gx), cycles/px) of an image.

    Local maxima of the Hann-windowed power spectrum above ``min_frequency`` (away from the
    central peak), strongest first; the second is the strongest at least 20 degrees from the
    first (and not its opposite). Each is refined to sub-pixel precision by the power-weighted
    centroid of its 5 x 5 neighbourhood.
    """
    values = check_image("image", image, min_size=16).astype(np.float64)
    rows, cols = values.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    power = np.abs(np.fft.fftshift(np.fft.fft2((values - values.mean()) * window))) ** 2
    fy = (np.arange(rows) - rows // 2) / rows
    fx = (np.arange(cols) - cols // 2) / cols
    peaks = np.argwhere(power == ndimage.maximum_filter(power, size=5, mode="wrap"))
    frequency = np.hypot(fy[peaks[:, 0]], fx[peaks[:, 1]])
    peaks = peaks[frequency > min_frequency]
    order = np.argsort(-power[peaks[:, 0], peaks[:, 1]])
    peaks = peaks[order]
    vectors = np.column_stack([fy[peaks[:, 0]], fx[peaks[:, 1]]])
    if len(vectors) < 2:
        raise ValueError("The image's Fourier transform shows fewer than two reflections.")
    first = vectors[0]
    for index, candidate in enumerate(vectors[1:], start=1):
        cosine = abs(first @ candidate) / (np.hypot(*first) * np.hypot(*candidate))
        if cosine < np.cos(np.radians(20)):
            chosen = [peaks[0], peaks[index]]
            break
    else:
        raise ValueError("The image's Fourier transform shows no two non-collinear reflections.")
    refined = []
    for y, x in chosen:
        ys, xs = np.arange(y - 2, y + 3) % rows, np.arange(x - 2, x + 3) % cols
        patch = power[np.ix_(ys, xs)]
        offsets = np.arange(-2, 3)
        dy = float((patch.sum(axis=1) * offsets).sum() / patch.sum())
        dx = float((patch.sum(axis=0) * offsets).sum() / patch.sum())
        refined.append([(y + dy - rows // 2) / rows, (x + dx - cols // 2) / cols])
    return np.array(refined)


def reciprocal_basis(basis: np.ndarray) -> np.ndarray:
    """Rows (gy, gx) [cycles/px] of the reciprocal lattice of real-space basis rows a, b [px].

    ``g_i . a_j`` is 1 when i = j and 0 otherwise: the reflections of the lattice planes that
    the basis spans, the g to give :func:`gpa` for strain relative to a fitted lattice.
    """
    return np.linalg.inv(np.asarray(basis, dtype=float)).T


def _filtered(spectrum: np.ndarray, g: np.ndarray, sigma: float) -> np.ndarray:
    """The complex image of one reflection: the spectrum under a Gaussian mask at g."""
    rows, cols = spectrum.shape
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.fftfreq(cols)[None, :]
    mask = np.exp(-((ky - g[0]) ** 2 + (kx - g[1]) ** 2) / (2 * sigma**2))
    return np.fft.ifft2(spectrum * mask)


def gpa(
    image: np.ndarray, g: np.ndarray | None = None, *, sigma: float | None = None
) -> StrainMaps:
    """Strain and rotation maps of a lattice image by geometric phase analysis.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Any units; columns bright or dark.
    g : ndarray (2, 2), optional
        Rows (gy, gx) of two non-collinear reflections [cycles/px]; found by
        :func:`bragg_peaks` when not given. Strain is relative to the lattice they describe.
    sigma : float, optional
        Standard deviation of the Gaussian masks [cycles/px]; a quarter of the shorter g by
        default. The maps' resolution is about ``1 / (2 pi sigma)`` px.

    Returns
    -------
    StrainMaps

    Examples
    --------
    >>> y, x = np.mgrid[:128, :128].astype(float)
    >>> stretched = x / 1.02  # 2 % tensile along x
    >>> image = np.cos(2 * np.pi * stretched / 8) + np.cos(2 * np.pi * y / 8)
    >>> maps = gpa(image, np.array([[0, 1 / 8], [1 / 8, 0]]))
    >>> round(float(np.median(maps.exx[32:96, 32:96])), 3), round(float(np.median(maps.eyy)), 3)
    (0.02, 0.0)
    """
    values = check_image("image", image, min_size=16).astype(np.float64)
    g = bragg_peaks(values) if g is None else np.asarray(g, dtype=float)
    if g.shape != (2, 2) or not np.isfinite(g).all() or abs(np.linalg.det(g)) < 1e-12:
        raise ValueError(f"g must be two non-collinear reflections, shape (2, 2), got {g!r}.")
    if sigma is None:
        sigma = 0.25 * float(np.min(np.hypot(*g.T)))
    spectrum = np.fft.fft2(values - values.mean())
    rows, cols = values.shape
    y, x = np.mgrid[:rows, :cols].astype(float)
    gradients = np.empty((2, 2, rows, cols))  # [reflection, (d/dy, d/dx)]
    amplitudes = []
    for k in range(2):
        h = _filtered(spectrum, g[k], sigma)
        carrier = np.exp(-2j * np.pi * (g[k, 0] * y + g[k, 1] * x))
        h = h * carrier  # the phase less 2 pi g.r: a slowly varying field
        dh_dy, dh_dx = np.gradient(h)
        power = np.maximum(np.abs(h) ** 2, 1e-30)
        gradients[k, 0] = np.imag(np.conj(h) * dh_dy) / power
        gradients[k, 1] = np.imag(np.conj(h) * dh_dx) / power
        amplitude = np.abs(h)
        amplitudes.append(amplitude / max(float(np.median(amplitude)), 1e-30))
    inverse = np.linalg.inv(g)  # (y, x) x reflections
    # distortion[i, j] = du_i / dx_j with i, j in (y, x)
    distortion = -np.einsum("ik,kjab->ijab", inverse, gradients) / (2 * np.pi)
    eyy, exx = distortion[0, 0], distortion[1, 1]
    exy = 0.5 * (distortion[0, 1] + distortion[1, 0])
    rotation = np.degrees(0.5 * (distortion[0, 1] - distortion[1, 0]))  # (F_yx - F_xy) / 2
    amplitude = np.minimum(*amplitudes)
    border = int(np.ceil(2.0 / (2 * np.pi * sigma)))
    reliable = amplitude > 0.3
    reliable[:border], reliable[-border:], reliable[:, :border], reliable[:, -border:] = (
        False,
        False,
        False,
        False,
    )
    return StrainMaps(exx, eyy, exy, rotation, amplitude, reliable, g)
