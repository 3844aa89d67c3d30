"""One call from an atomic field to a simulated image with its ground truth.

``simulate_image`` renders a field (an ``ase.Atoms`` box, see ``structures.field``) with STEM or
HRTEM image formation, applies shot noise or a distortion chain, and returns the image with the
clean image, the atom-column table and everything that was drawn, all aligned pixel for pixel:
the column at ``(y, x)`` [px] of the table sits on pixel centre ``(y, x)`` of both images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from atomlens.core.validation import check_parameter, check_size
from atomlens.physics.detectors.base import ShotNoise
from atomlens.physics.imaging.hrtem import HRTEMImaging, hrtem_image
from atomlens.physics.imaging.stem import STEMImaging, stem_image
from atomlens.physics.structures.lattice import columns


class DistortionChain(Protocol):
    """Anything that distorts a clean image: ``apply(image, rng) -> (image, record)``."""

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, object]: ...

    def describe(self) -> object: ...


@dataclass
class SimulatedImage:
    """A simulated image and its ground truth.

    Attributes
    ----------
    image : ndarray of shape (rows, cols), float32
        What a detector records [counts] (or the clean image when nothing was applied).
    clean : ndarray of shape (rows, cols), float32
        The noise-free, undistorted image: HAADF with mean 1, HRTEM / ABF relative to vacuum.
    atoms : DataFrame
        The projected columns: ``y``, ``x`` [px], ``y_A``, ``x_A`` [Å], ``Z``, ``species``,
        ``count``, ``Z_sum``.
    pixel_size : float
        [Å].
    metadata : dict
        Imaging parameters, the distortions applied and what they drew.
    """

    image: np.ndarray
    clean: np.ndarray
    atoms: pd.DataFrame
    pixel_size: float
    metadata: dict = field(default_factory=dict)


def field_shape(atoms, pixel_size: float) -> tuple[int, int]:
    """Image shape (rows, cols) [px] of a field box at a pixel size [Å]."""
    check_parameter("pixel_size", pixel_size)
    cell = np.asarray(atoms.cell)
    if not np.allclose(cell - np.diag(np.diag(cell)), 0, atol=1e-6):
        raise ValueError("The field must be an orthorhombic box; build it with structures.field().")
    rows, cols = cell[1, 1] / pixel_size, cell[0, 0] / pixel_size
    check_size("the image", (rows, cols))
    shape = (round(rows), round(cols))
    if min(shape) < 2 or abs(rows - shape[0]) > 1e-3 or abs(cols - shape[1]) > 1e-3:
        raise ValueError(
            f"The field box {cell[1, 1]:.4g} x {cell[0, 0]:.4g} Å is not a whole number of "
            f"{pixel_size} Å pixels; build it with structures.field(shape, pixel_size)."
        )
    return shape


#: Vacuum added around a non-periodic field before the (periodic, FFT-based) rendering [Å].
EDGE_MARGIN = 8.0
#: Memory the renderers need per pixel of the simulation grid [bytes]: about eight complex64
#: grids at once. A tiny pixel size pads a small field with thousands of pixels of vacuum.
SIMULATION_BYTES_PER_PX = 64


def _fft_size(n: int) -> int:
    """The smallest n' >= n whose prime factors are 2 and 3 (the fastest FFT sizes here)."""
    while True:
        m = n
        for p in (2, 3):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def clean_image(atoms, pixel_size: float, imaging: STEMImaging | HRTEMImaging) -> np.ndarray:
    """The noise-free image of a field (rows, cols), float32.

    The renderers are periodic. A field that is not periodic with its box (``atoms.pbc`` false in
    x or y, e.g. a crystal cut to an incommensurate box) is rendered on a grid padded with
    ``EDGE_MARGIN`` of vacuum on every side and cropped, so columns near one edge do not see the
    columns of the opposite edge; the image then fades at the box edge as the specimen ends there.
    """
    shape = field_shape(atoms, pixel_size)
    periodic = bool(np.all(np.asarray(atoms.pbc)[:2]))
    margin = 0 if periodic else int(np.ceil(EDGE_MARGIN / pixel_size))
    padded = tuple(_fft_size(n + 2 * margin) if margin else n for n in shape)
    # the renderers hold several complex grids of this size at once (wave, potential, kernels)
    check_size("the simulation grid padded with vacuum", padded, itemsize=SIMULATION_BYTES_PER_PX)
    pad = [(p - n) // 2 for p, n in zip(padded, shape, strict=True)]
    yxz = atoms.positions[:, [1, 0, 2]] + [pad[0] * pixel_size, pad[1] * pixel_size, 0.0]
    if isinstance(imaging, STEMImaging):
        image = stem_image(yxz[:, :2], atoms.numbers, padded, pixel_size, imaging)
    elif isinstance(imaging, HRTEMImaging):
        image = hrtem_image(yxz, atoms.numbers, padded, pixel_size, imaging)
    else:
        raise TypeError(
            f"imaging must be STEMImaging or HRTEMImaging, got {type(imaging).__name__}."
        )
    image = image[pad[0] : pad[0] + shape[0], pad[1] : pad[1] + shape[1]]
    if isinstance(imaging, STEMImaging) and imaging.mode == "HAADF" and image.mean() > 0:
        image = image / image.mean()
    return np.ascontiguousarray(image, dtype=np.float32)


def simulate_image(
    atoms,
    pixel_size: float,
    imaging: STEMImaging | HRTEMImaging,
    *,
    dose_per_pixel: float | None = None,
    distortions: DistortionChain | None = None,
    rng: np.random.Generator | None = None,
    column_tolerance: float = 0.3,
) -> SimulatedImage:
    """Simulate an image of a field with its ground truth.

    Parameters
    ----------
    atoms : ase.Atoms
        A field box (``structures.field``); its size sets the image shape.
    pixel_size : float
        [Å].
    imaging : STEMImaging or HRTEMImaging
    dose_per_pixel : float, optional
        Electrons per pixel at unit clean intensity (the vacuum of HRTEM, the mean of HAADF)
        [e-/px], for Poisson shot noise alone; used only when ``distortions`` is None.
    distortions : DistortionChain, optional
        A distortion chain (``distortions.realistic_stem(rng)`` and friends), applied to the clean
        image; it carries its own dose.
    rng : numpy.random.Generator, optional
    column_tolerance : float
        Atoms closer than this in projection form one column [Å].

    Returns
    -------
    SimulatedImage
    """
    rng = np.random.default_rng() if rng is None else rng
    clean = clean_image(atoms, pixel_size, imaging)
    metadata: dict = {"imaging": imaging.describe(), "pixel_size_A": pixel_size}
    if distortions is not None:
        image, record = distortions.apply(clean, rng)
        metadata["distortions"] = distortions.describe()
        metadata["distortion_record"] = record
    elif dose_per_pixel is not None:
        dose_per_pixel = check_parameter("dose_per_pixel", dose_per_pixel)
        image, _ = ShotNoise().apply(np.clip(clean, 0, None) * dose_per_pixel, rng)
        metadata["dose_e_per_px"] = dose_per_pixel
    else:
        image = clean.copy()
    table = columns(atoms, column_tolerance, pixel_size=pixel_size)
    return SimulatedImage(np.asarray(image, np.float32), clean, table, pixel_size, metadata)
