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
STEMImaging, stem_image, HRTEMImaging, hrtem_image
    Incoherent STEM (HAADF, empirical ABF / BF) and HRTEM (multislice, coherence envelopes).
material, orient, field, columns, random_structure
    Crystal structures (ase), zone axes, image fields, projected columns, random structures;
    defects in ``atomlens.physics.defects``, films and nanoparticles in
    ``atomlens.physics.random_structures``.
simulate_image, SimulatedImage, class_masks, distance_map
    An image with its ground truth (atom table, label maps).
Compose, realistic_stem, realistic_tem
    Detector and scan distortions of paper 001 (all steps in ``atomlens.physics.distortions``).
DynamicsModel, simulate_series, simulate_image_series, SimulatedSeries
    Moving atoms and the image series they give, with tracks and events.
"""

import importlib
from typing import Any

# Lazy loading (as scikit-image does): ``import atomlens.physics.energy`` stays cheap and does not
# import torch; the names below load their module on first use.
_WHERE = {
    "Aberrations": "aberrations",
    "AmorphousSpecimen": "specimens",
    "Compose": "distortions",
    "CrystalSpecimen": "specimens",
    "Detector": "detector",
    "DynamicsModel": "dynamics",
    "HRTEMImaging": "hrtem",
    "InterferenceSetup": "interference",
    "MATERIALS": "materials",
    "PhaseGrating": "specimens",
    "PotentialSpecimen": "specimens",
    "Probe": "probe",
    "RonchigramSetup": "ronchigram",
    "STEMImaging": "stem",
    "SimulatedImage": "imaging",
    "SimulatedSeries": "series",
    "Specimen": "specimens",
    "aberration_function": "transfer",
    "aperture": "transfer",
    "class_masks": "labels",
    "columns": "structures",
    "distance_map": "labels",
    "field": "structures",
    "hrtem_image": "hrtem",
    "interaction_parameter": "energy",
    "interference_image": "interference",
    "interference_images": "interference",
    "material": "materials",
    "orient": "structures",
    "polar_angles": "transfer",
    "projected_potential": "potentials",
    "projected_potentials": "potentials",
    "random_structure": "random_structures",
    "realistic_stem": "distortions",
    "realistic_tem": "distortions",
    "scattering_factor": "potentials",
    "simulate_image": "imaging",
    "simulate_image_series": "series",
    "simulate_ronchigram": "ronchigram",
    "simulate_ronchigrams": "ronchigram",
    "simulate_series": "dynamics",
    "spatial_frequencies": "transfer",
    "stem_image": "stem",
    "wavelength": "energy",
}

__all__ = [
    "MATERIALS",
    "Aberrations",
    "AmorphousSpecimen",
    "Compose",
    "CrystalSpecimen",
    "Detector",
    "DynamicsModel",
    "HRTEMImaging",
    "InterferenceSetup",
    "PhaseGrating",
    "PotentialSpecimen",
    "Probe",
    "RonchigramSetup",
    "STEMImaging",
    "SimulatedImage",
    "SimulatedSeries",
    "Specimen",
    "aberration_function",
    "aperture",
    "class_masks",
    "columns",
    "distance_map",
    "field",
    "hrtem_image",
    "interaction_parameter",
    "interference_image",
    "interference_images",
    "material",
    "orient",
    "polar_angles",
    "projected_potential",
    "projected_potentials",
    "random_structure",
    "realistic_stem",
    "realistic_tem",
    "scattering_factor",
    "simulate_image",
    "simulate_image_series",
    "simulate_ronchigram",
    "simulate_ronchigrams",
    "simulate_series",
    "spatial_frequencies",
    "stem_image",
    "wavelength",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'atomlens.physics' has no attribute {name!r}")
    module = importlib.import_module(f"atomlens.physics.{_WHERE[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
