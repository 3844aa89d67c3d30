"""What every restoration method does before and after it runs: scale, offset, tiles.

- :func:`expected_counts`: the restoration target in the units of a distorted image, the
  expected counts of the undistorted image (a linear map of the clean simulation, fitted).
- :func:`normalise` / :class:`Scaling`: a robust offset and scale, so the network sees every image
  of any count level and offset at zero median and unit spread, and the result goes back to the
  input's units.
- :func:`tile_starts`, :func:`blend_window`, :func:`apply_tiled`: any image size in overlapping
  tiles joined with a smooth weight, so a large image costs memory linear in its size and shows
  no seams.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Scaling",
    "apply_tiled",
    "blend_window",
    "expected_counts",
    "normalise",
    "tile_starts",
]


def expected_counts(image: np.ndarray, clean: np.ndarray, *, clip: float = 5.0) -> np.ndarray:
    """The undistorted image in the units of the distorted one: ``a * clean + b``, fitted.

    Every detector model of :mod:`atomlens.physics.detectors` records on average a linear map of
    the clean image (dose times gain, plus a dark offset), so a least-squares fit of the distorted
    image against the clean one recovers that map without knowing the chain. Outliers (zingers,
    dead pixels, X-ray spikes, fly-back smears) are dropped in a second fit: pixels whose residual
    exceeds ``clip`` times the robust spread of the first fit's residuals, and at most the 0.1 %
    largest (under 1 e-/px most pixels count 0 and single counts are not outliers).

    Parameters
    ----------
    image : ndarray (rows, cols)
        The distorted image [counts].
    clean : ndarray (rows, cols)
        The clean simulation, same shape [relative intensity].
    clip : float
        Outlier threshold of the second fit [robust standard deviations].

    Returns
    -------
    ndarray (rows, cols), float32
        The expected counts of the undistorted image [counts].

    Examples
    --------
    >>> clean = np.linspace(0.5, 1.5, 64 * 64).reshape(64, 64)
    >>> counts = np.random.default_rng(0).poisson(200 * clean) * 3.0 + 10
    >>> target = expected_counts(counts, clean)
    >>> bool(np.allclose(target, 600 * clean + 10, rtol=0.02))
    True
    """
    image = np.asarray(image, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    if image.shape != clean.shape:
        raise ValueError(f"image {image.shape} and clean {clean.shape} must have the same shape.")
    x, y = clean.ravel(), image.ravel()
    keep = np.isfinite(y)
    for _ in range(2):
        design = np.stack([x[keep], np.ones(int(keep.sum()))], axis=1)
        (slope, offset), *_ = np.linalg.lstsq(design, y[keep], rcond=None)
        residual = y - (slope * x + offset)
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        # Outliers are rare: at most the 0.1 % largest residuals are dropped. Below ~1 e-/px
        # most pixels count 0, the median deviation collapses, and every count would otherwise
        # look like an outlier.
        limit = max(clip * spread, float(np.quantile(np.abs(residual[keep]), 0.999)), 1e-12)
        keep = np.isfinite(y) & (np.abs(residual) <= limit)
    return (slope * clean + offset).astype(np.float32)


@dataclass(frozen=True)
class Scaling:
    """A robust offset and scale of an image: ``normalised = (image - offset) / scale``.

    Attributes
    ----------
    offset : float
        The image's median [input units].
    scale : float
        Its spread: the difference of the 99.5th and 0.5th percentiles, or 1 for a flat image
        [input units].
    """

    offset: float
    scale: float

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image in normalised units (float32)."""
        return ((np.asarray(image, dtype=np.float32) - self.offset) / self.scale).astype(np.float32)

    def invert(self, normalised: np.ndarray) -> np.ndarray:
        """Back to the input's units (float32)."""
        return (np.asarray(normalised, dtype=np.float32) * self.scale + self.offset).astype(
            np.float32
        )


