"""Electron scattering factors of neutral atoms (Lobato & Van Dyck 2014).

The parametrisation's coefficients are read from ``data/lobato2014.json`` next to this module.

References
----------
I. Lobato and D. Van Dyck, Acta Cryst. A70, 636-649 (2014): the scattering-factor parametrisation.
E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed., Eq. 5.9: projected potential
from the scattering factor.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from scipy import constants as _c

#: h^2 / (2 pi m0 e) [V Å^2]: the projected potential's transform is this times f_e [Å].
POTENTIAL_PER_SCATTERING_FACTOR = _c.h**2 / (2 * math.pi * _c.m_e * _c.e) * 1e20


@cache
def _lobato_table() -> dict[int, np.ndarray]:
    text = (
        resources.files("atomlens.physics.potentials").joinpath("data/lobato2014.json").read_text()
    )
    elements = json.loads(text)["elements"]
    return {entry["Z"]: np.array([entry["a"], entry["b"]]) for entry in elements.values()}


def atomic_number(element: str | int) -> int:
    """Atomic number of an element given by symbol or number, validated against the table."""
    if isinstance(element, str):
        if element not in atomic_numbers:
            raise ValueError(f"Unknown chemical symbol {element!r}.")
        element = atomic_numbers[element]
    element = int(element)
    if element not in _lobato_table():
        raise ValueError(
            f"No scattering factor for Z = {element}; the Lobato table covers Z = 1 to 103."
        )
    return element


def scattering_factor(
    element: str | int, k: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Electron scattering factor f_e(k) of a neutral atom (Lobato & Van Dyck 2014).

    Parameters
    ----------
    element : str or int
        Chemical symbol or atomic number.
    k : array
        Spatial frequency |k| [1/Å] (not the s = k / 2 of X-ray tables).

    Returns
    -------
    array like k
        f_e [Å].

    Examples
    --------
    >>> round(float(scattering_factor("C", np.array(0.0))), 3)  # f_e(0) of carbon [Å]
    2.51
    """
    a, b = _lobato_table()[atomic_number(element)]
    k2 = k**2
    return sum(a[i] * (2 + b[i] * k2) / (1 + b[i] * k2) ** 2 for i in range(5))


__all__ = [
    "POTENTIAL_PER_SCATTERING_FACTOR",
    "atomic_number",
    "chemical_symbols",
    "scattering_factor",
]
