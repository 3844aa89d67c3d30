"""Resampling an image along a distorted STEM raster scan: the probe's path during each dwell.

:class:`~atomlens.physics.detectors.base.ScanDistortion` steps give the probe's offsets from the
nominal raster; :func:`resample_scan` turns them into the image the probe saw. Re-exported by
:mod:`atomlens.physics.detectors.base`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["resample_scan"]


def resample_scan(image: np.ndarray, row_offsets: Any, *edge_offsets: Any) -> np.ndarray:
    """Sample an image along a distorted raster scan.

    Pixel (r, c) of the result is the mean of the image's signal over the probe's path during the
    pixel's dwell: at ``y = r + row_offsets[r]``, from ``x = c - 1/2 + edge_offsets[r, c]`` to
    ``x = c + 1/2 + edge_offsets[r, c + 1]``. The signal is read as constant across each pixel
    along x and linear between rows. A pure shift thus reduces to linear interpolation, and a
    probe that moves faster or slower than nominal adds the matching box blur. Outside the image
    the signal is mirrored about the image edge. The probe must move forwards along each line.

    Parameters
    ----------
    image : ndarray of shape (H, W)
    row_offsets : array_like broadcastable to (H,)
        [px].
    *edge_offsets : array_like broadcastable to (H, W + 1)
        [px]; several are added (a per-row and a per-column part need not be broadcast to a
        full array).

    Returns
    -------
    ndarray of shape (H, W), float64

    Raises
    ------
    ValueError
        If the probe would move backwards (an edge offset drops by 1 px or more between edges).

    Examples
    --------
    >>> ramp = np.tile(np.arange(6.0), (2, 1))
    >>> resample_scan(ramp, 0.0, 0.25)[0]
    array([0.25, 1.25, 2.25, 3.25, 4.25, 5.  ])
    """
    image = np.asarray(image, dtype=np.float64)
    height, width = image.shape
    rows = np.broadcast_to(np.asarray(row_offsets, dtype=np.float64), (height,))
    terms = [_edge_term(term, height, width) for term in edge_offsets]
    if not (np.any(rows) or any(np.any(term) for term in terms)):
        return image.copy()
    pad_x = math.ceil(sum(float(np.abs(term).max()) for term in terms)) + 1
    lengths = _dwell_lengths(terms)
    # Rows are done in blocks of ~64 kB temporaries, which the allocator recycles; whole-image
    # temporaries would be returned to the system and page-faulted back on every call.
    out = np.empty((height, width))
    step = max(1, BLOCK // (width + 2 * pad_x + 1))
    for start in range(0, height, step):
        block = slice(start, min(start + step, height))
        edges = sum(term[block] if term.shape[0] > 1 else term for term in terms)
        y = np.arange(block.start, block.stop) + rows[block]
        lines = _pad_mirrored(_interpolate_rows(image, y), pad_x)
        means = _box_integrals(lines, edges + (np.arange(width + 1) + pad_x))
        if lengths is not None:
            means /= lengths[block] if lengths.shape[0] > 1 else lengths
        out[block] = means
    return out


BLOCK = 8192  # elements per row block of resample_scan


def _edge_term(term: Any, height: int, width: int) -> np.ndarray:
    """An edge-offset term as a 2D array broadcastable to (H, W + 1)."""
    array = np.asarray(term, dtype=np.float64)
    array = array.reshape((1,) * (2 - array.ndim) + array.shape)
    np.broadcast_shapes(array.shape, (height, width + 1))
    return array


def _dwell_lengths(terms: list[np.ndarray]) -> np.ndarray | None:
    """Path length of the probe during each dwell [px], or None where it is 1 everywhere.

    Raises if it is <= 0 (the probe would move backwards).
    """
    varying = [np.diff(term, axis=1) for term in terms if term.shape[1] > 1]
    if not varying:
        return None
    lengths = sum(varying) + 1.0
    if np.min(lengths) <= 0:
        raise ValueError(
            "resample_scan: the probe moves backwards along a line (a pixel edge offset falls "
            "by 1 px or more from one edge to the next); reduce the fly-back amplitude (keep it "
            "below its decay length) or the scan-speed variation."
        )
    return lengths


def _interpolate_rows(image: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of ``image`` at positions ``y``: linear interpolation, mirrored outside the image."""
    below = np.floor(y)
    fraction = y - below
    below = below.astype(np.intp)
    lines = image[_mirror(below, image.shape[0])]
    if fraction.any():
        upper = image[_mirror(below + 1, image.shape[0])]
        upper -= lines
        upper *= fraction[:, None]
        lines += upper
    return lines


def _pad_mirrored(lines: np.ndarray, pad: int) -> np.ndarray:
    """``lines`` padded by ``pad`` columns each side, mirrored about the edges (as np.pad's
    "symmetric", without its overhead)."""
    width = lines.shape[1]
    if pad > width:
        return np.pad(lines, ((0, 0), (pad, pad)), mode="symmetric")
    out = np.empty((lines.shape[0], width + 2 * pad))
    out[:, pad : pad + width] = lines
    out[:, :pad] = lines[:, pad - 1 :: -1]
    out[:, pad + width :] = lines[:, : width - pad - 1 : -1] if width > pad else lines[:, ::-1]
    return out


def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    """Indices reflected into [0, size) about the edges (..., 1, 0, 0, 1, ..., n-1, n-1, ...)."""
    index = np.mod(index, 2 * size)
    return np.where(index < size, index, 2 * size - 1 - index)


def _box_integrals(lines: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integral of each row of ``lines`` (constant across each pixel) between edges ``x``.

    ``x`` (rows, W + 1) are positions in units of pixels of ``lines``, edge 0 at 0.
    """
    n_edges = lines.shape[1] + 1
    integral = np.zeros((lines.shape[0], n_edges))
    np.cumsum(lines, axis=1, out=integral[:, 1:])  # exact, and linear between pixel edges
    x = np.broadcast_to(x, (lines.shape[0], x.shape[-1]))
    index = x.astype(np.intp)  # positive: truncation is floor
    fraction = x - index
    index += (np.arange(lines.shape[0]) * n_edges)[:, None]
    flat = integral.ravel()
    left = flat.take(index)
    at_edges = flat[1:].take(index)
    at_edges -= left
    at_edges *= fraction
    at_edges += left
    return np.diff(at_edges, axis=1)
