"""Reciprocal-space grids, the aberration function chi and the condenser aperture.

Everything here works on torch tensors so that a batch of probes is evaluated in one call, on the
CPU or a GPU. Arrays are indexed (row, column) = (y, x); frequencies are in FFT order (zero first)
unless a function says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from atomlens.physics.optics.aberrations import ORDERS, Aberrations

#: The basis of chi: one entry per Cartesian component, (n, m, "a" | "b"), ordered as ORDERS.
BASIS: tuple[tuple[int, int, str], ...] = tuple(
    (n, m, part) for n, m in ORDERS for part in (("a",) if m == 0 else ("a", "b"))
)


def spatial_frequencies(
    shape: tuple[int, int], sampling: float | tuple[float, float], *, device: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial frequencies of a real-space grid, in FFT order.

    Parameters
    ----------
    shape : (int, int)
        Grid points (rows, columns).
    sampling : float or (float, float)
        Real-space pixel size (y, x) [Å].

    Returns
    -------
    ky, kx : Tensor of shape (rows, 1) and (1, columns)
        Frequencies [1/Å], float64.
    """
    sy, sx = (sampling, sampling) if np.isscalar(sampling) else sampling
    if min(shape) < 1 or sy <= 0 or sx <= 0:
        raise ValueError(f"Invalid grid: shape {shape}, sampling {sampling} Å.")
    ky = torch.fft.fftfreq(shape[0], d=sy, dtype=torch.float64, device=device)[:, None]
    kx = torch.fft.fftfreq(shape[1], d=sx, dtype=torch.float64, device=device)[None, :]
    return ky, kx


def polar_angles(
    ky: torch.Tensor, kx: torch.Tensor, wavelength: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scattering angle alpha = lambda |k| [rad] and azimuth phi = atan2(ky, kx) [rad]."""
    alpha = wavelength * torch.sqrt(ky**2 + kx**2)
    phi = torch.atan2(ky.expand_as(alpha), kx.expand_as(alpha))
    return alpha, phi


def chi_basis(
    alpha: torch.Tensor,
    phi: torch.Tensor,
    wavelength: float,
    terms: Sequence[int] | None = None,
) -> torch.Tensor:
    """The functions whose weighted sum is chi, one per entry of :data:`BASIS`.

    chi = sum_j c_j basis_j with c_j the Cartesian coefficients [Å] (see
    :func:`cartesian_coefficients`), so a batch of chi is one matrix product.

    Parameters
    ----------
    alpha, phi : Tensor of shape (H, W)
        Scattering angle and azimuth [rad].
    wavelength : float
        [Å].
    terms : sequence of int, optional
        Indices into :data:`BASIS` to evaluate (default all).

    Returns
    -------
    Tensor of shape (len(terms), H, W)
        [rad / Å].
    """
    k = 2 * math.pi / wavelength
    planes = []
    for n, m, part in BASIS if terms is None else [BASIS[j] for j in terms]:
        radial = k * alpha ** (n + 1) / (n + 1)
        angular = torch.cos(m * phi) if part == "a" else torch.sin(m * phi)
        planes.append(radial * angular)
    if not planes:
        return alpha.new_zeros((0, *alpha.shape))
    return torch.stack(planes)


def cartesian_coefficients(aberrations: Sequence[Aberrations] | Aberrations) -> torch.Tensor:
    """Cartesian coefficients ordered as :data:`BASIS`, shape (B, len(BASIS)) [Å], float64."""
    if isinstance(aberrations, Aberrations):
        aberrations = [aberrations]
    rows = []
    for item in aberrations:
        cart = item.to_cartesian()
        rows.append([cart[f"C{n}{m}" + ("" if m == 0 else part)] for n, m, part in BASIS])
    return torch.tensor(rows, dtype=torch.float64)


def used_terms(coefficients: torch.Tensor) -> list[int]:
    """Indices of the basis terms with a non-zero coefficient anywhere in a (B, J) batch."""
    return [j for j in range(coefficients.shape[1]) if torch.any(coefficients[:, j] != 0)]


def aberration_function(
    alpha: torch.Tensor,
    phi: torch.Tensor,
    aberrations: Aberrations | Sequence[Aberrations],
    wavelength: float,
) -> torch.Tensor:
    """The aberration function chi(alpha, phi).

    Parameters
    ----------
    alpha, phi : Tensor of shape (H, W)
        Scattering angle and azimuth [rad].
    aberrations : Aberrations or sequence of them
        Coefficients [Å, rad]; a sequence gives a batch.
    wavelength : float
        [Å].

    Returns
    -------
    Tensor of shape (H, W), or (B, H, W) for a sequence
        chi [rad], float64.
    """
    single = isinstance(aberrations, Aberrations)
    coefficients = cartesian_coefficients(aberrations).to(alpha.device)
    terms = used_terms(coefficients)
    basis = chi_basis(alpha, phi, wavelength, terms)
    chi = torch.einsum("bj,jhw->bhw", coefficients[:, terms], basis)
    return chi[0] if single else chi


def aperture(
    alpha: torch.Tensor,
    semiangle: float,
    *,
    edge_width: float = 0.0,
) -> torch.Tensor:
    """A round condenser aperture with a linear soft edge.

    Parameters
    ----------
    alpha : Tensor
        Scattering angle from the aperture centre [rad].
    semiangle : float
        Convergence semi-angle [mrad].
    edge_width : float
        Width of the linear roll-off across the edge [mrad]; 0 gives a hard edge. One angular
        pixel matches abTEM's ``soft=True`` aperture.

    Returns
    -------
    Tensor
        Transmission in [0, 1], same shape as alpha.
    """
    if not semiangle > 0:
        raise ValueError(f"Convergence semi-angle must be positive, got {semiangle} mrad.")
    cutoff = semiangle * 1e-3
    if edge_width <= 0:
        return (alpha <= cutoff).to(alpha.dtype)
    return torch.clamp((cutoff - alpha) / (edge_width * 1e-3) + 0.5, 0.0, 1.0)
