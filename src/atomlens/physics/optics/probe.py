"""The convergent electron probe in reciprocal and real space."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from atomlens.core.energy import wavelength as electron_wavelength
from atomlens.core.validation import check_optional, check_pair, check_parameter
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.physics.optics.transfer import (
    aperture,
    cartesian_coefficients,
    chi_basis,
    polar_angles,
    spatial_frequencies,
    used_terms,
)


def reciprocal_probes(
    ky: torch.Tensor,
    kx: torch.Tensor,
    *,
    wavelength: float,
    semiangle: float,
    coefficients: torch.Tensor,
    edge_width: float = 0.0,
    tilts: torch.Tensor | None = None,
    basis: torch.Tensor | None = None,
) -> torch.Tensor:
    """A batch of probe wave functions A(k - k_tilt) exp(-i chi(k)) in reciprocal space.

    Parameters
    ----------
    ky, kx : Tensor of shape (H, 1) and (1, W)
        Spatial frequencies [1/Å], FFT order or any other order.
    wavelength : float
        [Å].
    semiangle : float
        Convergence semi-angle [mrad].
    coefficients : Tensor of shape (B, len(BASIS))
        Cartesian aberration coefficients [Å] (see ``transfer.cartesian_coefficients``).
    edge_width : float
        Soft aperture edge [mrad].
    tilts : Tensor of shape (B, 2), optional
        Beam tilt (y, x) [mrad]: the aperture centre moves, chi stays centred on the optical axis.
    basis : Tensor, optional
        A precomputed ``chi_basis`` for this grid whose planes match the columns of
        ``coefficients`` (saves time in loops); by default only the non-zero terms are evaluated.

    Returns
    -------
    Tensor of shape (B, H, W), complex128
        Unnormalised reciprocal-space probes.
    """
    alpha, phi = polar_angles(ky, kx, wavelength)
    if basis is None:
        terms = used_terms(coefficients)
        coefficients = coefficients[:, terms]
        basis = chi_basis(alpha, phi, wavelength, terms)
    chi = torch.einsum("bj,jhw->bhw", coefficients.to(basis), basis)
    if tilts is None:
        apertures = aperture(alpha, semiangle, edge_width=edge_width)[None]
    else:
        tilts = tilts.to(alpha) * 1e-3
        dy = wavelength * ky[None] - tilts[:, 0, None, None]
        dx = wavelength * kx[None] - tilts[:, 1, None, None]
        apertures = aperture(torch.sqrt(dy**2 + dx**2), semiangle, edge_width=edge_width)
    return apertures * torch.polar(torch.ones_like(chi), -chi)


def _normalise(waves: torch.Tensor) -> torch.Tensor:
    norm = torch.sqrt((waves.abs() ** 2).sum(dim=(-2, -1), keepdim=True))
    return waves / torch.where(norm > 0, norm, torch.ones_like(norm))


@dataclass(frozen=True)
class Probe:
    """A convergent electron probe: condenser aperture, aberrations, source size, tilt.

    Parameters
    ----------
    energy : float
        Beam energy [eV].
    semiangle : float
        Convergence semi-angle [mrad].
    aberrations : Aberrations
        Probe aberrations [Å, rad].
    edge_width : float or None
        Linear roll-off of the aperture edge [mrad]; None gives one angular pixel of the grid the
        probe is built on (as abTEM's soft aperture), 0 a hard edge.
    source_size : float
        Standard deviation of the Gaussian image of the source at the specimen [Å]; it blurs the
        probe intensity (partial spatial coherence).
    tilt : (float, float)
        Beam tilt (y, x) [mrad].

    Examples
    --------
    >>> probe = Probe(energy=200e3, semiangle=25.0)
    >>> intensity = probe.intensity((64, 64), 0.1)
    >>> round(float(intensity.sum()), 6)
    1.0
    >>> [int(i) for i in np.unravel_index(intensity.argmax(), intensity.shape)]
    [32, 32]
    """

    energy: float
    semiangle: float
    aberrations: Aberrations = field(default_factory=Aberrations)
    edge_width: float | None = None
    source_size: float = 0.0
    tilt: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        check_parameter("energy", self.energy)
        check_parameter("semiangle", self.semiangle)
        check_parameter("source_size", self.source_size)
        check_optional("edge_width", self.edge_width)
        check_pair("tilt", self.tilt)
        if not isinstance(self.aberrations, Aberrations):
            object.__setattr__(self, "aberrations", Aberrations(self.aberrations))

    @property
    def wavelength(self) -> float:
        """Electron wavelength [Å]."""
        return electron_wavelength(self.energy)

    def _edge(self, shape: tuple[int, int], sampling: float | tuple[float, float]) -> float:
        if self.edge_width is not None:
            return self.edge_width
        sy, sx = (sampling, sampling) if np.isscalar(sampling) else sampling
        return 1e3 * self.wavelength / max(shape[0] * sy, shape[1] * sx)

    def reciprocal(
        self,
        shape: tuple[int, int],
        sampling: float | tuple[float, float],
        *,
        position: tuple[float, float] | None = None,
        device: str | None = None,
    ) -> torch.Tensor:
        """The probe in reciprocal space, FFT order, normalised so that sum |psi(k)|^2 = 1.

        With unitary FFTs (``norm="ortho"``) the real-space probe then also sums to 1.

        Parameters
        ----------
        shape : (int, int)
            Grid points (rows, columns).
        sampling : float or (float, float)
            Real-space pixel size [Å].
        position : (float, float), optional
            Probe position (y, x) [Å] from the centre of pixel (0, 0); default the centre pixel
            (rows // 2, columns // 2).

        Returns
        -------
        Tensor of shape (H, W), complex128
        """
        ky, kx = spatial_frequencies(shape, sampling, device=device)
        sy, sx = (sampling, sampling) if np.isscalar(sampling) else sampling
        if position is None:
            position = (shape[0] // 2 * sy, shape[1] // 2 * sx)
        wave = reciprocal_probes(
            ky,
            kx,
            wavelength=self.wavelength,
            semiangle=self.semiangle,
            coefficients=cartesian_coefficients(self.aberrations),
            edge_width=self._edge(shape, sampling),
            tilts=torch.tensor([self.tilt], dtype=torch.float64),
        )[0]
        ramp = torch.exp(-2j * math.pi * (ky * position[0] + kx * position[1]))
        return _normalise(wave * ramp)

    def build(
        self,
        shape: tuple[int, int],
        sampling: float | tuple[float, float],
        *,
        position: tuple[float, float] | None = None,
        device: str | None = None,
    ) -> torch.Tensor:
        """The probe wave function psi(r) in real space, sum |psi|^2 = 1 (complex128, (H, W))."""
        wave = self.reciprocal(shape, sampling, position=position, device=device)
        return torch.fft.ifft2(wave, norm="ortho")

    def intensity(
        self,
        shape: tuple[int, int],
        sampling: float | tuple[float, float],
        *,
        position: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """Probe intensity |psi(r)|^2 blurred by the source size; sums to 1 (float64, (H, W))."""
        intensity = self.build(shape, sampling, position=position).abs() ** 2
        if self.source_size > 0:
            ky, kx = spatial_frequencies(shape, sampling)
            envelope = torch.exp(-2 * math.pi**2 * self.source_size**2 * (ky**2 + kx**2))
            intensity = torch.fft.ifft2(torch.fft.fft2(intensity) * envelope).real
        return intensity.numpy()
