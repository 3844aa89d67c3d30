"""Random draws of whole simulated samples: structure, microscope settings, distortions.

A sampler is a cheap frozen description; ``sample(index, seed)`` draws everything for one item
from ``numpy.random.default_rng([seed, index])``, so item i is the same in every process, every
DataLoader worker and every epoch, and two samplers with different seeds never share items.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from atomlens.core.energy import wavelength
from atomlens.core.validation import check_parameter
from atomlens.data import realism
from atomlens.physics.detectors import realistic_stem, realistic_tem
from atomlens.physics.detectors.base import ShotNoise
from atomlens.physics.dynamics.models import DynamicsModel, simulate_series
from atomlens.physics.imaging.hrtem import HRTEMImaging
from atomlens.physics.imaging.images import SimulatedImage, simulate_image
from atomlens.physics.imaging.series import SimulatedSeries, simulate_image_series
from atomlens.physics.imaging.stem import STEMImaging
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.physics.structures.lattice import field as build_field
from atomlens.physics.structures.random_structures import random_structure

MODALITIES = ("stem", "haadf", "abf", "hrtem", "mixed")
#: The pixel-size range of real atomic-resolution images [Å]; use it with ``realism=True``.
REAL_PIXEL_SIZE = (0.05, 0.6)
#: Detected dose range of ABF STEM with ``realism=True`` [e-/px]: an ABF detector collects a large
#: part of the bright-field disc (tens of % of a 10^3 - 10^4 e-/px beam), far more than HAADF.
ABF_DOSE_PER_PIXEL = (100.0, 5000.0)
DISTORTIONS = ("realistic", "shot", "none")
SERIES_MATERIALS = ("graphene", "hBN", "MoS2", "WS2", "WSe2")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


#: Pixel sizes are drawn from this many log-spaced values of the range: the Fourier kernels of a
#: grid are cached, so a stream that revisits a few grids renders about twice as fast.
PIXEL_SIZE_STEPS = 12


def _pixel_size(rng: np.random.Generator, low: float, high: float) -> float:
    if high <= low:
        return float(low)
    grid = np.geomspace(low, high, PIXEL_SIZE_STEPS)
    return float(grid[rng.integers(PIXEL_SIZE_STEPS)])


def _check_size(size: int) -> None:
    """A sampler's image size [px]: in ``PARAMETERS["size"]`` and at least 16 px."""
    if check_parameter("size", size) < 16:
        raise ValueError(f"size=... must be at least 16 px for a sampler, got {size} px.")


def _check_range(
    name: str, bounds: tuple[float, float], unit: str, kind: str | None = None
) -> None:
    """A (low, high) range of a sampler whose bounds each lie in ``PARAMETERS[kind or name]``."""
    if len(bounds) != 2:
        raise ValueError(f"{name}=... must be a range (low, high) [{unit}], got {bounds!r}.")
    low, high = (check_parameter(name, value, kind=kind) for value in bounds)
    if not low <= high:
        raise ValueError(f"{name}=... must be a range with low <= high [{unit}], got {bounds!r}.")


def _crystal_atoms(atoms) -> np.ndarray:
    """True for the atoms of the drawn crystal or particle, False for an amorphous support.

    Atoms added later (amorphous layers, amorphised regions of ``realism``) get False from
    ``append_atoms``, so the column table's ``ordered`` share tells crystal columns from
    amorphous ones (the labels of ``atomlens.locate.training``).
    """
    if "region" in atoms.arrays:  # a nanoparticle (region 1) on its support (region 0)
        return atoms.arrays["region"] == 1
    return np.ones(len(atoms), dtype=bool)


