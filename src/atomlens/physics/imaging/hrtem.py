"""HRTEM image formation: multislice (or phase-object) exit wave, objective lens, coherence.

The exit wave is built slice by slice from Lobato projected potentials (``potentials``) with
Fresnel propagation between slices; one slice thicker than the specimen is the phase-object
approximation. The image is

    I = |IFFT[FFT[psi_exit] * A(k) * exp(-i chi(k)) * E_t(k) * E_s(k)]|^2

with the objective aperture A, the focal-spread (temporal coherence) envelope
E_t = exp(-(pi lambda Delta k^2)^2 / 2) (Delta the focal spread standard deviation) and the
beam-divergence (spatial coherence) envelope E_s = exp(-theta^2 |grad_k chi|^2 / (2 lambda^2))
for a Gaussian distribution of illumination directions with standard deviation theta per axis
(Kirkland, Advanced Computing in Electron Microscopy, Sec. 3.3; quasi-coherent approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from atomlens.core.energy import interaction_parameter
from atomlens.core.energy import wavelength as electron_wavelength
from atomlens.core.validation import check_optional, check_parameter
from atomlens.physics.imaging.multislice import fresnel_propagator, multislice
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.physics.optics.transfer import aberration_function, polar_angles, spatial_frequencies
from atomlens.physics.potentials.projection import projected_potentials


@dataclass(frozen=True)
class HRTEMImaging:
    """Parameters of HRTEM image formation.

    Parameters
    ----------
    energy : float
        [eV].
    aberrations : Aberrations
        Objective-lens aberrations [Å, rad]; the default is a Cs-corrected lens at a slight
        overfocus, which shows atoms bright-ish on a grey background.
    objective_aperture : float or None
        Objective aperture semi-angle [mrad]; None for no aperture.
    focal_spread : float
        Standard deviation of the defocus spread from chromatic aberration [Å].
    divergence : float
        Standard deviation of the illumination directions per axis [mrad].
    slice_thickness : float
        Multislice step [Å]; a value larger than the specimen gives the phase-object approximation.
    thermal_sigma : float
        Gaussian smearing of each atom per axis [Å].
    """

    energy: float = 300e3
    aberrations: Aberrations = field(default_factory=lambda: Aberrations(C10=80.0, C30=-1.5e5))
    objective_aperture: float | None = 40.0
    focal_spread: float = 30.0
    divergence: float = 0.2
    slice_thickness: float = 2.0
    thermal_sigma: float = 0.08

    def __post_init__(self) -> None:
        check_parameter("energy", self.energy)
        if not isinstance(self.aberrations, Aberrations):
            object.__setattr__(self, "aberrations", Aberrations(self.aberrations))
        check_optional("objective_aperture", self.objective_aperture)
        for name in ("focal_spread", "divergence", "thermal_sigma", "slice_thickness"):
            check_parameter(name, getattr(self, name))

    def describe(self) -> dict:
        """Parameters with units, for sidecar files."""
        return {
            "modality": "HRTEM",
            "energy_eV": self.energy,
            "aberrations_A_rad": self.aberrations.to_abtem(),
            "objective_aperture_mrad": self.objective_aperture,
            "focal_spread_A": self.focal_spread,
            "divergence_mrad": self.divergence,
            "slice_thickness_A": self.slice_thickness,
            "thermal_sigma_A": self.thermal_sigma,
        }


def exit_wave(
    positions: np.ndarray,
    numbers: np.ndarray,
    shape: tuple[int, int],
    pixel_size: float,
    imaging: HRTEMImaging,
) -> torch.Tensor:
    """The exit wave of a plane wave through the atoms, (rows, cols) complex64.

    Slice i holds the atoms with i dz <= z < (i + 1) dz; the wave is transmitted through its
    projected potential and then propagated by dz, so the exit wave sits at the exit face of the
    last slice (abTEM's convention; defocus is measured from there).

    Parameters
    ----------
    positions : ndarray of shape (N, 3)
        (y, x, z) [Å]; z along the beam.
    numbers : ndarray of shape (N,)
        Atomic numbers.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    numbers = np.asarray(numbers, dtype=int).reshape(-1)
    wavelength = electron_wavelength(imaging.energy)
    sigma = interaction_parameter(imaging.energy)
    wave = torch.ones(shape, dtype=torch.complex64)
    if not len(positions):
        return wave
    # Slice i holds the atoms with i * dz <= z < (i + 1) * dz (z from the field's entrance face).
    z = np.clip(positions[:, 2], 0.0, None)
    count = max(1, math.floor(z.max() / imaging.slice_thickness) + 1)
    layer = np.minimum((z / imaging.slice_thickness).astype(int), count - 1)
    slices = [(positions[layer == i, :2], numbers[layer == i]) for i in range(count)]
    # A crystal repeats along z: compute each distinct slice's transmission once.
    keys = [_slice_key(*item) for item in slices]
    unique = list(dict.fromkeys(keys))
    potentials = projected_potentials(
        [slices[keys.index(key)] for key in unique],
        shape,
        pixel_size,
        thermal_sigma=imaging.thermal_sigma,
        single=True,
    )
    transmissions = dict(
        zip(unique, torch.polar(torch.ones_like(potentials), sigma * potentials), strict=True)
    )
    ky, kx = spatial_frequencies(shape, pixel_size)
    propagator = fresnel_propagator(ky, kx, wavelength, imaging.slice_thickness)
    # transmit, then propagate through the slice (as abTEM)
    return multislice(wave, (transmissions[key] for key in keys), propagator, propagate_last=True)


def _slice_key(positions: np.ndarray, numbers: np.ndarray) -> bytes:
    order = np.lexsort((positions[:, 1], positions[:, 0], numbers))
    return numbers[order].tobytes() + np.round(positions[order], 4).tobytes()


@lru_cache(maxsize=8)
def objective_transfer(
    imaging: HRTEMImaging, shape: tuple[int, int], pixel_size: float
) -> torch.Tensor:
    """Aperture x exp(-i chi) x coherence envelopes on the FFT grid, (rows, cols) complex128.

    Cached (read-only result): the frames of a series and repeated images share one lens.
    """
    wavelength = electron_wavelength(imaging.energy)
    ky, kx = spatial_frequencies(shape, pixel_size)
    alpha, phi = polar_angles(ky, kx, wavelength)
    chi = aberration_function(alpha, phi, imaging.aberrations, wavelength)
    k2 = ky**2 + kx**2
    temporal = torch.exp(-0.5 * (math.pi * wavelength * imaging.focal_spread * k2) ** 2)
    transfer = torch.polar(temporal, -chi)
    if imaging.divergence > 0:
        gy, gx = _grid_gradient(chi, shape, pixel_size)  # [rad Å]
        theta = imaging.divergence * 1e-3
        transfer = transfer * torch.exp(-(theta**2) * (gy**2 + gx**2) / (2 * wavelength**2))
    if imaging.objective_aperture is not None:
        transfer = transfer * (alpha <= imaging.objective_aperture * 1e-3)
    return transfer


def _grid_gradient(
    chi: torch.Tensor, shape: tuple[int, int], pixel_size: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """d chi / d k (y and x) by central differences on the FFT grid [rad Å]."""
    spacing = [1.0 / (n * pixel_size) for n in shape]  # [1/Å]
    centred = torch.fft.fftshift(chi)
    gy, gx = torch.gradient(centred, spacing=spacing)
    return torch.fft.ifftshift(gy), torch.fft.ifftshift(gx)


def hrtem_image(
    positions: np.ndarray,
    numbers: np.ndarray,
    shape: tuple[int, int],
    pixel_size: float,
    imaging: HRTEMImaging,
) -> np.ndarray:
    """A noise-free HRTEM image, intensity relative to the incident beam (vacuum = 1).

    Parameters
    ----------
    positions : ndarray of shape (N, 3)
        (y, x, z) [Å]; pixel (i, j) is centred at (i, j) * pixel_size; z along the beam.
    numbers : ndarray of shape (N,)
        Atomic numbers.
    shape : (int, int)
        [px].
    pixel_size : float
        [Å].

    Returns
    -------
    ndarray of shape (rows, cols), float32
    """
    if pixel_size <= 0:
        raise ValueError(f"Pixel size must be positive, got {pixel_size} Å.")
    wave = exit_wave(positions, numbers, shape, pixel_size, imaging)
    transfer = objective_transfer(imaging, tuple(shape), float(pixel_size))
    image = torch.fft.ifft2(torch.fft.fft2(wave) * transfer)
    return (image.abs() ** 2).numpy().astype(np.float32)
