"""What every restoration method does before and after it runs: scale, offset, tiles.

- :func:`expected_counts`: the restoration target in the units of a distorted image, the
  expected counts of the undistorted image (a linear map of the clean simulation, fitted).
- :func:`normalise` / :class:`Scaling`: a robust offset and scale, so the network sees every image
  of any count level and offset at zero median and unit spread, and the result goes back to the
  input's units.
- :func:`tile_starts`, :func:`blend_window`, :func:`apply_tiled` (from :mod:`atomlens.nn.tiling`,
  shared with locate's networks): any image size in overlapping tiles joined with a smooth
  weight, so a large image costs memory linear in its size and shows no seams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomlens.nn.tiling import apply_tiled, blend_window, tile_starts

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
