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

from atomlens.physics.aberrations import Aberrations
from atomlens.physics.detector import Detector
from atomlens.physics.energy import interaction_parameter, wavelength
from atomlens.physics.interference import InterferenceSetup, interference_image, interference_images
from atomlens.physics.potentials import projected_potential, projected_potentials, scattering_factor
from atomlens.physics.probe import Probe
from atomlens.physics.ronchigram import RonchigramSetup, simulate_ronchigram, simulate_ronchigrams
from atomlens.physics.specimens import (
    AmorphousSpecimen,
    CrystalSpecimen,
    PhaseGrating,
    PotentialSpecimen,
    Specimen,
)
from atomlens.physics.transfer import (
    aberration_function,
    aperture,
    polar_angles,
    spatial_frequencies,
)

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
