"""atomlens: trustworthy numbers from atomic-resolution electron microscopy.

``import atomlens`` is cheap (no torch, no matplotlib): each subpackage below loads on first use,
``atomlens.calibrate.estimate(...)`` works without importing ``atomlens.calibrate`` first. The type
stub ``__init__.pyi`` lists the same subpackages for type checkers. The layers and what each holds
are in docs/architecture.md.

Subpackages
-----------
analyze
    Located columns to the lattice, displacements, strain and rotation, vacancies and other
    defects; the package is callable: ``atomlens.analyze(columns)``.
calibrate
    Probe aberrations from Ronchigrams: ``estimate``, ``AberrationEstimate``, ``load_estimator``.
locate
    Every atomic column of an image: sub-pixel positions with uncertainties, intensities and
    classes, as a trackpy-compatible table; the package is callable: ``atomlens.locate(image)``.
metrics
    The metric definitions used everywhere: PSNR, SSIM, detection scores (F1, Jaccard, chamfer),
    the Cramer-Rao bound of a column position.
track
    Atoms through an image series: drift removed, trajectories linked globally (gaps, hops,
    fast adatoms), motion features (MSD, diffusion); callable: ``atomlens.track(frames)``.
restore
    Distorted STEM / HRTEM images restored (CGRDN network or classical baselines); the package is
    callable: ``atomlens.restore(image, modality="haadf")``.
pipeline
    The end-to-end run (read, restore, locate, analyze, track) and its HTML report:
    ``atomlens.pipeline.run(path)``; the command is ``atomlens run``.
physics
    Forward models with no learning: optics, potentials, structures, imaging, detectors, dynamics.
enhance
    Experimental images translated to the clean simulated domain by an unpaired CycleGAN
    (thesis 003); callable: ``atomlens.enhance(image, modality="haadf")``.
io
    Microscope files read with their calibration (rosettasciio); atomic TIFF/HDF5/CSV/JSON writers.
data
    Samplers drawing item ``index`` of stream ``seed``, torch datasets and held-out sets.
train
    The training loop: example bank, weight averaging, budget and schedule, checkpoints, DDP.
zoo
    Pretrained models shipped in the package (safetensors + config + card): ``load_model``.
nn
    Network architectures shared by the tasks (ResNet18, AlexNet, VAE regressors, CGRDN).
report
    Figures through matplotlib's object-oriented ``Figure`` API (no backend switch).
core
    Electron energy (wavelength, interaction parameter) and the table of unit spellings.
cli
    The ``atomlens`` command (``import atomlens.cli``; not loaded as an attribute).

Conventions: lengths in Angstrom, angles in mrad at the user surface (radians inside formulas),
energies in eV, aberration coefficients in Angstrom with angles in radians, named as abTEM names
them (C10, C12, phi12, ...). Images are float32 arrays indexed (row, column) = (y, x). A function
that draws random numbers takes ``rng``, a :class:`numpy.random.Generator`; a sampler draws item
``index`` of stream ``seed`` from ``numpy.random.default_rng([seed, index])``.
"""

import importlib
from types import ModuleType

__version__ = "0.1.0.dev0"

# Lazy loading (as scikit-image does): a subpackage is imported on first attribute access, so
# ``import atomlens`` imports neither torch nor matplotlib. ``__init__.pyi`` lists the same names.
_SUBPACKAGES = (
    "analyze",
    "calibrate",
    "core",
    "data",
    "enhance",
    "io",
    "locate",
    "metrics",
    "nn",
    "physics",
    "pipeline",
    "report",
    "restore",
    "track",
    "train",
    "zoo",
)

__all__ = list(_SUBPACKAGES)


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"atomlens.{name}")
    raise AttributeError(f"module 'atomlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