def normalise(image: np.ndarray) -> Scaling:
    """The robust scaling of one image (percentiles, so a few hot pixels do not set it).

    Examples
    --------
    >>> scaling = normalise(np.array([[10.0, 20.0], [30.0, 40.0]]))
    >>> float(scaling.offset)
    25.0
    """
    values = np.asarray(image, dtype=np.float64)
    low, median, high = np.percentile(values, [0.5, 50.0, 99.5])
    spread = high - low
    scale = spread if spread > 1e-12 * max(1.0, abs(median)) else 1.0
    return Scaling(offset=float(median), scale=float(scale))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of ``tile`` px that cover ``length`` px, overlapping >= ``overlap``.

    The last tile ends at the edge; a length shorter than a tile gives one tile at 0.

    Examples
    --------
    >>> tile_starts(300, 128, 32)
    [0, 86, 172]
    >>> tile_starts(100, 128, 32)
    [0]
    """
    if tile <= overlap:
        raise ValueError(f"tile={tile} px must be larger than overlap={overlap} px.")
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(tile: int, overlap: int, *, first: bool = False, last: bool = False) -> np.ndarray:
    """1D weight of a tile along one axis: 0 in a guard band, a raised-cosine ramp, then 1.

    At an edge shared with a neighbour the weight is 0 over the outer ``overlap // 4`` px (where
    a network sees the tile's artificial border) and rises smoothly over the rest of the overlap;
    at an image edge (``first`` / ``last``) it is 1, since no other tile covers those pixels.
    Neighbouring tiles overlap by at least ``overlap`` px, so their weights always sum to more
    than 0 and the normalised blend changes smoothly from one tile to the next (no seam).
    """
    weight = np.ones(tile, dtype=np.float64)
    guard = overlap // 4
    width = overlap - guard
    if width > 0:
        ramp = np.zeros(overlap)
        ramp[guard:] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        if not first:
            weight[:overlap] = ramp
        if not last:
            weight[-overlap:] = ramp[::-1]
    return weight


def apply_tiled(
    image: np.ndarray,
    function: Callable[[np.ndarray], np.ndarray],
    *,
    tile: int = 256,
    overlap: int = 32,
    batch: int = 4,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``function`` on overlapping tiles of a 2D image, blended smoothly.

    A pixel's result comes only from tiles in which it lies at least ``overlap // 4`` px from a
    tile border that is not an image border, so an operator whose reach is under that gives
    exactly the untiled result.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Any size; an image smaller than ``tile`` is processed whole.
    function : callable
        ``function(tiles)`` maps a (n, h, w) float32 array to one of the same shape.
    tile, overlap : int
        Tile size and the least overlap of neighbours [px].
    batch : int
        Tiles per call of ``function``.
    progress : callable, optional
        Called with the number of tiles finished after each batch.

    Returns
    -------
    ndarray (rows, cols), float32

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(size=(300, 200))
    >>> bool(np.allclose(apply_tiled(image, lambda t: 2 * t, tile=64, overlap=16), 2 * image))
    True
    """
    rows, cols = image.shape
    tile_y, tile_x = min(tile, rows), min(tile, cols)
    overlap_y, overlap_x = min(overlap, tile_y // 2), min(overlap, tile_x // 2)
    starts_y = tile_starts(rows, tile_y, overlap_y) if rows > tile_y else [0]
    starts_x = tile_starts(cols, tile_x, overlap_x) if cols > tile_x else [0]
    starts = [(y, x) for y in starts_y for x in starts_x]
    total = np.zeros((rows, cols), dtype=np.float64)
    norm = np.zeros((rows, cols), dtype=np.float64)
    for first in range(0, len(starts), batch):
        group = starts[first : first + batch]
        tiles = np.stack([image[y : y + tile_y, x : x + tile_x] for y, x in group])
        out = np.asarray(function(tiles.astype(np.float32)), dtype=np.float64)
        for (y, x), result in zip(group, out, strict=True):
            weight = np.outer(
                blend_window(tile_y, overlap_y, first=y == 0, last=y + tile_y == rows),
                blend_window(tile_x, overlap_x, first=x == 0, last=x + tile_x == cols),
            )
            total[y : y + tile_y, x : x + tile_x] += weight * result
            norm[y : y + tile_y, x : x + tile_x] += weight
        if progress is not None:
            progress(len(group))
    return (total / norm).astype(np.float32)
