"""Projected atomic potentials on periodic grids, from the scattering factors of
:mod:`atomlens.physics.potentials.scattering`.

The projected potential of many atoms is built in Fourier space: atoms are deposited on the grid
with cloud-in-cell weights, one map per element, and each map's transform is multiplied by the
element's scattering factor. This costs two FFTs per element whatever the number of atoms, which is
why it is written here rather than summing real-space atomic potentials as abTEM does: it is what
lets amorphous specimens of tens of thousands of atoms be made on the fly for training. The
cloud-in-cell window is divided out, so positions are sub-pixel accurate.

References
----------
I. Lobato and D. Van Dyck, Acta Cryst. A70, 636-649 (2014): the scattering-factor parametrisation.
E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed., Eq. 5.9: projected potential
from the scattering factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from atomlens.physics.optics.transfer import spatial_frequencies
from atomlens.physics.potentials.scattering import (
    POTENTIAL_PER_SCATTERING_FACTOR,
    atomic_number,
    scattering_factor,
)


def deposit_cic(
    positions: np.ndarray, shape: tuple[int, int], sampling: tuple[float, float]
) -> np.ndarray:
    """Cloud-in-cell atom counts on a periodic grid (pixel centres at integer coordinates).

    Parameters
    ----------
    positions : ndarray of shape (N, 2)
        Atom positions (y, x) [Å] from the centre of pixel (0, 0); outside the grid they wrap.
    shape : (int, int)
        Grid points (rows, columns).
    sampling : (float, float)
        Pixel size (dy, dx) [Å].

    Returns
    -------
    ndarray of shape ``shape``, float64
        Atoms per pixel (each atom's unit weight shared bilinearly among its four nearest pixels).
    """
    grid = np.zeros(shape[0] * shape[1])
    if len(positions) == 0:
        return grid.reshape(shape)
    py = positions[:, 0] / sampling[0]
    px = positions[:, 1] / sampling[1]
    y0, x0 = np.floor(py), np.floor(px)
    fy, fx = py - y0, px - x0
    y0 = y0.astype(np.int64)
    x0 = x0.astype(np.int64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        rows = (y0 + dy) % shape[0]
        for dx, wx in ((0, 1 - fx), (1, fx)):
            cols = (x0 + dx) % shape[1]
            grid += np.bincount(rows * shape[1] + cols, weights=wy * wx, minlength=grid.size)
    return grid.reshape(shape)


@lru_cache(maxsize=32)
def _form_factor(
    z: int, shape: tuple[int, int], sy: float, sx: float, thermal_sigma: float, single: bool
) -> torch.Tensor:
    """f_e(k) times the potential constant, / pixel area, / cloud-in-cell window, x thermal factor.

    Cached: a training stream renders many images on the same few grids.
    """
    atomic_number(z)
    ky, kx = spatial_frequencies(shape, (sy, sx))
    k2 = ky**2 + kx**2
    # Undo the cloud-in-cell window (a triangle per axis: sinc^2 in Fourier space).
    window = (torch.sinc(ky * sy) * torch.sinc(kx * sx)) ** 2
    kernel = POTENTIAL_PER_SCATTERING_FACTOR / (sy * sx) / window
    if thermal_sigma > 0:
        kernel = kernel * torch.exp(-2 * math.pi**2 * thermal_sigma**2 * k2)
    form = scattering_factor(z, torch.sqrt(k2)) * kernel
    return form.to(torch.float32 if single else torch.float64)


def projected_potentials(
    specimens: Sequence[tuple[np.ndarray, np.ndarray]],
    shape: tuple[int, int],
    sampling: float | tuple[float, float],
    *,
    thermal_sigma: float = 0.0,
    device: str | None = None,
    single: bool = False,
) -> torch.Tensor:
    """Projected potentials of a batch of atom sets on a periodic grid.

    Parameters
    ----------
    specimens : sequence of (positions, numbers)
        For each item, positions of shape (N, 2) as (y, x) [Å] from the centre of pixel (0, 0),
        and atomic numbers of shape (N,). Positions outside the grid wrap around.
    shape : (int, int)
        Grid points (rows, columns).
    sampling : float or (float, float)
        Pixel size [Å].
    thermal_sigma : float
        Standard deviation of Gaussian positional smearing per axis (thermal vibration) [Å].
    single : bool
        Compute in single precision (float32; about twice as fast, relative error ~1e-6).

    Returns
    -------
    Tensor of shape (B, H, W), float64 (float32 when ``single``)
        Projected potential V_z [V Å].
    """
    sy, sx = (sampling, sampling) if np.isscalar(sampling) else sampling
    species = sorted({int(z) for _, numbers in specimens for z in np.unique(numbers)})
    real = torch.float32 if single else torch.float64
    result = torch.zeros((len(specimens), *shape), dtype=real.to_complex(), device=device)
    for z in species:
        maps = np.stack(
            [
                deposit_cic(np.asarray(pos, float)[np.asarray(num) == z], shape, (sy, sx))
                for pos, num in specimens
            ]
        )
        form = _form_factor(z, tuple(shape), float(sy), float(sx), float(thermal_sigma), single)
        result += torch.fft.fft2(torch.from_numpy(maps).to(real)).to(device) * form.to(device)
    return torch.fft.ifft2(result).real


def projected_potential(
    positions: np.ndarray,
    numbers: np.ndarray | Sequence[int] | str,
    shape: tuple[int, int],
    sampling: float | tuple[float, float],
    *,
    thermal_sigma: float = 0.0,
) -> np.ndarray:
    """Projected potential of one set of atoms on a periodic grid [V Å], float64 (H, W).

    ``numbers`` may be one chemical symbol for all atoms. See :func:`projected_potentials`.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    if positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (N, 2) as (y, x) [Å], got {positions.shape}.")
    if isinstance(numbers, str):
        numbers = np.full(len(positions), atomic_number(numbers))
    numbers = np.asarray(numbers, dtype=int)
    if numbers.shape != (len(positions),):
        raise ValueError(f"numbers must have shape ({len(positions)},), got {numbers.shape}.")
    return projected_potentials(
        [(positions, numbers)], shape, sampling, thermal_sigma=thermal_sigma
    )[0].numpy()


__all__ = [
    "projected_potential",
    "projected_potentials",
]
