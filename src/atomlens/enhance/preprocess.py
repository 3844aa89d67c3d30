"""What enhancement does before and after its network: one column spacing, robust scaling.

The generators were trained on patches in which neighbouring columns lie
:data:`CANONICAL_SPACING` px apart (locate's canonical scale), whatever the microscope's pixel
size: every image is resampled to that scale (:func:`to_canonical`), normalised
(:func:`atomlens.restore.normalise`), enhanced in tiles, and resampled back
(:func:`from_canonical`). So a 0.5 Å/px survey image and a 0.05 Å/px close-up meet the
network alike, and the network never has to guess the magnification.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CANONICAL_SPACING", "MAX_FACTOR", "PATCH", "from_canonical", "to_canonical"]

#: Column spacing of the network's input [px] (the same as locate's networks).
CANONICAL_SPACING = 8.0
#: Training patch size [px, at the canonical scale].
PATCH = 64
#: The most an image is enlarged or shrunk to reach the canonical scale (x or 1/x).
MAX_FACTOR = 6.0


def to_canonical(image: np.ndarray, spacing: float) -> tuple[np.ndarray, float]:
    """The image resampled so that columns ``spacing`` px apart become 8 px apart.

    Shrinking averages over the pixels it merges (anti-aliased), enlarging interpolates
    linearly; either keeps the image's units.

    Parameters
    ----------
    image : ndarray (rows, cols)
    spacing : float
        The nearest-neighbour column distance [px], in (8 / MAX_FACTOR, 8 * MAX_FACTOR).

    Returns
    -------
    resampled : ndarray, float32
    factor : float
        Canonical px per input px.

    Examples
    --------
    >>> resampled, factor = to_canonical(np.ones((100, 60)), spacing=16.0)
    >>> resampled.shape, factor
    ((50, 30), 0.5)
    """
    from skimage.transform import resize

    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a positive number of pixels, got {spacing!r}.")
    factor = CANONICAL_SPACING / spacing
    if not 1 / MAX_FACTOR <= factor <= MAX_FACTOR:
        raise ValueError(
            f"A column spacing of {spacing:.3g} px is outside what enhancement resamples "
            f"({CANONICAL_SPACING / MAX_FACTOR:.3g} to {CANONICAL_SPACING * MAX_FACTOR:.3g} px); "
            "bin or crop the image first."
        )
    shape = tuple(max(8, round(n * factor)) for n in image.shape)
    resampled = resize(
        np.asarray(image, np.float64),
        shape,
        order=1,
        mode="reflect",
        anti_aliasing=factor < 1,
        preserve_range=True,
    )
    return resampled.astype(np.float32), factor


def from_canonical(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A canonical-scale image resampled back to the input's ``shape`` (linear, anti-aliased
    when shrinking), float32."""
    from skimage.transform import resize

    shrink = image.shape[0] > shape[0]
    resampled = resize(
        np.asarray(image, np.float64),
        shape,
        order=1,
        mode="reflect",
        anti_aliasing=shrink,
        preserve_range=True,
    )
    return resampled.astype(np.float32)
