"""Arrays that stay in their file until used, and the size a file declares for its arrays.

The readers of :mod:`._formats` return their arrays unread where they can (a :class:`Deferred`
of their own, or rosettasciio's dask arrays), so that :func:`atomlens.io.read` can check the
declared shape x item size against the array size limit before anything is allocated, and
``atomlens info`` can describe a file without loading its data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from atomlens.core.validation import check_size

__all__ = [
    "DESCRIBE_VALUES_LIMIT",
    "Deferred",
    "check_declared",
    "declared_bytes",
    "format_bytes",
    "placeholder",
]

#: The largest data [bytes] :func:`atomlens.io.describe` (``atomlens info``) loads to show value
#: statistics: 256 MiB, one 8192 x 8192 float32 image, a fraction of a second to read from disk.
DESCRIBE_VALUES_LIMIT = 256 * 2**20


class Deferred:
    """An array of known shape and dtype that is read from its file by ``np.asarray``.

    Parameters
    ----------
    shape : sequence of int
        Shape the file declares.
    dtype : numpy.dtype
        Element type the file declares.
    load : callable
        Reads and returns the array (shape ``shape``, dtype ``dtype``).
    """

    def __init__(self, shape: Sequence[int], dtype: np.dtype, load: Callable[[], np.ndarray]):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._load = load

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Size once read [bytes]."""
        return self.size * self.dtype.itemsize

    def reshape(self, shape: Sequence[int]) -> Deferred:
        """The same data in another shape, still unread."""
        shape = tuple(shape)
        return Deferred(shape, self.dtype, lambda: np.asarray(self._load()).reshape(shape))

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        array = np.asarray(self._load())
        return array if dtype is None else array.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Deferred(shape={self.shape}, dtype={self.dtype})"


def declared_bytes(shape: Sequence[int], dtype: np.dtype) -> int:
    """Size of an array of ``shape`` and ``dtype`` [bytes]."""
    return math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize


def check_declared(path: Path, arrays: Iterable[tuple[str, Sequence[int], np.dtype]]) -> int:
    """Refuse a file whose arrays, all read at once, would exceed the array size limit.

    Parameters
    ----------
    path : Path
        The file, named in the message.
    arrays : iterable of (name, shape, dtype)
        Every array a reader that loads the whole file allocates.

    Returns
    -------
    int
        Their total size [bytes].

    Raises
    ------
    SizeLimitError
        One array, or all of them together, over ``ATOMLENS_MAX_ARRAY_GB``.
    """
    arrays = list(arrays)
    total = 0
    for name, shape, dtype in arrays:
        total += check_size(f"array {name!r} of {path}", shape, np.dtype(dtype).itemsize)
    if len(arrays) > 1:
        check_size(f"the {len(arrays)} arrays of {path} together", (total,), 1)
    return total


def placeholder(shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """A read-only array of ``shape`` and ``dtype`` (native byte order) that takes no memory.

    Stands in for data that was not read, so that shapes and axes can still be described; its
    values (all zero) mean nothing.
    """
    dtype = np.dtype(dtype)
    if dtype.names is None and not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    return np.broadcast_to(np.zeros((), dtype=dtype), tuple(shape))


def format_bytes(count: int) -> str:
    """A size in words, e.g. ``'64 bytes'``, ``'256 MiB'``, ``'37.3 GiB'``."""
    if count < 1024:
        return f"{count} bytes"
    power = min(int(math.log(count, 1024)), 4)
    return f"{count / 1024**power:.3g} {('KiB', 'MiB', 'GiB', 'TiB')[power - 1]}"
