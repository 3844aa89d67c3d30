"""A pixel detector (camera) model: dose, shot noise, PSF, gain, dark offset, read-out noise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Detector:
    """Turns a normalised intensity into detector counts.

    The order follows the physics of a scintillator camera: electrons arrive (Poisson), each
    electron's light spreads over the PSF, the signal is amplified by the gain, then a dark offset
    and Gaussian read-out noise are added. With ``dose=None`` no shot noise is applied and the
    signal is the expected number of electrons.

    Parameters
    ----------
    dose : float or None
        Expected number of electrons reaching the detector per image [e-].
    gain : float
        Counts per electron [counts / e-].
    psf_sigma : float
        Standard deviation of the Gaussian camera point-spread function [px].
    dark_offset : float
        Mean dark signal added to every pixel [counts].
    readout_noise : float
        Standard deviation of Gaussian read-out noise [counts].

    Examples
    --------
    >>> flat = np.full((4, 4), 1 / 16)
    >>> Detector(dose=1600).apply(flat, np.random.default_rng(0)).shape
    (4, 4)
    """

    dose: float | None = 1e6
    gain: float = 1.0
    psf_sigma: float = 0.0
    dark_offset: float = 0.0
    readout_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.dose is not None and not (math.isfinite(self.dose) and self.dose > 0):
            raise ValueError(f"Dose must be a positive number of electrons, got {self.dose}.")
        for name in ("gain", "psf_sigma", "readout_noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Detector.{name} must be >= 0, got {value}.")
        if self.gain == 0:
            raise ValueError("Detector gain must be positive [counts / e-].")

    def apply(self, intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Detector counts for one image.

        Parameters
        ----------
        intensity : ndarray of shape (H, W)
            Normalised intensity (sums to at most 1; the rest is scattered off the detector).
        rng : numpy.random.Generator

        Returns
        -------
        ndarray of shape (H, W), float32
            [counts].
        """
        intensity = np.asarray(intensity, dtype=np.float64)
        if intensity.ndim != 2:
            raise ValueError(f"Detector.apply takes one (H, W) image, got shape {intensity.shape}.")
        if np.any(intensity < 0) or not np.isfinite(intensity).all():
            raise ValueError("Intensity must be finite and non-negative.")
        if self.dose is None:
            electrons = intensity
        else:
            electrons = rng.poisson(intensity * self.dose).astype(np.float64)
        if self.psf_sigma > 0:
            electrons = ndimage.gaussian_filter(electrons, self.psf_sigma, mode="reflect")
        counts = self.gain * electrons + self.dark_offset
        if self.readout_noise > 0:
            counts = counts + rng.normal(0.0, self.readout_noise, counts.shape)
        return counts.astype(np.float32)

    def describe(self) -> dict:
        """Parameters with units, for sidecar files."""
        return {f"{key}{_UNITS[key]}": value for key, value in asdict(self).items()}


_UNITS = {
    "dose": "_electrons",
    "gain": "_counts_per_electron",
    "psf_sigma": "_px",
    "dark_offset": "_counts",
    "readout_noise": "_counts",
}
