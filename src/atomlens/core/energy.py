"""Relativistic electron kinematics: wavelength and interaction parameter.

References
----------
E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed. (Springer, 2010), Eqs. 2.5
and 5.6.
"""

from __future__ import annotations

import math

from scipy import constants as _c

_ELECTRON_REST_ENERGY = _c.m_e * _c.c**2 / _c.e  # [eV], 510998.95 eV


def _validate_energy(energy: float) -> float:
    energy = float(energy)
    if not math.isfinite(energy) or energy <= 0:
        raise ValueError(
            f"Electron energy must be a positive number of eV, got {energy!r} eV "
            "(for example 200e3 for 200 kV)."
        )
    return energy


def wavelength(energy: float) -> float:
    """Relativistic de Broglie wavelength of an electron.

    Parameters
    ----------
    energy : float
        Kinetic energy (acceleration voltage times e) [eV].

    Returns
    -------
    float
        Wavelength [Å].

    Notes
    -----
    lambda = h / sqrt(2 m0 e V (1 + e V / (2 m0 c^2))).

    Examples
    --------
    >>> round(wavelength(200e3) * 100, 4)  # [pm]
    2.5079
    """
    energy = _validate_energy(energy)
    momentum = math.sqrt(2 * _c.m_e * _c.e * energy * (1 + energy / (2 * _ELECTRON_REST_ENERGY)))
    return _c.h / momentum * 1e10


def relativistic_mass(energy: float) -> float:
    """Relativistic electron mass m = m0 (1 + e V / (m0 c^2)).

    Parameters
    ----------
    energy : float
        Kinetic energy [eV].

    Returns
    -------
    float
        Mass [kg].
    """
    energy = _validate_energy(energy)
    return _c.m_e * (1 + energy / _ELECTRON_REST_ENERGY)


def interaction_parameter(energy: float) -> float:
    """Interaction parameter sigma = 2 pi m e lambda / h^2 of the phase-object approximation.

    The phase shift of a transmitted electron is ``sigma * V_z``, with V_z the projected
    potential [V Å].

    Parameters
    ----------
    energy : float
        Kinetic energy [eV].

    Returns
    -------
    float
        sigma [rad / (V Å)].

    Examples
    --------
    >>> round(interaction_parameter(200e3) * 1e4, 2)  # 7.29e-4 rad / (V Å)
    7.29
    """
    lam = wavelength(energy) * 1e-10  # [m]
    sigma = 2 * math.pi * relativistic_mass(energy) * _c.e * lam / _c.h**2  # [rad / (V m)]
    return sigma * 1e-10
