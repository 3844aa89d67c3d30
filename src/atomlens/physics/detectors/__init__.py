"""Detectors and the detector and scan distortions of paper 001.

Modules
-------
base
    The distortion base classes and the chain: ``Distortion``, ``ScanDistortion``, ``ShotNoise``,
    ``ReadoutNoise``, ``Compose``, ``validate_image``.
tem
    Camera steps: ``Gain``, ``MTFBlur``, ``GaussianPSF``, ``DarkCurrent``, ``XraySpikes``,
    ``DeadPixels``, ``HotPixels``, ``Quantise``; the presets ``realistic_tem`` and
    ``ronchigram_camera``.
stem
    Scan and photomultiplier steps: ``Drift``, ``ScanJitter``, ``FlyBack``, ``ScanSpeed``,
    ``PMTGain``, ``DetectorLag``, ``LineJumps``, ``BlackPixels``, ``Zingers``; the preset
    ``realistic_stem``.
scan
    ``resample_scan``: the image a distorted scan saw.
sampling
    Seeded draws: ``poisson_counts``, ``standard_normal``, ``standard_gamma``, ``random_pixels``.
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.detectors.base import (
        Compose,
        Distortion,
        ReadoutNoise,
        ScanDistortion,
        ShotNoise,
        validate_image,
    )
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
        GaussianPSF,
        HotPixels,
        MTFBlur,
        Quantise,
        XraySpikes,
        realistic_tem,
        ronchigram_camera,
    )

__all__ = [
    "BlackPixels",
    "Compose",
    "DarkCurrent",
    "DeadPixels",
    "DetectorLag",
    "Distortion",
    "Drift",
    "FlyBack",
    "Gain",
    "GaussianPSF",
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
    "ronchigram_camera",
    "standard_gamma",
    "standard_normal",
    "validate_image",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.detectors.base": (
            "Compose",
            "Distortion",
            "ReadoutNoise",
            "ScanDistortion",
            "ShotNoise",
            "validate_image",
        ),
        "atomlens.physics.detectors.sampling": (
            "poisson_counts",
            "random_pixels",
            "standard_gamma",
            "standard_normal",
        ),
        "atomlens.physics.detectors.scan": ("resample_scan",),
        "atomlens.physics.detectors.stem": (
            "BlackPixels",
            "DetectorLag",
            "Drift",
            "FlyBack",
            "LineJumps",
            "PMTGain",
            "ScanJitter",
            "ScanSpeed",
            "Zingers",
            "realistic_stem",
        ),
        "atomlens.physics.detectors.tem": (
            "DarkCurrent",
            "DeadPixels",
            "Gain",
            "GaussianPSF",
            "HotPixels",
            "MTFBlur",
            "Quantise",
            "XraySpikes",
            "realistic_tem",
            "ronchigram_camera",
        ),
    },
)
