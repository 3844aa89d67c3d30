"""Type stub of the lazy facade :mod:`atomlens.physics` (as scikit-image does).

Every name here is loaded on first use by ``__getattr__`` in ``__init__.py``, from the module
named in its ``_WHERE`` map; ``tests/physics/test_facade.py`` checks that the two agree.
"""

from atomlens.core.energy import interaction_parameter as interaction_parameter
from atomlens.core.energy import wavelength as wavelength

from .detectors.base import Compose as Compose
from .detectors.stem import realistic_stem as realistic_stem
from .detectors.tem import realistic_tem as realistic_tem
from .detectors.tem import ronchigram_camera as ronchigram_camera
from .dynamics.models import DynamicsModel as DynamicsModel
from .dynamics.models import simulate_series as simulate_series
from .imaging.hrtem import HRTEMImaging as HRTEMImaging
from .imaging.hrtem import hrtem_image as hrtem_image
from .imaging.images import SimulatedImage as SimulatedImage
from .imaging.images import simulate_image as simulate_image
from .imaging.interference import InterferenceSetup as InterferenceSetup
from .imaging.interference import interference_image as interference_image
from .imaging.interference import interference_images as interference_images
from .imaging.labels import class_masks as class_masks
from .imaging.labels import distance_map as distance_map
from .imaging.ronchigram import RonchigramSetup as RonchigramSetup
from .imaging.ronchigram import simulate_ronchigram as simulate_ronchigram
from .imaging.ronchigram import simulate_ronchigrams as simulate_ronchigrams
from .imaging.series import SimulatedSeries as SimulatedSeries
from .imaging.series import simulate_image_series as simulate_image_series
from .imaging.stem import STEMImaging as STEMImaging
from .imaging.stem import stem_image as stem_image
from .optics.aberrations import Aberrations as Aberrations
from .optics.probe import Probe as Probe
from .optics.transfer import aberration_function as aberration_function
from .optics.transfer import aperture as aperture
from .optics.transfer import polar_angles as polar_angles
from .optics.transfer import spatial_frequencies as spatial_frequencies
from .potentials.projection import projected_potential as projected_potential
from .potentials.projection import projected_potentials as projected_potentials
from .potentials.scattering import scattering_factor as scattering_factor
from .potentials.specimens import AmorphousSpecimen as AmorphousSpecimen
from .potentials.specimens import CrystalSpecimen as CrystalSpecimen
from .potentials.specimens import PhaseGrating as PhaseGrating
from .potentials.specimens import PotentialSpecimen as PotentialSpecimen
from .potentials.specimens import Specimen as Specimen
from .structures.lattice import columns as columns
from .structures.lattice import field as field
from .structures.lattice import orient as orient
from .structures.materials import MATERIALS as MATERIALS
from .structures.materials import material as material
from .structures.random_structures import random_structure as random_structure

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
