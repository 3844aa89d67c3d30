"""Local strain and rotation from column positions, against the fitted lattice.

Around every column, the affine map that takes the ideal sites of it and its nearest neighbours
onto their measured positions is fitted by least squares; its linear part F (the deformation
gradient) gives the small strain ``e = (F + F^T) / 2 - I`` and the rotation
``w = (F_yx - F_xy) / 2`` [rad]. Components use x along the image columns and y along the rows
(down); ``exy`` is the tensor shear (half the engineering shear). The reference is the lattice
fitted to the whole image: strain is relative to the image's own mean lattice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import spatial

__all__ = ["local_strain"]


def local_strain(
    measured: np.ndarray, ideal: np.ndarray, *, neighbours: int = 8, min_neighbours: int = 4
) -> pd.DataFrame:
    """Strain and rotation at every column from its neighbourhood.

    Parameters
    ----------
    measured, ideal : ndarray (n, 2)
        Measured positions and ideal lattice sites (y, x), in one length unit; NaN ideal sites
        (unassigned columns) get NaN strain and are left out of their neighbours' fits.
    neighbours : int
        Nearest neighbours in each fit.
    min_neighbours : int
        Fewer valid neighbours give NaN.

    Returns
    -------
    DataFrame
        ``exx``, ``eyy``, ``exy`` [1] and ``rotation`` [degrees, positive from x towards y].

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij"), -1)
    >>> ideal = grid.reshape(-1, 2) * 4.0
    >>> stretched = ideal * [1.0, 1.02]  # 2 % along x
    >>> strain = local_strain(stretched, ideal)
    >>> round(float(strain["exx"].median()), 4), round(float(strain["eyy"].median()), 4)
    (0.02, 0.0)
    """
    measured = np.asarray(measured, dtype=float)
    ideal = np.asarray(ideal, dtype=float)
    if measured.shape != ideal.shape or measured.ndim != 2 or measured.shape[1] != 2:
        raise ValueError(
            f"measured and ideal must both be (n, 2), got {measured.shape} and {ideal.shape}."
        )
    valid = np.isfinite(ideal).all(axis=1) & np.isfinite(measured).all(axis=1)
    result = np.full((len(measured), 4), np.nan)
    usable = np.flatnonzero(valid)
    if len(usable) > min_neighbours:
        tree = spatial.cKDTree(ideal[usable])
        k = min(neighbours + 1, len(usable))
        _, index = tree.query(ideal[usable], k=k)
        for row, members in zip(usable, usable[index], strict=True):
            if len(members) - 1 < min_neighbours:
                continue
            source = ideal[members] - ideal[members].mean(axis=0)
            target = measured[members] - measured[members].mean(axis=0)
            if np.linalg.matrix_rank(source) < 2:
                continue
            # target = source @ G with G = F^T in (y, x) coordinates
            transposed, *_ = np.linalg.lstsq(source, target, rcond=None)
            gradient = transposed.T  # F[a, b] = d measured_a / d ideal_b, a, b in (y, x)
            eyy, exx = gradient[0, 0] - 1.0, gradient[1, 1] - 1.0
            exy = 0.5 * (gradient[0, 1] + gradient[1, 0])
            rotation = 0.5 * (gradient[0, 1] - gradient[1, 0])  # (F_yx - F_xy) / 2
            result[row] = exx, eyy, exy, np.degrees(rotation)
    return pd.DataFrame(result, columns=["exx", "eyy", "exy", "rotation"])
