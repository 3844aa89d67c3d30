"""Restore distorted STEM and HRTEM images: noise and scan distortions out, counts kept.

- ``restore``: one image or a stack, by the shipped CGRDN network (paper 001) or a classical
  baseline (Gaussian, Wiener, non-local means, BM3D), returned in the input's units. The package
  itself is callable: ``atomlens.restore(image, modality="haadf")`` is ``restore.restore(...)``.
- ``load_restorer``: the network of a model name or folder.
- ``normalise``, ``apply_tiled``, ``expected_counts``: the preprocessing (robust scaling, tiles
  with smooth blending, the restoration target of a simulation).

What the verb refuses (NaN, constant, tiny, wrong dimensions, too large) and the check that a
restoration invented no lattice are :mod:`atomlens.restore.checks`. The training recipe is
:mod:`atomlens.restore.training` (``atomlens train restore``).
"""

from atomlens._lazy import make_callable
from atomlens.restore.preprocess import apply_tiled, expected_counts, normalise
from atomlens.restore.restore import METHODS, MODALITIES, Restorer, load_restorer, restore

__all__ = [
    "METHODS",
    "MODALITIES",
    "Restorer",
    "apply_tiled",
    "expected_counts",
    "load_restorer",
    "normalise",
    "restore",
]


make_callable(__name__, restore)
