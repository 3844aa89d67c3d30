"""How many threads the locate verb's array work uses, and image work split over them.

Fits (:mod:`atomlens.locate.refine`) split their windows over threads; the large image filters
(Gaussian smoothing, grey openings, minimum filters of a whole frame) run on horizontal bands
of the image in threads (:func:`in_bands`), and interpolation at many points on chunks of the
points (:func:`sampled_in_chunks`). numpy and scipy.ndimage release the GIL in this work, so
on 2 cores a Gaussian smoothing of 1024 x 1024 px takes about half of one thread's time (scipy's
maximum filter with a footprint does not release it: see
:func:`atomlens.locate.locate.local_maxima`). Frame-parallel runs, whose workers already keep
every core busy, set one thread (:func:`fit_threads`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import numpy as np
from scipy import ndimage

from atomlens.core.parallel import usable_cores

__all__ = [
    "fit_threads",
    "gaussian_in_bands",
    "gaussian_reach",
    "in_bands",
    "sampled_in_chunks",
    "thread_count",
]

#: The most threads the locate verb uses unless told (more split the work too finely).
MOST_THREADS = 4
#: Threads of this thread's fits and filters when not told (:func:`fit_threads`).
_THREADS: ContextVar[int | None] = ContextVar("fit_threads", default=None)
#: Fewest image rows per band of :func:`in_bands` (fewer are filtered in one piece: the
#: overlap and the threads would cost more than they save).
BAND_ROWS = 128


@contextmanager
def fit_threads(threads: int | None) -> Iterator[None]:
    """Within the block, fits and filters in this thread that are not given ``threads`` use
    this many, up to :data:`MOST_THREADS` (None: the default, the usable cores).

    Frame-parallel runs set 1 when their workers already keep every core busy: 2 process
    workers that each split their fits over 2 threads used about 10 % more CPU time than with
    one thread each (40 frames of 512 x 512 px, two runs each way), for the same result.
    """
    token = _THREADS.set(threads)
    try:
        yield
    finally:
        _THREADS.reset(token)


def thread_count(threads: int | None = None) -> int:
    """``threads`` when given, else what :func:`fit_threads` set, else the usable CPU cores;
    at most :data:`MOST_THREADS` and at least 1."""
    if threads is None:
        threads = _THREADS.get()
        threads = usable_cores() if threads is None else threads
    return max(1, min(MOST_THREADS, int(threads)))


def in_bands(
    filter_: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    reach: int,
    threads: int | None = None,
) -> np.ndarray:
    """``filter_(image)`` computed on horizontal bands of ``image`` in threads.

    ``filter_`` must map a 2D array to one of the same shape, each output pixel depending only
    on input pixels at most ``reach`` rows away (a Gaussian of ``sigma`` truncated at 4
    ``sigma``: ``int(4 sigma + 0.5)``; a grey opening of size ``k``: twice ``k // 2``), with
    any boundary mode. Each band is filtered with ``reach`` rows of its neighbours' image
    around it, which its own rows then see exactly as in the whole image, so the result is the
    same as ``filter_(image)`` to the bit (tested), only faster.

    Parameters
    ----------
    filter_ : callable
        Array to array of the same shape (e.g. a ``functools.partial`` of a scipy.ndimage
        filter).
    image : ndarray (rows, cols)
    reach : int
        How many rows [px] an output pixel's inputs lie from it at most.
    threads : int, optional
        Default :func:`thread_count`.

    Examples
    --------
    >>> from functools import partial
    >>> from scipy import ndimage
    >>> image = np.random.default_rng(0).random((512, 300))
    >>> smooth = partial(ndimage.gaussian_filter, sigma=3.0, mode="reflect")
    >>> bool(np.array_equal(in_bands(smooth, image, 12, threads=2), smooth(image)))
    True
    """
    rows = image.shape[0]
    bands = min(thread_count(threads), rows // max(BAND_ROWS, 2 * reach))
    if bands < 2:
        return filter_(image)
    edges = np.linspace(0, rows, bands + 1).astype(int)

    def band(k: int) -> np.ndarray:
        top, bottom = max(0, edges[k] - reach), min(rows, edges[k + 1] + reach)
        filtered = filter_(image[top:bottom])
        return filtered[edges[k] - top : edges[k + 1] - top]

    with ThreadPoolExecutor(bands) as pool:
        return np.concatenate(list(pool.map(band, range(bands))))


def gaussian_in_bands(image: np.ndarray, sigma: float, threads: int | None = None) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma, mode="reflect")`` [image units] on
    :func:`in_bands` (``sigma`` [px]; scipy truncates the kernel at 4 ``sigma``), the same to
    the bit."""
    smooth = partial(ndimage.gaussian_filter, sigma=sigma, mode="reflect")
    return in_bands(smooth, image, gaussian_reach(sigma), threads)


def gaussian_reach(sigma: float) -> int:
    """How far [px] scipy's Gaussian filter of ``sigma`` [px] reaches (its default truncation
    at 4 ``sigma``)."""
    return int(4.0 * float(sigma) + 0.5)


#: Fewest points per chunk of :func:`sampled_in_chunks`.
CHUNK_POINTS = 100_000


def sampled_in_chunks(
    image: np.ndarray, where: np.ndarray, order: int = 1, threads: int | None = None
) -> np.ndarray:
    """``scipy.ndimage.map_coordinates(image, where, order=order)`` [image units] (``where``
    (2, n) (y, x) [px]), the points split over threads (each point's value is its own, so the
    same to the bit; a million points of a 1024 x 1024 image took 0.2 s in one thread)."""
    chunks = min(thread_count(threads), where.shape[1] // CHUNK_POINTS)
    image = np.asarray(image, np.float64)
    if chunks < 2:
        return ndimage.map_coordinates(image, where, order=order)
    parts = np.array_split(where, chunks, axis=1)
    with ThreadPoolExecutor(chunks) as pool:
        return np.concatenate(
            list(pool.map(lambda part: ndimage.map_coordinates(image, part, order=order), parts))
        )
