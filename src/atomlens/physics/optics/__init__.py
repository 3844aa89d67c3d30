"""Electron optics: aberrations, the aberration function and the probe.

Modules
-------
aberrations
    ``Aberrations``: Krivanek-notation coefficients [Å, rad] with abTEM, Cartesian, CEOS and Nion
    conversions; ``random_aberrations``; the name tables ``ORDERS``, ``NAMES``,
    ``MAGNITUDE_NAMES``, ``ANGLE_NAMES``, ``ALIASES``, ``CEOS_NAMES``.
transfer
    ``spatial_frequencies`` [1/Å], ``polar_angles`` [rad], ``aberration_function`` chi [rad] on a
    grid (``chi_basis``, ``cartesian_coefficients``, ``used_terms``, ``BASIS``), the soft-edged
    ``aperture``.
probe
    ``Probe`` in real and reciprocal space, ``reciprocal_probes`` for a batch.
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.optics.aberrations import (
        ALIASES,
        ANGLE_NAMES,
        CEOS_NAMES,
        MAGNITUDE_NAMES,
        NAMES,
        ORDERS,
        Aberrations,
        random_aberrations,
    )
    from atomlens.physics.optics.probe import Probe, reciprocal_probes
    from atomlens.physics.optics.transfer import (
        BASIS,
        aberration_function,
        aperture,
        cartesian_coefficients,
        chi_basis,
        polar_angles,
        spatial_frequencies,
        used_terms,
    )

__all__ = [
    "ALIASES",
    "ANGLE_NAMES",
    "BASIS",
    "CEOS_NAMES",
    "MAGNITUDE_NAMES",
    "NAMES",
    "ORDERS",
    "Aberrations",
    "Probe",
    "aberration_function",
    "aperture",
    "cartesian_coefficients",
    "chi_basis",
    "polar_angles",
    "random_aberrations",
    "reciprocal_probes",
    "spatial_frequencies",
    "used_terms",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.optics.aberrations": (
            "ALIASES",
            "ANGLE_NAMES",
            "CEOS_NAMES",
            "MAGNITUDE_NAMES",
            "NAMES",
            "ORDERS",
            "Aberrations",
            "random_aberrations",
        ),
        "atomlens.physics.optics.probe": (
            "Probe",
            "reciprocal_probes",
        ),
        "atomlens.physics.optics.transfer": (
            "BASIS",
            "aberration_function",
            "aperture",
            "cartesian_coefficients",
            "chi_basis",
            "polar_angles",
            "spatial_frequencies",
            "used_terms",
        ),
    },
)
