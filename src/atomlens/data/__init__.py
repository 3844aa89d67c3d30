"""Synthetic training data: random samplers of simulated images and series, torch Datasets, and
fixed held-out sets on disk.

- ``ImageSampler``, ``SeriesSampler``: draw a structure, microscope settings and distortions per
  item, seeded by (seed, index).
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
from atomlens.data.samplers import ImageSampler, SeriesSampler

__all__ = [
    "ImageSampler",
    "RestorationDataset",
    "SegmentationDataset",
    "SeriesSampler",
    "TrackingDataset",
    "read_table",
    "standardise",
    "write_heldout",
]
