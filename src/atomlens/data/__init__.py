"""Synthetic training data: random samplers of simulated images and series, torch Datasets, and
fixed held-out sets on disk.

- ``ImageSampler``, ``SeriesSampler``: draw a structure, microscope settings and distortions per
  item, seeded by (seed, index).
- ``RonchigramSampler``: groups of Ronchigrams with known aberrations (``RONCHIGRAM_PRIORS``), the
  same protocol; the calibrate task's training and test data.
- ``RestorationDataset`` (distorted -> clean), ``SegmentationDataset`` (image -> label maps),
  ``TrackingDataset`` (series -> tracks): generate on the fly, worker-safe.
- ``write_heldout``, ``read_table``: the held-out HDF5 sets every benchmark uses.
"""

from atomlens.data.datasets import (
    RestorationDataset,
    SegmentationDataset,
    TrackingDataset,
    read_table,
    standardise,
    write_heldout,
)
from atomlens.data.ronchigrams import (
    RONCHIGRAM_PRIORS,
    RonchigramSampler,
    SimulatedRonchigrams,
)
from atomlens.data.samplers import ImageSampler, SeriesSampler

__all__ = [
    "RONCHIGRAM_PRIORS",
    "ImageSampler",
    "RestorationDataset",
    "RonchigramSampler",
    "SegmentationDataset",
    "SeriesSampler",
    "SimulatedRonchigrams",
    "TrackingDataset",
    "read_table",
    "standardise",
    "write_heldout",
]
