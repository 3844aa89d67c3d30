"""Simulated Ronchigrams with known aberrations, on the canonical grid, for the estimator.

One :class:`TrainingDistribution` says what varies (aberrations, specimen, detector, geometry);
:func:`simulate_examples` draws from it reproducibly. Training, validation and test sets differ
only in their seeds (and, for tests, their distribution), so none is ever reused for another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from atomlens.calibrate.preprocess import canonical_grid, ronchigram_input
from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.physics.detectors.detector import Detector
from atomlens.physics.imaging.ronchigram import RonchigramSetup, simulate_ronchigrams
from atomlens.physics.optics.aberrations import Aberrations, random_aberrations
from atomlens.physics.potentials.specimens import AmorphousSpecimen, CrystalSpecimen, Specimen
from atomlens.physics.structures.lattice import orient

#: Thin crystals drawn as specimens: (material, zone axis, unit cells along the beam).
CRYSTALS: tuple[tuple[str, tuple[int, ...], tuple[int, int]], ...] = (
    ("Si", (1, 1, 0), (1, 4)),
    ("Au", (0, 0, 1), (1, 3)),
    ("SrTiO3", (0, 0, 1), (1, 4)),
    ("graphene", (0, 0, 1), (1, 1)),
    ("MoS2", (0, 0, 1), (1, 1)),
)


@dataclass(frozen=True)
class TrainingDistribution:
    """What the simulated Ronchigrams draw, per item unless said otherwise.

    Parameters
    ----------
    energy : float
        [eV], fixed.
    semiangle : float
        Nominal convergence semi-angle [mrad], the value the estimator is told.
    semiangle_error : float
        The true semi-angle is nominal x (1 +- this) (uniform): aperture edge position.
    edge_width : (float, float)
        Soft aperture edge range [mrad].
    angular_sampling : (float, float)
        Detector pixel range [mrad / px]; the detector spans +-1.3 semi-angles.
    ranges : dict
        Uniform ranges [Å] of C10 and C30 (signed) and of the magnitudes of C12, C21, C23 (their
        angles are uniform).
    tilt : float
        Largest beam tilt off the optical axis [mrad] (uniform in a disc).
    amorphous_thickness : (float, float)
        Amorphous specimen thickness range [Å], log-uniform; slices of at most 50 Å.
    amorphous_elements : dict
        Element -> probability for the amorphous specimen.
    crystal_fraction : float
        Share of groups with a thin crystal from :data:`CRYSTALS` instead.
    dose : (float, float)
        Electrons per image, log-uniform.
    psf_sigma, readout_noise, dark_offset : (float, float)
        Detector ranges [px], [counts], [counts] (gain 1 count / e-).
    """

    energy: float = 200e3
    semiangle: float = 30.0
    semiangle_error: float = 0.03
    edge_width: tuple[float, float] = (0.1, 1.0)
    angular_sampling: tuple[float, float] = (0.4, 0.8)
    ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "C10": (-600.0, 600.0),
            "C12": (0.0, 250.0),
            "C21": (0.0, 2000.0),
            "C23": (0.0, 2000.0),
            "C30": (-1e5, 1e5),
        }
    )
    tilt: float = 1.5
    amorphous_thickness: tuple[float, float] = (20.0, 200.0)
    amorphous_elements: dict[str, float] = field(default_factory=lambda: {"C": 0.9, "Si": 0.1})
    crystal_fraction: float = 0.08
    dose: tuple[float, float] = (1e5, 1e8)
    psf_sigma: tuple[float, float] = (0.0, 1.5)
    readout_noise: tuple[float, float] = (0.0, 3.0)
    dark_offset: tuple[float, float] = (0.0, 5.0)

    def describe(self) -> dict:
        """JSON-ready description with units in the keys."""
        return {
            "energy_eV": self.energy,
            "semiangle_mrad": self.semiangle,
            "semiangle_error_fraction": self.semiangle_error,
            "edge_width_mrad": list(self.edge_width),
            "angular_sampling_mrad_per_px": list(self.angular_sampling),
            "ranges_A": {k: list(v) for k, v in self.ranges.items()},
            "tilt_mrad": self.tilt,
            "amorphous_thickness_A": list(self.amorphous_thickness),
            "amorphous_elements": dict(self.amorphous_elements),
            "crystal_fraction": self.crystal_fraction,
            "crystals": [f"{m} [{''.join(map(str, z))}]" for m, z, _ in CRYSTALS],
            "dose_e_per_image": list(self.dose),
            "psf_sigma_px": list(self.psf_sigma),
            "readout_noise_counts": list(self.readout_noise),
            "dark_offset_counts": list(self.dark_offset),
        }


#: Aberration priors [Å]: "broad" (a loosely tuned corrector) and "corrected" (higher orders
#: tuned small, as after a corrector tune-up); the shipped model trains on a mixture of both.
PRIORS: dict[str, dict[str, tuple[float, float]]] = {
    "broad": TrainingDistribution().ranges,
    "corrected": {
        "C10": (-600.0, 600.0),
        "C12": (0.0, 250.0),
        "C21": (0.0, 500.0),
        "C23": (0.0, 500.0),
        "C30": (-2e4, 2e4),
    },
}


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _specimen(distribution: TrainingDistribution, rng: np.random.Generator) -> Specimen:
    if rng.uniform() < distribution.crystal_fraction:
        name, zone, cells = CRYSTALS[rng.integers(len(CRYSTALS))]
        repeats = int(rng.integers(cells[0], cells[1] + 1))
        return CrystalSpecimen(orient(name, zone), repeats_z=repeats, slice_thickness=10.0)
    elements = list(distribution.amorphous_elements)
    weights = np.array([distribution.amorphous_elements[e] for e in elements], dtype=float)
    element = elements[rng.choice(len(elements), p=weights / weights.sum())]
    thickness = _log_uniform(rng, distribution.amorphous_thickness)
    density = 0.100 if element == "C" else 0.05  # [atoms / Å^3]: a-C 2.0, a-Si 2.3 g / cm^3
    return AmorphousSpecimen(
        thickness=thickness,
        slice_thickness=min(thickness, 50.0),
        element=element,
        density=density,
    )


def coefficient_array(aberrations: list[Aberrations]) -> np.ndarray:
    """(N, 8) Cartesian coefficients ordered as :data:`COEFFICIENTS` [Å]."""
    return np.array([[a.to_cartesian()[k] for k in COEFFICIENTS] for a in aberrations])


def simulate_examples(
    count: int,
    seed: int,
    distribution: TrainingDistribution | None = None,
    *,
    group: int = 8,
    device: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy Ronchigrams resampled to the canonical grid, with their aberrations.

    Items come in groups of ``group`` that share the specimen kind and the detector sampling;
    everything else is drawn per item. Group g draws from ``default_rng([seed, g])``: the same
    seed and count give the same set.

    Returns
    -------
    grids : ndarray of shape (count, 96, 96), float32
        Canonical grids, centred on the bright-field disc found in each image (as at inference).
    coefficients : ndarray of shape (count, 8), float64
        The true coefficients [Å], ordered as :data:`COEFFICIENTS`.
    """
    distribution = distribution or TrainingDistribution()
    grids, coefficients = [], []
    bar = tqdm(total=count, desc="simulating Ronchigrams", unit="img", disable=not progress)
    for index, start in enumerate(range(0, count, group)):
        size = min(group, count - start)
        rng = np.random.default_rng([seed, index])
        sampling = rng.uniform(*distribution.angular_sampling)
        pixels = 2 * math.ceil(1.3 * distribution.semiangle / sampling)
        semiangle = distribution.semiangle * (
            1 + rng.uniform(-distribution.semiangle_error, distribution.semiangle_error)
        )
        setup = RonchigramSetup(
            energy=distribution.energy,
            semiangle=semiangle,
            angular_sampling=sampling,
            size=pixels,
            edge_width=rng.uniform(*distribution.edge_width),
        )
        aberrations = random_aberrations(size, distribution.ranges, rng)
        radius = distribution.tilt * np.sqrt(rng.uniform(size=size))
        angle = rng.uniform(0, 2 * math.pi, size)
        tilts = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        intensities = simulate_ronchigrams(
            setup,
            aberrations,
            _specimen(distribution, rng),
            tilts=tilts,
            seed=seed,
            first_index=start,
            batch_size=group,
            device=device,
        )
        for intensity in intensities:
            detector = Detector(
                dose=_log_uniform(rng, distribution.dose),
                psf_sigma=rng.uniform(*distribution.psf_sigma),
                readout_noise=rng.uniform(*distribution.readout_noise),
                dark_offset=rng.uniform(*distribution.dark_offset),
            )
            counts = detector.apply(np.clip(intensity, 0, None), rng)
            ronchigram = ronchigram_input(
                counts,
                energy=distribution.energy,
                semiangle=distribution.semiangle,
                angular_sampling=sampling,
            )
            grids.append(canonical_grid(ronchigram))
        coefficients.append(coefficient_array(aberrations))
        bar.update(size)
    bar.close()
    return np.stack(grids), np.concatenate(coefficients)
