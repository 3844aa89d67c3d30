"""Probe aberrations from Ronchigrams.

- ``estimate`` / ``estimate_batch``: C10, C12, C21, C23 and C30 with uncertainties from one
  Ronchigram, several at known offsets (a defocus pair), or many independent ones, with the shipped
  network (``ronchigram-aberrations``, 200 kV, 30 mrad) or one trained with
  ``python -m atomlens.calibrate.train``.
- ``AberrationEstimate``: the result, convertible to abTEM keywords, CEOS names and a table.
- ``ronchigram_input``, ``find_bright_field_disc``, ``canonical_grid``: the preprocessing.
- ``simulate_examples``, ``TrainingDistribution``: simulated training and test data.
"""

from atomlens.calibrate.estimate import combine, estimate, estimate_batch, load_estimator
from atomlens.calibrate.preprocess import (
    CANONICAL_EXTENT,
    CANONICAL_SIZE,
    RonchigramInput,
    canonical_grid,
    find_bright_field_disc,
    ronchigram_input,
)
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.simulation import TrainingDistribution, simulate_examples

__all__ = [
    "CANONICAL_EXTENT",
    "CANONICAL_SIZE",
    "AberrationEstimate",
    "RonchigramInput",
    "TrainingDistribution",
    "canonical_grid",
    "combine",
    "estimate",
    "estimate_batch",
    "find_bright_field_disc",
    "load_estimator",
    "ronchigram_input",
    "simulate_examples",
]
