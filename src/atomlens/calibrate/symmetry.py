"""The eight symmetries of the square canonical grid and what they do to aberration coefficients.

Rotating or mirroring a Ronchigram of a statistically isotropic specimen (amorphous carbon) gives
the Ronchigram of the correspondingly rotated or mirrored aberration function: an exact label
transform that multiplies the training data by eight for free.

Canonical pixel (row, column) sits at angle (ky, kx) from the disc centre and the azimuth is
phi = atan2(ky, kx), as in :func:`atomlens.physics.optics.transfer.polar_angles`. An image
transform that moves the feature at azimuth phi to ``s * phi + delta`` changes the azimuth of every
coefficient the same way, so its Cartesian pair obeys ``a' + i b' = exp(i m delta) (a + i s b)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Cartesian coefficients the estimator works with, and the azimuthal order m of each.
COEFFICIENTS: tuple[str, ...] = ("C10", "C12a", "C12b", "C21a", "C21b", "C23a", "C23b", "C30")
_PAIRS: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (3, 4, 1), (5, 6, 3))  # (a, b, m)

#: The group elements: (quarter turns by np.rot90, then transpose?).
ELEMENTS: tuple[tuple[int, bool], ...] = tuple((k, t) for t in (False, True) for k in range(4))


def azimuth_map(quarter_turns: int, transpose: bool) -> tuple[int, float]:
    """(s, delta) such that the transform moves azimuth phi to ``s * phi + delta`` [rad].

    ``np.rot90`` turns the array counter-clockwise as displayed (rows down), which moves
    phi = atan2(row, column) to phi - pi / 2; a transpose moves phi to pi / 2 - phi.
    """
    sign, delta = 1, -quarter_turns * math.pi / 2
    if transpose:
        sign, delta = -sign, math.pi / 2 - delta
    return sign, delta


def transform_grids(grids: np.ndarray, quarter_turns: int, transpose: bool) -> np.ndarray:
    """Apply one group element to the last two axes of an array of canonical grids."""
    out = np.rot90(grids, quarter_turns, axes=(-2, -1))
    return np.swapaxes(out, -1, -2) if transpose else out


def transform_coefficients(
    coefficients: np.ndarray, quarter_turns: int, transpose: bool
) -> np.ndarray:
    """The coefficients (..., 8), ordered as :data:`COEFFICIENTS`, after the same group element."""
    sign, delta = azimuth_map(quarter_turns, transpose)
    out = np.array(coefficients, dtype=np.float64, copy=True)
    for a, b, m in _PAIRS:
        pair = (coefficients[..., a] + 1j * sign * coefficients[..., b]) * np.exp(1j * m * delta)
        out[..., a], out[..., b] = pair.real, pair.imag
    return out


def check_terms(fit: Sequence[str], name: str = "fit") -> tuple[str, ...]:
    """``fit`` as a tuple, refused (ValueError naming ``name``) unless it names some of
    :data:`COEFFICIENTS` and nothing else.

    Examples
    --------
    >>> check_terms(["C10", "C30"])
    ('C10', 'C30')
    """
    unknown = [term for term in fit if term not in COEFFICIENTS]
    if unknown or not fit:
        raise ValueError(f"{name} must name some of {', '.join(COEFFICIENTS)}; unknown term(s): "
                         f"{', '.join(unknown) or 'none given'}.")  # fmt: skip
    return tuple(fit)
