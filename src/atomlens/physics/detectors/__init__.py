"""Detectors and the detector and scan distortions of paper 001.

Modules
-------
detector
    ``Detector``: dose, shot noise, PSF, gain, dark offset and read-out noise for Ronchigrams.
base
    The distortion base classes and the chain: ``Distortion``, ``ScanDistortion``, ``ShotNoise``,
    ``ReadoutNoise``, ``Compose``, ``validate_image``.
tem
    Camera steps: ``Gain``, ``MTFBlur``, ``DarkCurrent``, ``XraySpikes``, ``DeadPixels``,
    ``HotPixels``, ``Quantise``; the preset ``realistic_tem``.
stem
    Scan and photomultiplier steps: ``Drift``, ``ScanJitter``, ``FlyBack``, ``ScanSpeed``,
    ``PMTGain``, ``DetectorLag``, ``LineJumps``, ``BlackPixels``, ``Zingers``; the preset
    ``realistic_stem``.
scan
    ``resample_scan``: the image a distorted scan saw.
sampling
    Seeded draws: ``poisson_counts``, ``standard_normal``, ``standard_gamma``, ``random_pixels``.
"""

from atomlens.physics.detectors.base import (
    Compose,
    Distortion,
    ReadoutNoise,
    ScanDistortion,
    ShotNoise,
    validate_image,
)
from atomlens.physics.detectors.detector import Detector
from atomlens.physics.detectors.sampling import (
    poisson_counts,
    random_pixels,
    standard_gamma,
    standard_normal,
)
from atomlens.physics.detectors.scan import resample_scan
from atomlens.physics.detectors.stem import (
    BlackPixels,
    DetectorLag,
    Drift,
    FlyBack,
    LineJumps,
    PMTGain,
    ScanJitter,
    ScanSpeed,
    Zingers,
    realistic_stem,
)
from atomlens.physics.detectors.tem import (
    DarkCurrent,
    DeadPixels,
    Gain,
    HotPixels,
    MTFBlur,
    Quantise,
    XraySpikes,
    realistic_tem,
)

__all__ = [
    "BlackPixels",
    "Compose",
    "DarkCurrent",
    "DeadPixels",
    "Detector",
    "DetectorLag",
    "Distortion",
    "Drift",
    "FlyBack",
    "Gain",
    "HotPixels",
    "LineJumps",
    "MTFBlur",
    "PMTGain",
    "Quantise",
    "ReadoutNoise",
    "ScanDistortion",
    "ScanJitter",
    "ScanSpeed",
    "ShotNoise",
    "XraySpikes",
    "Zingers",
    "poisson_counts",
    "random_pixels",
    "realistic_stem",
    "realistic_tem",
    "resample_scan",
    "standard_gamma",
    "standard_normal",
    "validate_image",
]
