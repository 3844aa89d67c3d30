"""Enhance experimental atomic-resolution images by unpaired translation (thesis 003).

- ``enhance``: an image or a stack through the experiment -> clean generator of a CycleGAN pair
  trained on real images and clean simulations without pairs, at the canonical column spacing,
  returned in the input's units. The package itself is callable:
  ``atomlens.enhance(image, modality="haadf")`` is ``enhance.enhance(...)``.
- ``load_enhancer`` / ``Enhancer``: the generators of a model name or folder.
- ``to_canonical``, ``from_canonical``: the preprocessing (8 px per column spacing and back).

The networks and their structure-keeping losses are :mod:`atomlens.enhance.network` (building
blocks in :mod:`atomlens.nn.enhancement`); the training recipe is
:mod:`atomlens.enhance.training` (``atomlens train enhance``).
"""

from atomlens._lazy import make_callable
from atomlens.enhance.enhance import DEFAULT_MODEL, MODALITIES, Enhancer, enhance, load_enhancer
from atomlens.enhance.preprocess import from_canonical, to_canonical

__all__ = [
    "DEFAULT_MODEL",
    "MODALITIES",
    "Enhancer",
    "enhance",
    "from_canonical",
    "load_enhancer",
    "to_canonical",
]


make_callable(__name__, enhance)
