"""Probe aberrations from Ronchigrams.

- ``estimate`` / ``estimate_batch``: C10, C12, C21, C23 and C30 with uncertainties from one
  Ronchigram, several at known offsets (a defocus pair), or many independent ones, with the shipped
  network (``ronchigram-aberrations``, 200 kV, 30 mrad) or one trained with
  ``atomlens train calibrate`` (the recipe is in :mod:`atomlens.calibrate.training`).
- ``measure``: the physics-based measurement from several Ronchigrams of one specimen at known
  offsets and probe shifts (patch shifts between the images, fitted by least squares).
- ``measure_holograms`` (also ``estimate(..., method="hologram")``): C10 and C12 from a
  through-focus series (no probe shifts needed), each image modelled as an in-line hologram of
  one weak-phase specimen (:mod:`atomlens.calibrate.hologram`).
- ``estimate_vae_em`` (also ``estimate(..., method="vae-em")``): VAE-EM of paper 004, C10 and
  C12 from Ronchigrams at known offsets with a code map fitted to this microscope
  (:mod:`atomlens.calibrate.vae_em`; the VAE and its map are the zoo's ``ronchigram-vae``).
- ``tune``, ``SimulatedMicroscope``: the closed loop of measure, correct, measure again on a
  simulated microscope that differs from what the estimators assume (issue 13, item 3).
- ``AberrationEstimate``: the result, convertible to abTEM keywords, CEOS names and a table.
- ``ronchigram_input``, ``find_bright_field_disc``, ``canonical_grid``: the preprocessing.

What the verbs refuse (not a Ronchigram, a calibration the image contradicts, the same data twice)
is :mod:`atomlens.calibrate.checks`.

Training data come from :class:`atomlens.data.RonchigramSampler`; the training recipe
(``simulate_examples``, the loss, ``save_estimator``) is :mod:`atomlens.calibrate.training`.
"""

from atomlens.calibrate.estimate import combine, estimate, estimate_batch, load_estimator
from atomlens.calibrate.multi import MeasureOptions, measure
from atomlens.calibrate.preprocess import (
    CANONICAL_EXTENT,
    CANONICAL_SIZE,
    RonchigramInput,
    canonical_grid,
    find_bright_field_disc,
    ronchigram_input,
)
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.through_focus import HologramOptions, measure_holograms
from atomlens.calibrate.tune import SimulatedMicroscope, tune
from atomlens.calibrate.vae_estimate import estimate_vae_em

__all__ = [
    "CANONICAL_EXTENT",
    "CANONICAL_SIZE",
    "AberrationEstimate",
    "HologramOptions",
    "MeasureOptions",
    "RonchigramInput",
    "SimulatedMicroscope",
    "canonical_grid",
    "combine",
    "estimate",
    "estimate_batch",
    "estimate_vae_em",
    "find_bright_field_disc",
    "load_estimator",
    "measure",
    "measure_holograms",
    "ronchigram_input",
    "tune",
]
