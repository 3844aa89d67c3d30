"""Image formation: Ronchigrams, interference images, STEM and HRTEM images and image series.

Modules
-------
ronchigram
    ``RonchigramSetup``, ``simulate_ronchigram``, the batched and seeded ``simulate_ronchigrams``;
    ``MAX_AUTO_OVERSAMPLING``.
interference
    The "interference image" model of paper 000: ``InterferenceSetup``, ``interference_image``,
    ``interference_images``.
stem
    Incoherent STEM (HAADF, empirical ABF / BF): ``STEMImaging``, ``stem_image``,
    ``object_function``, ``probe_transfer``; ``MODES``.
hrtem
    HRTEM by multislice with coherence envelopes: ``HRTEMImaging``, ``hrtem_image``,
    ``exit_wave``, ``objective_transfer``.
images
    An image with its ground truth: ``simulate_image``, ``SimulatedImage``, ``clean_image``,
    ``field_shape``, ``DistortionChain``; ``EDGE_MARGIN`` [Å].
series
    The image series of moving atoms: ``simulate_image_series``, ``SimulatedSeries``.
labels
    Label maps from an atom table: ``class_masks``, ``distance_map``; ``KINDS``.
multislice
    The multislice loop shared by Ronchigrams and HRTEM: ``fresnel_propagator``, ``multislice``.
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.imaging.hrtem import (
        HRTEMImaging,
        exit_wave,
        hrtem_image,
        objective_transfer,
    )
    from atomlens.physics.imaging.images import (
        EDGE_MARGIN,
        DistortionChain,
        SimulatedImage,
        clean_image,
        field_shape,
        simulate_image,
    )
    from atomlens.physics.imaging.interference import (
        InterferenceSetup,
        interference_image,
        interference_images,
    )
    from atomlens.physics.imaging.labels import KINDS, class_masks, distance_map
    from atomlens.physics.imaging.multislice import fresnel_propagator, multislice
    from atomlens.physics.imaging.ronchigram import (
        MAX_AUTO_OVERSAMPLING,
        RonchigramSetup,
        simulate_ronchigram,
        simulate_ronchigrams,
    )
    from atomlens.physics.imaging.series import SimulatedSeries, simulate_image_series
    from atomlens.physics.imaging.stem import (
        MODES,
        STEMImaging,
        object_function,
        probe_transfer,
        stem_image,
    )

__all__ = [
    "EDGE_MARGIN",
    "KINDS",
    "MAX_AUTO_OVERSAMPLING",
    "MODES",
    "DistortionChain",
    "HRTEMImaging",
    "InterferenceSetup",
    "RonchigramSetup",
    "STEMImaging",
    "SimulatedImage",
    "SimulatedSeries",
    "class_masks",
    "clean_image",
    "distance_map",
    "exit_wave",
    "field_shape",
    "fresnel_propagator",
    "hrtem_image",
    "interference_image",
    "interference_images",
    "multislice",
    "object_function",
    "objective_transfer",
    "probe_transfer",
    "simulate_image",
    "simulate_image_series",
    "simulate_ronchigram",
    "simulate_ronchigrams",
    "stem_image",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.imaging.hrtem": (
            "HRTEMImaging",
            "exit_wave",
            "hrtem_image",
            "objective_transfer",
        ),
        "atomlens.physics.imaging.images": (
            "EDGE_MARGIN",
            "DistortionChain",
            "SimulatedImage",
            "clean_image",
            "field_shape",
            "simulate_image",
        ),
        "atomlens.physics.imaging.interference": (
            "InterferenceSetup",
            "interference_image",
            "interference_images",
        ),
        "atomlens.physics.imaging.labels": (
            "KINDS",
            "class_masks",
            "distance_map",
        ),
        "atomlens.physics.imaging.multislice": (
            "fresnel_propagator",
            "multislice",
        ),
        "atomlens.physics.imaging.ronchigram": (
            "MAX_AUTO_OVERSAMPLING",
            "RonchigramSetup",
            "simulate_ronchigram",
            "simulate_ronchigrams",
        ),
        "atomlens.physics.imaging.series": (
            "SimulatedSeries",
            "simulate_image_series",
        ),
        "atomlens.physics.imaging.stem": (
            "MODES",
            "STEMImaging",
            "object_function",
            "probe_transfer",
            "stem_image",
        ),
    },
)
