"""Random simulated Ronchigrams with known aberrations: the training and test data of calibrate.

:class:`RonchigramSampler` follows the sampler protocol of :mod:`atomlens.data.samplers`: a cheap
frozen description whose ``sample(index, seed)`` draws everything from
``numpy.random.default_rng([seed, index])``. One item is a *group* of ``group`` Ronchigrams that
share the specimen kind, the detector sampling and the aperture (simulated as one batch on one
grid, several times faster than one at a time); aberrations, beam tilt, specimen position and
detector are drawn per Ronchigram. Training, validation and test sets differ only in their seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from atomlens.physics.detectors.base import log_uniform
from atomlens.physics.detectors.tem import ronchigram_camera
from atomlens.physics.imaging.ronchigram import RonchigramSetup, simulate_ronchigrams
from atomlens.physics.optics.aberrations import Aberrations, random_aberrations
from atomlens.physics.potentials.specimens import AmorphousSpecimen, CrystalSpecimen, Specimen
from atomlens.physics.structures.lattice import orient

__all__ = ["CRYSTALS", "RONCHIGRAM_PRIORS", "RonchigramSampler", "SimulatedRonchigrams"]

#: Thin crystals drawn as specimens: (material, zone axis, unit cells along the beam).
CRYSTALS: tuple[tuple[str, tuple[int, ...], tuple[int, int]], ...] = (
    ("Si", (1, 1, 0), (1, 4)),
    ("Au", (0, 0, 1), (1, 3)),
    ("SrTiO3", (0, 0, 1), (1, 4)),
    ("graphene", (0, 0, 1), (1, 1)),
    ("MoS2", (0, 0, 1), (1, 1)),
)

#: Aberration priors [Å]: uniform ranges of C10 and C30 (signed) and of the magnitudes of C12,
#: C21, C23 (angles uniform). "broad" is a loosely tuned corrector, "corrected" has the higher
#: orders tuned small, as after a corrector tune-up; the shipped estimator trains on both.
#: "focus-astigmatism" is where VAE-EM works (C10 +-90 nm, |C12| <= 35 nm: the states and
#: offsets of a focus and stigmator tune-up, the higher orders nearly corrected).
RONCHIGRAM_PRIORS: dict[str, dict[str, tuple[float, float]]] = {
    "broad": {
        "C10": (-600.0, 600.0),
        "C12": (0.0, 250.0),
        "C21": (0.0, 2000.0),
        "C23": (0.0, 2000.0),
        "C30": (-1e5, 1e5),
    },
    "corrected": {
        "C10": (-600.0, 600.0),
        "C12": (0.0, 250.0),
        "C21": (0.0, 500.0),
        "C23": (0.0, 500.0),
        "C30": (-2e4, 2e4),
    },
    "focus-astigmatism": {
        "C10": (-900.0, 900.0),
        "C12": (0.0, 350.0),
        "C21": (0.0, 100.0),
        "C23": (0.0, 100.0),
        "C30": (-5e3, 5e3),
    },
}


@dataclass(frozen=True)
class SimulatedRonchigrams:
    """One group of simulated Ronchigrams with everything that made them.

    Attributes
    ----------
    counts : ndarray of shape (N, H, W), float32
        Detector counts [counts] (gain 1 count / e-).
    aberrations : tuple of Aberrations
        The true aberrations of each Ronchigram [Å, rad].
    energy : float
        [eV].
    semiangle : float
        Nominal convergence semi-angle [mrad]: what an estimator is told.
    true_semiangle : float
        The semi-angle the group was simulated with [mrad].
    angular_sampling : float
        Detector pixel size [mrad / px].
    tilts : ndarray of shape (N, 2)
        Beam tilt (y, x) [mrad].
    specimen : str
        The specimen, in words.
    """

    counts: np.ndarray
    aberrations: tuple[Aberrations, ...]
    energy: float
    semiangle: float
    true_semiangle: float
    angular_sampling: float
    tilts: np.ndarray
    specimen: str

    def __len__(self) -> int:
        return len(self.aberrations)


def _check_range(name: str, bounds: tuple[float, float], low: float = 0.0) -> None:
    if not (len(bounds) == 2 and low <= bounds[0] <= bounds[1] and math.isfinite(bounds[1])):
        raise ValueError(
            f"RonchigramSampler.{name} must be a range {low} <= low <= high, got {bounds}."
        )


@dataclass(frozen=True)
class RonchigramSampler:
    """What simulated Ronchigrams draw, per Ronchigram unless said otherwise.

    Parameters
    ----------
    energy : float
        [eV], fixed.
    semiangle : float
        Nominal convergence semi-angle [mrad], the value an estimator is told.
    semiangle_error : float
        The true semi-angle is nominal x (1 +- this) (uniform, per group): aperture edge position.
    edge_width : (float, float)
        Soft aperture edge range [mrad] (per group).
    angular_sampling : (float, float)
        Detector pixel range [mrad / px] (per group); the detector spans +-1.3 semi-angles.
    ranges : dict
        Aberration prior: uniform ranges [Å] (see :data:`RONCHIGRAM_PRIORS`).
    tilt : float
        Largest beam tilt off the optical axis [mrad] (uniform in a disc).
    amorphous_thickness : (float, float)
        Amorphous specimen thickness range [Å], log-uniform (per group); slices of at most 50 Å.
    amorphous_elements : dict
        Element -> probability for the amorphous specimen.
    hard_core : (float, float)
        Range of the amorphous specimen's hard-core distance as a fraction of its mean atom
        spacing ``density ** (-1/3)`` (uniform, per group, rounded to steps of 0.05; at most
        0.6): carbon's 2.15 Å times 0.55 gives the 1.2 Å of the abTEM test specimens. (0, 0),
        the default, places the atoms independently, as the shipped estimator was first trained.
    crystal_fraction : float
        Share of groups with a thin crystal from :data:`CRYSTALS` instead.
    dose_per_image : (float, float)
        Electrons per image [e-], log-uniform.
    psf_sigma, readout_noise, dark_offset : (float, float)
        Detector ranges [px], [counts], [counts] (gain 1 count / e-).
    group : int
        Ronchigrams per item.

    Examples
    --------
    >>> sampler = RonchigramSampler(angular_sampling=(0.8, 0.8), group=2)
    >>> item = sampler.sample(0, seed=1)
    >>> item.counts.shape, len(item)
    ((2, 98, 98), 2)
    """

    energy: float = 200e3
    semiangle: float = 30.0
    semiangle_error: float = 0.03
    edge_width: tuple[float, float] = (0.1, 1.0)
    angular_sampling: tuple[float, float] = (0.4, 0.8)
    ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(RONCHIGRAM_PRIORS["broad"])
    )
    tilt: float = 1.5
    amorphous_thickness: tuple[float, float] = (20.0, 200.0)
    amorphous_elements: dict[str, float] = field(default_factory=lambda: {"C": 0.9, "Si": 0.1})
    hard_core: tuple[float, float] = (0.0, 0.0)
    crystal_fraction: float = 0.08
    dose_per_image: tuple[float, float] = (1e5, 1e8)
    psf_sigma: tuple[float, float] = (0.0, 1.5)
    readout_noise: tuple[float, float] = (0.0, 3.0)
    dark_offset: tuple[float, float] = (0.0, 5.0)
    group: int = 8

    def __post_init__(self) -> None:
        if not (self.energy > 0 and self.semiangle > 0 and 0 <= self.semiangle_error < 1):
            raise ValueError(
                "RonchigramSampler needs energy > 0 [eV], semiangle > 0 [mrad] and "
                f"0 <= semiangle_error < 1, got {self.energy}, {self.semiangle}, "
                f"{self.semiangle_error}."
            )
        _check_range("angular_sampling", self.angular_sampling, low=1e-6)
        _check_range("amorphous_thickness", self.amorphous_thickness, low=1e-6)
        _check_range("dose_per_image", self.dose_per_image, low=1e-6)
        _check_range("hard_core", self.hard_core)
        if self.hard_core[1] > 0.6:
            raise ValueError(
                f"RonchigramSampler needs hard_core within [0, 0.6] (a fraction of the mean atom "
                f"spacing), got {self.hard_core}."
            )
        for name in ("edge_width", "psf_sigma", "readout_noise", "dark_offset"):
            _check_range(name, getattr(self, name))
        if not 0 <= self.crystal_fraction <= 1 or self.tilt < 0 or self.group < 1:
            raise ValueError(
                "RonchigramSampler needs 0 <= crystal_fraction <= 1, tilt >= 0 [mrad] and "
                "group >= 1."
            )

    def sample(
        self, index: int, seed: int = 0, *, size: int | None = None, device: str | None = None
    ) -> SimulatedRonchigrams:
        """Group ``index`` of the stream with this seed.

        Parameters
        ----------
        index, seed : int
            The group is drawn from ``default_rng([seed, index])``.
        size : int, optional
            Ronchigrams in the group (default ``group``), for the last group of a set. It shares
            the full group's geometry but draws fewer aberrations, so its Ronchigrams differ.
        device : str, optional
            Torch device of the simulation ("cpu", "cuda").
        """
        size = self.group if size is None else size
        if size < 1:
            raise ValueError(f"A group holds at least one Ronchigram, got size={size}.")
        rng = np.random.default_rng([seed, index])
        sampling = rng.uniform(*self.angular_sampling)
        pixels = 2 * math.ceil(1.3 * self.semiangle / sampling)
        semiangle = self.semiangle * (1 + rng.uniform(-self.semiangle_error, self.semiangle_error))
        setup = RonchigramSetup(
            energy=self.energy,
            semiangle=semiangle,
            angular_sampling=sampling,
            size=pixels,
            edge_width=rng.uniform(*self.edge_width),
        )
        aberrations = random_aberrations(size, self.ranges, rng)
        radius = self.tilt * np.sqrt(rng.uniform(size=size))
        angle = rng.uniform(0, 2 * math.pi, size)
        tilts = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        specimen, description = self._specimen(rng)
        intensities = simulate_ronchigrams(
            setup,
            aberrations,
            specimen,
            tilts=tilts,
            seed=seed,
            first_index=index * self.group,
            batch_size=self.group,
            device=device,
        )
        counts = []
        for intensity in intensities:
            camera = ronchigram_camera(
                log_uniform(rng, *self.dose_per_image),
                psf_sigma=rng.uniform(*self.psf_sigma),
                readout_noise=rng.uniform(*self.readout_noise),
                dark_offset=rng.uniform(*self.dark_offset),
            )
            counts.append(camera.apply(np.clip(intensity, 0, None), rng)[0])
        return SimulatedRonchigrams(
            counts=np.stack(counts),
            aberrations=tuple(aberrations),
            energy=self.energy,
            semiangle=self.semiangle,
            true_semiangle=semiangle,
            angular_sampling=sampling,
            tilts=tilts,
            specimen=description,
        )

    def _specimen(self, rng: np.random.Generator) -> tuple[Specimen, str]:
        if rng.uniform() < self.crystal_fraction:
            name, zone, cells = CRYSTALS[rng.integers(len(CRYSTALS))]
            repeats = int(rng.integers(cells[0], cells[1] + 1))
            specimen = CrystalSpecimen(orient(name, zone), repeats_z=repeats, slice_thickness=10.0)
            return specimen, f"{name} [{''.join(map(str, zone))}] x {repeats} cells"
        elements = list(self.amorphous_elements)
        weights = np.array([self.amorphous_elements[e] for e in elements], dtype=float)
        element = elements[rng.choice(len(elements), p=weights / weights.sum())]
        thickness = log_uniform(rng, *self.amorphous_thickness)
        density = 0.100 if element == "C" else 0.05  # [atoms / Å^3]: a-C 2.0, a-Si 2.3 g / cm^3
        gap = 0.0
        if self.hard_core[1] > 0:  # drawn only then, so that the default keeps older streams
            # In steps of 0.05: each distance's blocks of atoms are made once per process.
            gap = round(rng.uniform(*self.hard_core) * 20) / 20 * density ** (-1 / 3)
        specimen = AmorphousSpecimen(
            thickness=thickness,
            slice_thickness=min(thickness, 50.0),
            element=element,
            density=density,
            min_distance=gap,
        )
        hard = f", atoms >= {gap:.2f} Å apart" if gap > 0 else ""
        return specimen, f"amorphous {element}, {thickness:.0f} Å{hard}"

    def describe(self) -> dict:
        """JSON-ready description with units in the keys."""
        return {
            "sampler": "RonchigramSampler",
            "energy_eV": self.energy,
            "semiangle_mrad": self.semiangle,
            "semiangle_error_fraction": self.semiangle_error,
            "edge_width_mrad": list(self.edge_width),
            "angular_sampling_mrad_per_px": list(self.angular_sampling),
            "ranges_A": {k: list(v) for k, v in self.ranges.items()},
            "tilt_mrad": self.tilt,
            "amorphous_thickness_A": list(self.amorphous_thickness),
            "amorphous_elements": dict(self.amorphous_elements),
            "hard_core_fraction_of_spacing": list(self.hard_core),
            "crystal_fraction": self.crystal_fraction,
            "crystals": [f"{m} [{''.join(map(str, z))}]" for m, z, _ in CRYSTALS],
            "dose_e_per_image": list(self.dose_per_image),
            "psf_sigma_px": list(self.psf_sigma),
            "readout_noise_counts": list(self.readout_noise),
            "dark_offset_counts": list(self.dark_offset),
            "group": self.group,
        }
