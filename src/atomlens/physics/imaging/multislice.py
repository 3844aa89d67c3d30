"""Multislice propagation shared by Ronchigrams and HRTEM: the Fresnel propagator and the loop.

The wave is multiplied by each slice's transmission function and propagated to the next slice by
the paraxial Fresnel propagator P(k) = exp(-i pi lambda dz |k|^2) (Kirkland, *Advanced Computing
in Electron Microscopy*, 2nd ed., Ch. 6). Neither user band-limits the propagator; both work in
complex64 with the propagator's phase computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["fresnel_propagator", "multislice"]


def fresnel_propagator(
    ky: torch.Tensor, kx: torch.Tensor, wavelength: float, distance: float
) -> torch.Tensor:
    """Fresnel propagator exp(-i pi lambda dz |k|^2) over one slice, complex64.

    Parameters
    ----------
    ky, kx : Tensor
        Spatial frequencies [1/Å] in FFT order, broadcastable to the grid (as
        :func:`~atomlens.physics.optics.transfer.spatial_frequencies` returns them).
    wavelength : float
        Electron wavelength [Å].
    distance : float
        Propagation distance dz [Å].

    Returns
    -------
    Tensor of the broadcast shape of ky and kx, complex64
        The propagator, of modulus 1.
    """
    phase = -math.pi * wavelength * distance * (ky**2 + kx**2)
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def multislice(
    wave: torch.Tensor,
    transmissions: Iterable[torch.Tensor],
    propagator: torch.Tensor | None,
    *,
    propagate_last: bool = False,
) -> torch.Tensor:
    """Transmit a wave through slices, propagating between them.

    Parameters
    ----------
    wave : Tensor of shape (..., H, W), complex
        Incident wave in real space.
    transmissions : iterable of Tensor
        Transmission functions exp(i sigma V_z) of the slices, in beam order, each broadcastable
        to ``wave``; consumed lazily (a generator of slices is fine).
    propagator : Tensor or None
        Fresnel propagator over one slice (:func:`fresnel_propagator`); may be None only when there
        is nothing to propagate (one slice and not ``propagate_last``).
    propagate_last : bool
        Also propagate after the last slice, so that the wave sits at the exit face of the last
        slice (HRTEM, as abTEM); otherwise it sits at the last slice's plane (Ronchigrams).

    Returns
    -------
    Tensor
        The exit wave.
    """
    count = 0
    for transmission in transmissions:
        if count > 0:
            wave = _propagate(wave, propagator)
        wave = wave * transmission
        count += 1
    if propagate_last and count > 0:
        wave = _propagate(wave, propagator)
    return wave


def _propagate(wave: torch.Tensor, propagator: torch.Tensor | None) -> torch.Tensor:
    if propagator is None:
        raise ValueError("multislice needs a propagator to propagate between slices.")
    return torch.fft.ifft2(torch.fft.fft2(wave) * propagator)