def random_stem_imaging(rng: np.random.Generator, mode: str | None = None) -> STEMImaging:
    """A corrected STEM with small residual aberrations (mostly (HA)ADF, some ABF).

    ``mode`` ("HAADF" or "ABF") fixes the detector; None draws ABF with probability 0.15.
    """
    if mode not in (None, "HAADF", "ABF"):
        raise ValueError(f"mode must be None, 'HAADF' or 'ABF', got {mode!r}.")
    aberrations = Aberrations(
        C10=rng.uniform(-30, 30),
        C12=rng.uniform(0, 20),
        phi12=rng.uniform(0, math.pi),
        C21=rng.uniform(0, 300),
        phi21=rng.uniform(0, 2 * math.pi),
        C23=rng.uniform(0, 300),
        phi23=rng.uniform(0, 2 * math.pi / 3),
    )
    drawn = "ABF" if rng.uniform() < 0.15 else "HAADF"
    mode = drawn if mode is None else mode
    # HAADF gamma 1.9 reproduces abTEM's 70-200 mrad detector, 0.8 a real low-angle ADF image of
    # SrTiO3 (benchmarks/real_vs_simulated.py): draw in between to cover real detectors.
    gamma = rng.uniform(0.8, 2.0) if mode == "HAADF" else None
    return STEMImaging(
        energy=float(rng.choice([60e3, 80e3, 200e3, 300e3])),
        semiangle=rng.uniform(18, 32),
        aberrations=aberrations,
        source_size=rng.uniform(0.15, 0.6),
        mode=mode,
        gamma=gamma,
        contrast=rng.uniform(0.1, 0.5),
    )


def random_hrtem_imaging(rng: np.random.Generator) -> HRTEMImaging:
    """A Cs-corrected or uncorrected HRTEM with a random defocus near a good contrast setting."""
    corrected = rng.uniform() < 0.7
    energy = float(rng.choice([80e3, 200e3, 300e3]))
    c30 = rng.uniform(-3e5, 3e5) if corrected else rng.uniform(0.5e7, 1.2e7)
    scherzer = 1.2 * math.sqrt(abs(c30) * wavelength(energy))  # |C10| of Scherzer focus [Å]
    return HRTEMImaging(
        energy=energy,
        aberrations=Aberrations(
            C10=scherzer * rng.uniform(0.5, 1.5) * rng.choice([-1, 1]),
            C30=c30,
            C12=rng.uniform(0, 20),
            phi12=rng.uniform(0, math.pi),
        ),
        objective_aperture=None if rng.uniform() < 0.5 else rng.uniform(25, 60),
        focal_spread=rng.uniform(10, 50),
        divergence=rng.uniform(0.05, 0.4),
        slice_thickness=4.0,
    )


def simulate_realistic_image(
    atoms,
    pixel_size: float,
    imaging: STEMImaging | HRTEMImaging,
    rng: np.random.Generator,
    *,
    distortions: str = "realistic",
    dose_per_pixel: tuple[float, float] = (20.0, 2000.0),
    chances: dict[str, float] | None = None,
    chain_dose_per_pixel: tuple[float, float] | None = None,
) -> SimulatedImage:
    """Render a field with random specimen and optics effects of real images, then the detector.

    What ``ImageSampler(realism=True)`` does after drawing the structure and the microscope:
    draws the effects (:func:`atomlens.data.realism.draw_realism`), applies the amorphous ones to
    the structure, renders the clean image, applies the image effects to it (a HAADF clean image
    is brought back to mean 1), and applies the detector to that clean image: the modality's
    realistic chain (ABF STEM with :data:`ABF_DOSE_PER_PIXEL`), shot noise at a dose drawn
    log-uniform from ``dose_per_pixel``, or nothing.

    Parameters
    ----------
    atoms : ase.Atoms
        A field box (``structures.field``).
    pixel_size : float
        [Å].
    imaging : STEMImaging or HRTEMImaging
    rng : numpy.random.Generator
    distortions : {"realistic", "shot", "none"}
    dose_per_pixel : (float, float)
        Range of the dose for ``"shot"`` [e-/px].
    chances : dict, optional
        Effect name -> probability, replacing those of :data:`atomlens.data.realism.CHANCES`.
    chain_dose_per_pixel : (float, float), optional
        Dose range of the ``"realistic"`` chain [e-/px]; None keeps the chain's own (ABF STEM:
        :data:`ABF_DOSE_PER_PIXEL`).

    Returns
    -------
    SimulatedImage
        ``metadata["realism"]`` holds what was drawn (None for an effect that is off).
    """
    if distortions not in DISTORTIONS:
        raise ValueError(f"distortions must be one of {DISTORTIONS}, got {distortions!r}.")
    stem = isinstance(imaging, STEMImaging)
    drawn = realism.draw_realism(rng, stem=stem, chances=chances)
    atoms = realism.apply_structure_effects(atoms, pixel_size, drawn, rng)
    abf = stem and imaging.mode == "ABF"
    chain, dose = None, None
    doses = {"dose_per_pixel_range": ABF_DOSE_PER_PIXEL} if abf else {}
    if chain_dose_per_pixel is not None:
        doses = {"dose_per_pixel_range": chain_dose_per_pixel}
    if distortions == "realistic" and stem:
        chain = realistic_stem(rng, **doses)
    elif distortions == "realistic":
        chain = realistic_tem(rng, **doses)
    elif distortions == "shot":
        dose = _log_uniform(rng, *dose_per_pixel)
    result = simulate_image(atoms, pixel_size, imaging, rng=rng)
    haadf = stem and imaging.mode == "HAADF"
    clean = realism.apply_image_effects(
        result.clean, pixel_size, drawn, rng, reference=0.0 if haadf else 1.0
    )
    if haadf and clean.mean() > 0:
        clean = (clean / clean.mean()).astype(np.float32)
    metadata = result.metadata
    if chain is not None:
        image, record = chain.apply(clean, rng)
        metadata["distortions"] = chain.describe()
        metadata["distortion_record"] = record
    elif dose is not None:
        image, _ = ShotNoise().apply(np.clip(clean, 0, None) * dose, rng)
        metadata["dose_e_per_px"] = dose
    else:
        image = clean.copy()
    metadata["realism"] = drawn
    return SimulatedImage(np.asarray(image, np.float32), clean, result.atoms, pixel_size, metadata)


