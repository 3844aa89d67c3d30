"""Ronchigram input handling: calibration, bright-field disc, canonical angular grid.

Estimators see every Ronchigram on one canonical grid: angles in units of the convergence
semi-angle, centred on the bright-field disc, whatever the camera, its angular sampling or the beam
tilt. Physically, what a Ronchigram shows at angle alpha depends on chi's derivatives there, so
measuring angles relative to the semi-angle makes one model serve every detector geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from atomlens.core.energy import wavelength
from atomlens.core.validation import InputError, check_image, check_parameter
from atomlens.io import ImageData, MissingCalibrationError, read

#: Canonical grid: SIZE x SIZE pixels spanning +-EXTENT semi-angles.
CANONICAL_SIZE = 96
CANONICAL_EXTENT = 1.25
#: Smallest Ronchigram accepted [px along each axis].
MIN_SIZE = 16
#: Largest detector pixels per canonical pixel resampled directly; beyond, the image is binned
#: first (never in the trained range, 1-2), which keeps the anti-aliasing filter small.
_MAX_STEP = 4.0


@dataclass(frozen=True)
class RonchigramInput:
    """A Ronchigram with the calibration an estimator needs.

    Attributes
    ----------
    image : ndarray of shape (H, W), float32
    energy : float
        Beam energy [eV].
    semiangle : float
        Convergence semi-angle [mrad].
    angular_sampling : float
        Detector pixel [mrad / px] (square pixels).
    source : str
        Where it came from (a path or "array").

    Raises
    ------
    InputError
        An image that is not real, finite, 2-D and at least 16 px along each axis.
    ParameterError
        A calibration outside :data:`atomlens.core.validation.PARAMETERS`.
    """

    image: np.ndarray
    energy: float
    semiangle: float
    angular_sampling: float
    source: str = "array"

    def __post_init__(self) -> None:
        name = self.source if self.source != "array" else "the Ronchigram array"
        _check_float32_range(name, self.image)
        image = check_image(name, self.image, ndim=2, min_size=MIN_SIZE)
        object.__setattr__(self, "image", image)
        for keyword in ("energy", "semiangle", "angular_sampling"):
            object.__setattr__(self, keyword, check_parameter(keyword, getattr(self, keyword)))


def _check_float32_range(name: str, image: object) -> None:
    """Refuse finite values beyond float32 (3.4e38), which the conversion would make infinite.

    Raises
    ------
    InputError
        Naming the largest magnitude, before the conversion (which would warn and then be
        refused as "infinite values" the image does not hold).
    """
    array = np.asarray(image)
    if array.dtype.kind != "f" or array.dtype.itemsize <= 4 or not array.size:
        return
    with np.errstate(invalid="ignore"):
        finite = np.abs(array[np.isfinite(array)])
    largest = float(finite.max()) if finite.size else 0.0
    if largest > float(np.finfo(np.float32).max):
        raise InputError(
            f"{name} holds values up to {largest:.3g}, beyond the float32 range (3.4e38) "
            "atomlens computes in; a Ronchigram holds counts or intensities: check the scaling."
        )


def ronchigram_input(
    data: str | Path | np.ndarray | ImageData,
    *,
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
) -> RonchigramInput:
    """Gather a Ronchigram and its calibration; given values override the file's.

    Parameters
    ----------
    data : path, ndarray or ImageData
        A microscope file (read with ``atomlens.io.read``), an array, or data already read.
    energy : float, optional
        Beam energy [eV]; taken from the file when absent.
    semiangle : float, optional
        Convergence semi-angle [mrad]; files rarely store it.
    angular_sampling : float, optional
        Detector pixel [mrad / px]; taken from the file (mrad axes, or 1/Å axes with the energy).

    Raises
    ------
    MissingCalibrationError
        Naming each missing quantity and the option that supplies it.
    """
    if isinstance(data, str | Path):
        data = read(data)
    if isinstance(data, ImageData):
        source = str(data.path) if data.path else "array"
        image = np.asarray(data.data)
        energy = energy if energy is not None else data.energy
        if angular_sampling is None:
            angular_sampling = _file_sampling(data, energy)
    else:
        source, image = "array", np.asarray(data)
    missing = [
        f"{name} ({flag}, {unit})"
        for name, flag, unit, value in (
            ("beam energy", "energy=", "eV", energy),
            ("convergence semi-angle", "semiangle=", "mrad", semiangle),
            ("angular sampling", "angular_sampling=", "mrad per px",
             angular_sampling),
        )
        if value is None
    ]  # fmt: skip
    if missing:
        raise MissingCalibrationError(
            f"The Ronchigram from {source} lacks its {', '.join(missing)}; give them explicitly."
        )
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:
        raise InputError(
            f"{source} holds a stack of {image.shape[0]} images ({image.shape}), not one "
            "Ronchigram: give them one by one, or as an (N, H, W) array to estimate_batch."
        )
    return RonchigramInput(image, energy, semiangle, angular_sampling, source)


def _file_sampling(data: ImageData, energy: float | None) -> float | None:
    angles = data.angular_sampling
    if angles is None and data.reciprocal_sampling is not None and energy is not None:
        angles = tuple(k * wavelength(energy) * 1e3 for k in data.reciprocal_sampling)
    if angles is None:
        return None
    if not math.isclose(angles[0], angles[1], rel_tol=1e-3):
        raise ValueError(f"Non-square detector pixels ({angles} mrad) are not supported yet.")
    return float(angles[0])


def find_bright_field_disc(image: np.ndarray) -> tuple[float, float, float]:
    """Centre (row, column) and radius of the bright-field disc [px].

    The disc is the largest bright region after an Otsu-like threshold halfway between the
    background and the disc level; its centroid is the centre and sqrt(area / pi) the radius.

    Raises
    ------
    ValueError
        When no disc stands out (a flat or empty image).
    """
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=float), 2.0)
    low, high = np.percentile(smooth, [5, 99])
    if not high > low:
        raise ValueError("No bright-field disc found: the Ronchigram is flat.")
    mask = smooth > (low + high) / 2
    labels, count = ndimage.label(mask)
    if count == 0:
        raise ValueError("No bright-field disc found in the Ronchigram.")
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    disc = labels == (int(np.argmax(sizes)) + 1)
    disc = ndimage.binary_fill_holes(disc)
    rows, cols = np.nonzero(disc)
    return float(rows.mean()), float(cols.mean()), float(math.sqrt(disc.sum() / math.pi))


def canonical_grid(
    ronchigram: RonchigramInput,
    *,
    size: int = CANONICAL_SIZE,
    extent: float = CANONICAL_EXTENT,
    centre: str | tuple[float, float] = "disc",
) -> np.ndarray:
    """Resample a Ronchigram onto the canonical angular grid.

    Parameters
    ----------
    ronchigram : RonchigramInput
    size : int
        Output size [px].
    extent : float
        Half-width of the output in semi-angles: pixel (i, j) sits at angle
        ``((i - size / 2 + 0.5), (j - size / 2 + 0.5)) * 2 * extent / size`` semi-angles from the
        centre.
    centre : "disc", "axis" or (row, column)
        The bright-field disc's centre (follows beam tilt and shift), the image centre
        (rows // 2, columns // 2), or a given detector pixel.

    Returns
    -------
    ndarray of shape (size, size), float32
        Intensity divided by its mean inside 0.9 semi-angles; zero outside the detector.
    """
    image = ronchigram.image
    if centre == "disc":
        cy, cx, _ = find_bright_field_disc(image)
    elif centre == "axis":
        cy, cx = image.shape[0] // 2, image.shape[1] // 2
    else:
        cy, cx = (float(c) for c in centre)
    sampling = ronchigram.angular_sampling  # [mrad / px]
    step = 2 * extent * ronchigram.semiangle / size / sampling  # [det. px]
    if step > _MAX_STEP:  # bin first: the Gaussian below then stays a few pixels wide
        factor = int(step // 2)
        image = bin_image(image, factor)
        cy, cx = (cy + 0.5) / factor - 0.5, (cx + 0.5) / factor - 0.5
        step, sampling = step / factor, sampling * factor
    if step > 1:  # anti-aliasing: a Gaussian as wide as the canonical pixel (sigma^2 + 1/4 = s^2/4)
        image = ndimage.gaussian_filter(image, math.sqrt(step**2 - 1) / 2)
    offsets = (np.arange(size) - size / 2 + 0.5) * step
    rows, cols = np.meshgrid(cy + offsets, cx + offsets, indexing="ij")
    grid = ndimage.map_coordinates(image, [rows, cols], order=1, mode="constant", cval=0.0)
    radius = np.hypot(*np.meshgrid(offsets, offsets, indexing="ij")) * sampling
    inside = radius < 0.9 * ronchigram.semiangle
    mean = grid[inside].mean() if inside.any() else 0.0
    return (grid / mean if mean > 0 else grid).astype(np.float32)


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks (rows and columns left over are dropped).

    Binned pixel k covers original pixels ``k factor`` to ``(k + 1) factor - 1``, so its centre
    lies at ``(k + 1/2) factor - 1/2`` original pixels.

    Parameters
    ----------
    image : ndarray of shape (H, W)
    factor : int
        Block size [px], at least 1.

    Returns
    -------
    ndarray of shape (H // factor, W // factor), float64
    """
    rows, cols = (n // factor * factor for n in image.shape)
    blocks = np.asarray(image[:rows, :cols], dtype=np.float64)
    return blocks.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
