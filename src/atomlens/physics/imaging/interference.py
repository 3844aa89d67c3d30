"""The "interference image" model of paper 000, for reproducing its aberration regressors.

The paper forms I = |F[T(w) E(w)]|^2 + N_CCD with the transfer function
T(w) = exp(i (chi_C1 + chi_A1)), chi_C1 = pi C1 |w|^2 / lambda, chi_A1 = pi Re(A1 w^2) / lambda
(w the complex scattering angle), an illumination amplitude E(w) whose centre wanders with a
random beam tilt, a beam divergence, and Poisson plus Gaussian dark-current noise. Here:

- E(w) is the condenser aperture (semi-angle ``semiangle``) shifted by a beam tilt drawn from a
  Gaussian of standard deviation ``tilt_std`` per image;
- the divergence is an incoherent average over ``divergence_samples`` further tilts drawn from a
  Gaussian of standard deviation ``divergence`` around that tilt;
- the phase is written in atomlens' convention exp(-i chi) with C10 = C1 and
  C12 exp(2i phi12) = A1, so chi_C1 and chi_A1 are the paper's terms. The paper's exp(+i chi)
  gives the point-reflected image, which carries the same information.

The image is the real-space intensity on a grid of pixel size lambda / (size * angular_sampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from atomlens.core.energy import wavelength as electron_wavelength
from atomlens.physics.detectors.base import Compose
from atomlens.physics.detectors.tem import ronchigram_camera
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.physics.optics.probe import reciprocal_probes
from atomlens.physics.optics.transfer import cartesian_coefficients, spatial_frequencies


@dataclass(frozen=True)
class InterferenceSetup:
    """Parameters of the paper-000 interference image.

    Parameters
    ----------
    energy : float
        [eV].
    size : int
        Image size [px] (the paper uses 512).
    angular_sampling : float
        Pupil-plane sampling [mrad / px]; the image pixel is lambda / (size * angular_sampling).
    semiangle : float
        Illumination aperture semi-angle [mrad].
    tilt_std : float
        Standard deviation of the random beam tilt per axis [mrad].
    divergence : float
        Standard deviation of the beam divergence per axis [mrad].
    divergence_samples : int
        Incoherent tilts averaged for the divergence.
    detector : Compose
        The camera chain (:func:`~atomlens.physics.detectors.ronchigram_camera`): dose per image
        (Poisson), dark offset and read-out noise [counts].
    """

    energy: float = 200e3
    size: int = 512
    angular_sampling: float = 0.05
    semiangle: float = 10.0
    tilt_std: float = 0.3
    divergence: float = 0.05
    divergence_samples: int = 4
    detector: Compose = field(
        default_factory=lambda: ronchigram_camera(2e6, dark_offset=10.0, readout_noise=3.0)
    )

    def __post_init__(self) -> None:
        electron_wavelength(self.energy)
        if self.size < 8 or self.angular_sampling <= 0 or self.semiangle <= 0:
            raise ValueError(
                "InterferenceSetup needs size >= 8 px, positive sampling and semi-angle."
            )
        if self.tilt_std < 0 or self.divergence < 0 or self.divergence_samples < 1:
            raise ValueError("tilt_std and divergence must be >= 0 mrad, divergence_samples >= 1.")

    @property
    def pixel_size(self) -> float:
        """Image pixel size [Å]."""
        return electron_wavelength(self.energy) / (self.size * self.angular_sampling * 1e-3)


def interference_images(
    setup: InterferenceSetup,
    C1: Sequence[float] | np.ndarray,
    A1: Sequence[complex] | np.ndarray | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Interference images for defocus values C1 [Å] and complex astigmatisms A1 [Å].

    Image i draws its tilt, divergence and noise from ``numpy.random.default_rng([seed, i])``.

    Returns
    -------
    ndarray of shape (B, size, size), float32
        Detector counts.
    """
    C1 = np.atleast_1d(np.asarray(C1, dtype=float))
    A1 = np.zeros(len(C1), complex) if A1 is None else np.atleast_1d(np.asarray(A1, complex))
    if A1.shape != C1.shape or not (np.isfinite(C1).all() and np.isfinite(A1).all()):
        raise ValueError(
            f"C1 and A1 must be finite and of equal length, got {C1.shape}, {A1.shape}."
        )
    aberrations = [
        Aberrations(C10=c1, C12=abs(a1), phi12=np.angle(a1) / 2)
        for c1, a1 in zip(C1, A1, strict=True)
    ]
    wavelength = electron_wavelength(setup.energy)
    shape = (setup.size, setup.size)
    ky, kx = spatial_frequencies(shape, setup.pixel_size)
    centre = setup.size // 2 * setup.pixel_size
    ramp = torch.exp(-2j * math.pi * (ky + kx) * centre)
    out = np.empty((len(C1), *shape), dtype=np.float32)
    for i, aberration in enumerate(aberrations):
        rng = np.random.default_rng([seed, i])
        tilt = rng.normal(0.0, setup.tilt_std, 2)
        tilts = tilt + rng.normal(0.0, setup.divergence, (setup.divergence_samples, 2))
        waves = reciprocal_probes(
            ky,
            kx,
            wavelength=wavelength,
            semiangle=setup.semiangle,
            coefficients=cartesian_coefficients([aberration] * setup.divergence_samples),
            edge_width=setup.angular_sampling,
            tilts=torch.from_numpy(tilts),
        )
        intensity = (torch.fft.ifft2(waves * ramp).abs() ** 2).mean(dim=0)
        intensity = (intensity / intensity.sum()).numpy()
        out[i], _ = setup.detector.apply(intensity, rng)
    return out


def interference_image(
    setup: InterferenceSetup, C1: float, A1: complex = 0j, *, seed: int = 0
) -> np.ndarray:
    """One interference image (size, size), float32 [counts]; see :func:`interference_images`."""
    return interference_images(setup, [C1], [A1], seed=seed)[0]
