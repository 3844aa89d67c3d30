"""Training labels aligned with an image: per-class masks and a distance map.

Positions are in pixels with pixel centres at integer coordinates, so a column at (y, x) = (3, 4)
puts the peak of its Gaussian exactly on pixel (3, 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import spatial

KINDS = ("gaussian", "disk")


def class_masks(
    table: pd.DataFrame,
    shape: tuple[int, int],
    classes: Sequence[str] | None = None,
    *,
    kind: str = "gaussian",
    sigma: float = 1.0,
    radius: float = 2.0,
    column: str = "species",
) -> tuple[np.ndarray, list[str]]:
    """One mask per class, drawn at the table's positions.

    Parameters
    ----------
    table : DataFrame
        Atom table with ``y``, ``x`` [px] and the class ``column``.
    shape : (int, int)
        Image size (rows, columns) [px].
    classes : sequence of str, optional
        Class order; default: the sorted unique values of ``column``.
    kind : {"gaussian", "disk"}
        Gaussians of peak 1 and standard deviation ``sigma`` [px] (overlaps take the maximum), or
        disks of ``radius`` [px].
    column : str
        Table column holding the class name.

    Returns
    -------
    masks : ndarray of shape (len(classes), rows, columns), float32
    classes : list of str

    Examples
    --------
    >>> table = pd.DataFrame({"y": [2.0], "x": [3.0], "species": ["Sr"]})
    >>> masks, names = class_masks(table, (5, 6))
    >>> names, float(masks[0, 2, 3])
    (['Sr'], 1.0)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    if sigma <= 0 or radius <= 0:
        raise ValueError("sigma and radius must be positive [px].")
    for name in ("y", "x", column):
        if name not in table:
            raise ValueError(f"The atom table needs a {name!r} column; it has {list(table)}.")
    classes = sorted(table[column].astype(str).unique()) if classes is None else list(classes)
    masks = np.zeros((len(classes), *shape), dtype=np.float32)
    reach = int(np.ceil(4 * sigma if kind == "gaussian" else radius)) + 1
    offsets = np.arange(-reach, reach + 1)
    for index, name in enumerate(classes):
        chosen = table[table[column].astype(str) == name]
        for y, x in zip(chosen["y"].to_numpy(), chosen["x"].to_numpy(), strict=True):
            rows = np.round(y).astype(int) + offsets
            cols = np.round(x).astype(int) + offsets
            keep_r = (rows >= 0) & (rows < shape[0])
            keep_c = (cols >= 0) & (cols < shape[1])
            if not keep_r.any() or not keep_c.any():
                continue
            rows, cols = rows[keep_r], cols[keep_c]
            d2 = (rows[:, None] - y) ** 2 + (cols[None, :] - x) ** 2
            if kind == "gaussian":
                patch = np.exp(-d2 / (2 * sigma**2))
            else:
                patch = (d2 <= radius**2).astype(np.float32)
            block = masks[index, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            np.maximum(block, patch, out=block)
    return masks, classes


def distance_map(table: pd.DataFrame, shape: tuple[int, int]) -> np.ndarray:
    """Distance from every pixel centre to the nearest listed position [px], float32 (H, W).

    An empty table gives the diagonal of the image everywhere.
    """
    if len(table) == 0:
        return np.full(shape, float(np.hypot(*shape)), dtype=np.float32)
    tree = spatial.cKDTree(table[["y", "x"]].to_numpy(dtype=float))
    rows, cols = np.indices(shape)
    distances, _ = tree.query(np.column_stack([rows.ravel(), cols.ravel()]))
    return distances.reshape(shape).astype(np.float32)
