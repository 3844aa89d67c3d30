"""Forward models with no learning: electron optics, specimens, Ronchigrams, detectors.

Subpackages
-----------
optics
    Aberrations, the aberration function chi, apertures and the probe.
potentials
    Scattering factors, projected potentials and Ronchigram specimens.
structures
    Materials, oriented fields and projected columns, defects, random structures.
imaging
    Ronchigrams, interference images, STEM and HRTEM images, image series and label maps.
detectors
    The Ronchigram detector and the detector and scan distortions of paper 001.
dynamics
    Moving atoms with their trajectories and events.

The relativistic electron kinematics live in :mod:`atomlens.core` (re-exported here).

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
RonchigramSetup, simulate_ronchigram, simulate_ronchigrams
    Batched, seeded Ronchigram simulation.
interference_image, interference_images
    The "interference image" model of paper 000 (C1 and A1 transfer, beam tilt, divergence).
STEMImaging, stem_image, HRTEMImaging, hrtem_image
    Incoherent STEM (HAADF, empirical ABF / BF) and HRTEM (multislice, coherence envelopes).
material, orient, field, columns, random_structure
    Crystal structures (ase), zone axes, image fields, projected columns, random structures;
    defects in ``atomlens.physics.structures.defects``, films and nanoparticles in
    ``atomlens.physics.structures.random_structures``.
simulate_image, SimulatedImage, class_masks, distance_map
    An image with its ground truth (atom table, label maps).
Compose, realistic_stem, realistic_tem, ronchigram_camera
    The one detector chain: detector and scan distortions of paper 001 and the Ronchigram
    camera (all steps in ``atomlens.physics.detectors``).
DynamicsModel, simulate_series, simulate_image_series, SimulatedSeries
    Moving atoms and the image series they give, with tracks and events.
"""

from atomlens._lazy import attach

# Lazy loading (as scikit-image does): ``import atomlens.physics`` stays cheap and does not import
# torch; each name below loads its module (and so its subpackage) on first use. The type stub
# ``__init__.pyi`` lists the same names for type checkers.
_WHERE = {
    "Aberrations": "atomlens.physics.optics.aberrations",
    "AmorphousSpecimen": "atomlens.physics.potentials.specimens",
    "Compose": "atomlens.physics.detectors.base",
    "CrystalSpecimen": "atomlens.physics.potentials.specimens",
    "DynamicsModel": "atomlens.physics.dynamics.models",
    "HRTEMImaging": "atomlens.physics.imaging.hrtem",
    "InterferenceSetup": "atomlens.physics.imaging.interference",
    "MATERIALS": "atomlens.physics.structures.materials",
    "PhaseGrating": "atomlens.physics.potentials.specimens",
    "PotentialSpecimen": "atomlens.physics.potentials.specimens",
    "Probe": "atomlens.physics.optics.probe",
    "RonchigramSetup": "atomlens.physics.imaging.ronchigram",
    "STEMImaging": "atomlens.physics.imaging.stem",
    "SimulatedImage": "atomlens.physics.imaging.images",
    "SimulatedSeries": "atomlens.physics.imaging.series",
    "Specimen": "atomlens.physics.potentials.specimens",
    "aberration_function": "atomlens.physics.optics.transfer",
    "aperture": "atomlens.physics.optics.transfer",
    "class_masks": "atomlens.physics.imaging.labels",
    "columns": "atomlens.physics.structures.lattice",
    "distance_map": "atomlens.physics.imaging.labels",
    "field": "atomlens.physics.structures.lattice",
    "hrtem_image": "atomlens.physics.imaging.hrtem",
    "interaction_parameter": "atomlens.core.energy",
    "interference_image": "atomlens.physics.imaging.interference",
    "interference_images": "atomlens.physics.imaging.interference",
    "material": "atomlens.physics.structures.materials",
    "orient": "atomlens.physics.structures.lattice",
    "polar_angles": "atomlens.physics.optics.transfer",
    "projected_potential": "atomlens.physics.potentials.projection",
    "projected_potentials": "atomlens.physics.potentials.projection",
    "random_structure": "atomlens.physics.structures.random_structures",
    "realistic_stem": "atomlens.physics.detectors.stem",
    "realistic_tem": "atomlens.physics.detectors.tem",
    "ronchigram_camera": "atomlens.physics.detectors.tem",
    "scattering_factor": "atomlens.physics.potentials.scattering",
    "simulate_image": "atomlens.physics.imaging.images",
    "simulate_image_series": "atomlens.physics.imaging.series",
    "simulate_ronchigram": "atomlens.physics.imaging.ronchigram",
    "simulate_ronchigrams": "atomlens.physics.imaging.ronchigram",
    "simulate_series": "atomlens.physics.dynamics.models",
    "spatial_frequencies": "atomlens.physics.optics.transfer",
    "stem_image": "atomlens.physics.imaging.stem",
    "wavelength": "atomlens.core.energy",
}

__all__ = [
    "MATERIALS",
    "Aberrations",
    "AmorphousSpecimen",
    "Compose",
    "CrystalSpecimen",
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
    "ronchigram_camera",
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


def _by_module(where: dict[str, str]) -> dict[str, list[str]]:
    modules: dict[str, list[str]] = {}
    for name, module in where.items():
        modules.setdefault(module, []).append(name)
    return modules


__getattr__, __dir__ = attach(__name__, _by_module(_WHERE))
