"""Forward models with no learning: electron optics, specimens, Ronchigrams, detectors.

Public names
------------
wavelength, interaction_parameter
    Relativistic electron kinematics [eV -> Å, rad / (V Å)].
Aberrations
    Krivanek-notation coefficients [Å, rad] with abTEM, Cartesian, CEOS and Nion conversions.
aberration_function, aperture, spatial_frequencies, polar_angles
    chi on a grid, the condenser aperture.
Probe
    The convergent probe in real and reciprocal space.
scattering_factor, projected_potential, projected_potentials
    Lobato electron scattering factors and projected potentials [Å, V Å].
AmorphousSpecimen, PhaseGrating, CrystalSpecimen, PotentialSpecimen
    Specimens for Ronchigrams.
Detector
    Dose, shot noise, PSF, gain, dark offset and read-out noise.
RonchigramSetup, simulate_ronchigram, simulate_ronchigrams
    Batched, seeded Ronchigram simulation.
interference_image, interference_images
    The "interference image" model of paper 000 (C1 and A1 transfer, beam tilt, divergence).
"""

import importlib
from typing import Any

# Lazy loading (as scikit-image does): ``import atomlens.physics.energy`` stays cheap and does not
# import torch; the names below load their module on first use.
_WHERE = {
    "Aberrations": "aberrations",
    "AmorphousSpecimen": "specimens",
    "CrystalSpecimen": "specimens",
    "Detector": "detector",
    "InterferenceSetup": "interference",
    "PhaseGrating": "specimens",
    "PotentialSpecimen": "specimens",
    "Probe": "probe",
    "RonchigramSetup": "ronchigram",
    "Specimen": "specimens",
    "aberration_function": "transfer",
    "aperture": "transfer",
    "interaction_parameter": "energy",
    "interference_image": "interference",
    "interference_images": "interference",
    "polar_angles": "transfer",
    "projected_potential": "potentials",
    "projected_potentials": "potentials",
    "scattering_factor": "potentials",
    "simulate_ronchigram": "ronchigram",
    "simulate_ronchigrams": "ronchigram",
    "spatial_frequencies": "transfer",
    "wavelength": "energy",
}

__all__ = [
    "Aberrations",
    "AmorphousSpecimen",
    "CrystalSpecimen",
    "Detector",
    "InterferenceSetup",
    "PhaseGrating",
    "PotentialSpecimen",
    "Probe",
    "RonchigramSetup",
    "Specimen",
    "aberration_function",
    "aperture",
    "interaction_parameter",
    "interference_image",
    "interference_images",
    "polar_angles",
    "projected_potential",
    "projected_potentials",
    "scattering_factor",
    "simulate_ronchigram",
    "simulate_ronchigrams",
    "spatial_frequencies",
    "wavelength",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'atomlens.physics' has no attribute {name!r}")
    module = importlib.import_module(f"atomlens.physics.{_WHERE[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