@dataclass(frozen=True)
class ImageSampler:
    """Random single images with ground truth.

    Parameters
    ----------
    modality : {"stem", "haadf", "abf", "hrtem", "mixed"}
        "stem" draws the detector (HAADF, 15 % ABF); "haadf" and "abf" fix it; "mixed" is STEM
        or HRTEM with equal chance.
    size : int
        Image size [px] (square).
    pixel_size : (float, float)
        Range of the pixel size [Å]; drawn from ``PIXEL_SIZE_STEPS`` log-spaced values.
        :data:`REAL_PIXEL_SIZE` (0.05 - 0.6 Å) covers real images.
    distortions : {"realistic", "shot", "none"}
        The realistic random chain of the modality, Poisson noise only (at
        ``dose_per_pixel``), or nothing.
    dose_per_pixel : (float, float)
        Range of the dose for ``"shot"``, log-uniform [e- / px].
    realism : bool
        Add specimen and optics effects of real images (:mod:`atomlens.data.realism`: amorphous
        layers and regions, thickness gradient, mistilt, probe tails, background), each drawn on
        with its own chance, to the clean image before the detector, and give ABF STEM the dose
        range :data:`ABF_DOSE_PER_PIXEL`; what was drawn is in ``metadata["realism"]``. False
        keeps the streams of earlier versions bit for bit.
    chain_dose_per_pixel : (float, float), optional
        Dose range of the ``"realistic"`` chain, log-uniform [e- / px]; None keeps the chain's
        own (STEM 2 - 1000, HRTEM 1 - 1000, ABF STEM with ``realism`` 100 - 5000).
    """

    modality: str = "stem"
    size: int = 128
    pixel_size: tuple[float, float] = (0.1, 0.25)
    distortions: str = "realistic"
    dose_per_pixel: tuple[float, float] = (20.0, 2000.0)
    realism: bool = False
    chain_dose_per_pixel: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}.")
        if self.distortions not in DISTORTIONS:
            raise ValueError(f"distortions must be one of {DISTORTIONS}, got {self.distortions!r}.")
        _check_size(self.size)
        _check_range("pixel_size", self.pixel_size, "Å")
        _check_range("dose_per_pixel", self.dose_per_pixel, "e-/px")
        if not isinstance(self.realism, bool):
            raise ValueError(f"realism must be True or False, got {self.realism!r}.")
        if self.chain_dose_per_pixel is not None:
            _check_range(
                "chain_dose_per_pixel", self.chain_dose_per_pixel, "e-/px", kind="dose_per_pixel"
            )

    def sample(self, index: int, seed: int = 0) -> SimulatedImage:
        """Item ``index`` of the stream with this seed."""
        rng = np.random.default_rng([seed, index])
        pixel_size = _pixel_size(rng, *self.pixel_size)
        atoms, structure = random_structure((self.size, self.size), pixel_size, rng)
        atoms.set_array("ordered", _crystal_atoms(atoms))
        stem = self.modality in ("stem", "haadf", "abf") or (
            self.modality == "mixed" and rng.uniform() < 0.5
        )
        mode = {"haadf": "HAADF", "abf": "ABF"}.get(self.modality)
        imaging = random_stem_imaging(rng, mode) if stem else random_hrtem_imaging(rng)
        if self.realism:
            result = simulate_realistic_image(
                atoms,
                pixel_size,
                imaging,
                rng,
                distortions=self.distortions,
                dose_per_pixel=self.dose_per_pixel,
                chain_dose_per_pixel=self.chain_dose_per_pixel,
            )
            result.metadata["structure"] = structure
            return result
        chain, dose = None, None
        if self.distortions == "realistic":
            doses = {}
            if self.chain_dose_per_pixel is not None:
                doses = {"dose_per_pixel_range": self.chain_dose_per_pixel}
            chain = realistic_stem(rng, **doses) if stem else realistic_tem(rng, **doses)
        elif self.distortions == "shot":
            dose = _log_uniform(rng, *self.dose_per_pixel)
        result = simulate_image(
            atoms, pixel_size, imaging, dose_per_pixel=dose, distortions=chain, rng=rng
        )
        result.metadata["structure"] = structure
        return result

    def describe(self) -> dict:
        """Parameters (JSON-friendly)."""
        return {"sampler": "ImageSampler", **asdict(self)}


