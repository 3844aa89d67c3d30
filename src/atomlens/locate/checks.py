"""The locate verb's input rules: what is not an image with columns to find is refused early."""

from __future__ import annotations

import numpy as np

from atomlens.core.validation import check_frames

__all__ = ["MIN_SIZE", "check_locate_input"]

#: Smallest image side the locate verb accepts [px].
MIN_SIZE = 16


def check_locate_input(image: object, name: str = "image") -> np.ndarray:
    """The image or stack as float64 (the caller's array never modified), or a clear error.

    float64, not float32: a large offset would cost the positions precision.

    Raises
    ------
    InputError
        Complex, non-numeric, NaN or infinite values; not 2-D or 3-D; a side under
        :data:`MIN_SIZE` px; a constant image or frame (no columns to find).
    SizeLimitError
        Larger than the array size limit (``ATOMLENS_MAX_ARRAY_GB``), before any copy.
    """
    return check_frames(
        name, image, min_size=MIN_SIZE, purpose="locate columns in", dtype=np.float64
    )
