"""The mean frame of a drifting stack, its frames registered on the middle one.

locate decides a few things once for a whole stack, on its mean frame: the column spacing,
the start of the averaged unit cell, and whether the columns are dark. The specimen drifts
through a series, and the plain mean of drifting frames blurs the columns into stripes: at
0.05 Å per frame, 30 frames move 1.5 Å, a C-C bond. On such a mean the autocorrelation saw
the lattice constant of an hBN series instead of its B-N distance, or no lattice at all,
and locate then found one column of each pair (``benchmarks/evaluate_events.py``, series 1).

Each frame is shifted by whole pixels onto the middle frame, at the peak of their cross
correlation (windowed, mean-free, both smoothed over a pixel, by FFT), and each pixel of the
middle frame's field of view is the mean of the frames that see it. Whole pixels keep a stack
without drift's mean bit for bit what it was; the spacing and the cell need no better
registration. Where the frames show a crystal, the correlation also peaks at every lattice
vector, and a shift by one is as good here: it lines the columns up all the same (the one
nearest zero is taken).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import fft

from atomlens.core.parallel import frame_blocks

__all__ = ["aligned_mean", "frame_shift"]


#: Width of the Gaussian both frames are smoothed by before they are correlated [px]: at 50
#: counts per column the correlation of two still frames at zero lag fell to 0.79 of that at a
#: lattice vector, smoothed 0.98 (tests/locate/test_register.py's honeycomb).
SMOOTHING = 1.0
#: Correlation maxima at least this fraction of the highest are taken as equally good (the
#: nearest to zero lag wins).
EQUAL_PEAK = 0.9


def _spectrum(frame: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The rfft2 of the frame, mean-free and windowed, in single precision (twice as fast as
    double, and a whole-pixel peak needs no more)."""
    return fft.rfft2(((frame - frame.mean()) * window).astype(np.float32), workers=-1)


def _reference(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The window, and the reference's conjugate spectrum times the smoothing of both frames."""
    rows, cols = reference.shape
    window = np.outer(np.hanning(rows), np.hanning(cols)).astype(np.float32)
    qy, qx = np.fft.fftfreq(rows)[:, None], np.fft.rfftfreq(cols)[None, :]
    smoothing = np.exp(-4 * np.pi**2 * SMOOTHING**2 * (qy**2 + qx**2)).astype(np.float32)
    return window, np.conj(_spectrum(reference, window)) * smoothing


def frame_shift(reference: np.ndarray, frame: np.ndarray) -> tuple[int, int]:
    """How far ``frame``'s content is moved from ``reference``'s [whole px] (dy, dx).

    ``frame[y + dy, x + dx]`` shows what ``reference[y, x]`` shows; lags wrap, so each is in
    [-size / 2, size / 2).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(64, 64))
    >>> frame_shift(image, np.roll(image, (3, -5), axis=(0, 1)))
    (3, -5)
    """
    window, conjugate = _reference(np.asarray(reference, np.float64))
    return _shift(conjugate, np.asarray(frame, np.float64), window)


def _shift(conjugate: np.ndarray, frame: np.ndarray, window: np.ndarray) -> tuple[int, int]:
    """The shift at the correlation maximum nearest zero lag among those within
    :data:`EQUAL_PEAK` of the highest: a crystal's frames correlate almost as well at every
    lattice vector, and at a few tens of counts per column noise picks among them; the
    nearest lines the columns up the same and keeps a still stack still."""
    rows, cols = frame.shape
    correlation = fft.irfft2(conjugate * _spectrum(frame, window), s=frame.shape, workers=-1)
    y, x = np.nonzero(correlation >= EQUAL_PEAK * correlation.max())
    # local maxima among them (3 x 3, wrapped): a few pixels, not a filter of the whole surface
    steps = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j])
    around = correlation[(y[:, None] + steps[:, 0]) % rows, (x[:, None] + steps[:, 1]) % cols]
    peak = correlation[y, x] >= around.max(axis=1)
    dy, dx = (y[peak] + rows // 2) % rows - rows // 2, (x[peak] + cols // 2) % cols - cols // 2
    nearest = int(np.argmin(dy**2 + dx**2))
    return int(dy[nearest]), int(dx[nearest])


def aligned_mean(
    stack: Any, check: Callable[[np.ndarray, int], np.ndarray] | None = None
) -> np.ndarray:
    """The mean frame of a stack, its frames moved onto the middle frame (module docstring).

    Parameters
    ----------
    stack : ndarray or dask array (frames, rows, cols)
        Read one block at a time (a lazy stack is never held whole).
    check : callable, optional
        ``check(frame, index)`` returns the frame as float64 or raises (validation).

    Returns
    -------
    ndarray (rows, cols), float64
        In the middle frame's field of view, image units; each pixel the mean over the frames
        that see it (at least the middle frame).

    Examples
    --------
    >>> y, x = np.mgrid[:48, :48]
    >>> lattice = np.cos(np.pi * y / 6) ** 8 * np.cos(np.pi * x / 6) ** 8
    >>> drifting = np.stack([np.roll(lattice, (k, 2 * k), axis=(0, 1)) for k in range(5)])
    >>> bool(np.allclose(aligned_mean(drifting), drifting[2]))
    True
    """
    count = len(stack)
    middle = count // 2
    reference = np.asarray(stack[middle])
    reference = check(reference, middle) if check else reference.astype(np.float64)
    rows, cols = reference.shape
    window, conjugate = _reference(reference)
    total = np.zeros((rows, cols))
    seen = np.zeros((rows, cols))
    index = 0
    for block in frame_blocks(stack):
        for frame in np.asarray(block):
            frame = check(frame, index) if check else frame.astype(np.float64)
            dy, dx = (0, 0) if index == middle else _shift(conjugate, frame, window)
            # reference pixel (y, x) is frame pixel (y + dy, x + dx) where that is in the frame
            top, bottom = max(0, -dy), min(rows, rows - dy)
            left, right = max(0, -dx), min(cols, cols - dx)
            if top < bottom and left < right:
                inside = (slice(top, bottom), slice(left, right))
                total[inside] += frame[top + dy : bottom + dy, left + dx : right + dx]
                seen[inside] += 1
            index += 1
    return total / seen