@dataclass(frozen=True)
class SeriesSampler:
    """Random image series of 2D materials with moving atoms, and their tracks and events.

    Parameters
    ----------
    frames : int
        Frames per series.
    size : int
        Frame size [px] (square).
    pixel_size : (float, float)
        Range of the pixel size [Å]; drawn from ``PIXEL_SIZE_STEPS`` log-spaced values.
    distortions : {"realistic", "shot", "none"}
    """

    frames: int = 20
    size: int = 128
    pixel_size: tuple[float, float] = (0.1, 0.2)
    distortions: str = "realistic"

    def __post_init__(self) -> None:
        check_parameter("frames", self.frames)
        _check_size(self.size)
        _check_range("pixel_size", self.pixel_size, "Å")
        if self.distortions not in DISTORTIONS:
            raise ValueError(f"distortions must be one of {DISTORTIONS}, got {self.distortions!r}.")

    def sample(self, index: int, seed: int = 0) -> SimulatedSeries:
        """Series ``index`` of the stream with this seed."""
        rng = np.random.default_rng([seed, index])
        pixel_size = _pixel_size(rng, *self.pixel_size)
        material = str(rng.choice(SERIES_MATERIALS))
        atoms = build_field(
            material,
            (self.size, self.size),
            pixel_size,
            rotation="random",
            shift="random",
            rng=rng,
        )
        model = DynamicsModel(
            thermal_sigma=rng.uniform(0.02, 0.1),
            hop_rate=_log_uniform(rng, 1e-4, 5e-3),
            vacancy_migration=rng.uniform(0.0, 0.2),
            adatom_diffusion=_log_uniform(rng, 0.05, 2.0),
            appear_rate=rng.uniform(0.0, 1.0),
            leave_rate=rng.uniform(0.0, 0.05),
            drift=(rng.normal(0, 0.05), rng.normal(0, 0.05)),
        )
        series = simulate_series(atoms, self.frames, model, rng)
        imaging = random_stem_imaging(rng)
        chain = realistic_stem if self.distortions == "realistic" else None
        dose = _log_uniform(rng, 20, 2000) if self.distortions == "shot" else None
        result = simulate_image_series(
            series, pixel_size, imaging, distortions=chain, dose_per_pixel=dose, rng=rng
        )
        result.metadata["material"] = material
        result.metadata["dynamics"] = asdict(model)
        return result

    def describe(self) -> dict:
        """Parameters (JSON-friendly)."""
        return {"sampler": "SeriesSampler", **asdict(self)}
