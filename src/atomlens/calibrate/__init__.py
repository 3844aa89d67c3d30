"""Probe aberrations from Ronchigrams.

So far: input handling (``ronchigram_input``: the image with its energy, convergence semi-angle and
angular sampling, from a file or given), bright-field disc detection and the canonical angular grid
that estimators work on (``canonical_grid``). The estimators themselves are not in this release.
"""

from atomlens.calibrate.preprocess import (
    CANONICAL_EXTENT,
    CANONICAL_SIZE,
    RonchigramInput,
    canonical_grid,
    find_bright_field_disc,
    ronchigram_input,
)

__all__ = [
    "CANONICAL_EXTENT",
    "CANONICAL_SIZE",
    "RonchigramInput",
    "canonical_grid",
    "find_bright_field_disc",
    "ronchigram_input",
]
