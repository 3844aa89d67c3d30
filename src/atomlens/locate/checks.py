"""The locate verb's input rules: what is not an image with columns to find is refused early."""

from __future__ import annotations

import numpy as np

from atomlens.core.validation import InputError, check_image, check_size

__all__ = ["MIN_SIZE", "check_locate_input"]

#: Smallest image side the locate verb accepts [px].
MIN_SIZE = 16


def check_locate_input(image: object, name: str = "image") -> np.ndarray:
    """The image or stack as float64 (the caller's array never modified), or a clear error.

    Raises
    ------
    InputError
        Complex, non-numeric, NaN or infinite values; not 2-D or 3-D; a side under
        :data:`MIN_SIZE` px; a constant image or frame (no columns to find).
    SizeLimitError
        Larger than the array size limit (``ATOMLENS_MAX_ARRAY_GB``), before any copy.
    """
    raw = np.asarray(image)
    if raw.ndim in (2, 3):
        check_size(name, raw.shape, itemsize=8)
    check_image(name, raw, ndim=(2, 3), min_size=1)  # refuses; its float32 copy is not used:
    array = np.asarray(raw, dtype=np.float64)  # a large offset would cost float32 precision
    if min(array.shape[-2:]) < MIN_SIZE:
        raise InputError(
            f"{name} must be at least {MIN_SIZE} x {MIN_SIZE} px to locate columns in, got shape "
            f"{array.shape}."
        )
    frames = array.reshape(-1, *array.shape[-2:])
    for i, frame in enumerate(frames):
        if np.ptp(frame) == 0:
            where = f"frame {i} of {name}" if array.ndim == 3 else name
            raise InputError(
                f"{where} is constant ({float(frame.flat[0]):.4g} everywhere): there are no "
                "columns to locate."
            )
    return array
