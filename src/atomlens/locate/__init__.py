"""Locate every atomic column of an image: sub-pixel positions, uncertainties, intensities, classes.

- ``locate``: an image or a stack to a trackpy-compatible table (``y``, ``x`` [px], ``y_A``,
  ``x_A`` [Å], ``intensity``, ``class``, ``sigma_y``, ``sigma_x`` [px], ...). The package itself
  is callable: ``atomlens.locate(image, pixel_size=0.1)`` is ``locate.locate(...)``.
- ``load_segmentor`` / ``Segmentor``: the U-Net and structure-conditioned segmentation
  networks (``method="unet"`` / ``"structure"``), from the model zoo.
- ``refine_columns``: the batched Gaussian fit of every column with its neighbours.
- ``estimate_spacing``, ``subtract_background``, ``columns_are_dark``: the preprocessing;
  :mod:`atomlens.locate.motif`: the image averaged over its unit cells, whose columns correct
  the spacing and give the lattice-site search (:mod:`atomlens.locate.sites`) its sites.

What the verb refuses is :mod:`atomlens.locate.checks`; the simple finder every restoration
method is scored with is :mod:`atomlens.locate.classical`, the scoring
:mod:`atomlens.locate.metrics`.
"""

from atomlens._lazy import make_callable
from atomlens.locate.locate import (
    COLUMNS,
    METHODS,
    MODALITIES,
    Segmentor,
    load_segmentor,
    locate,
)
from atomlens.locate.preprocess import columns_are_dark, estimate_spacing, subtract_background
from atomlens.locate.refine import ColumnFit, refine_columns

__all__ = [
    "COLUMNS",
    "METHODS",
    "MODALITIES",
    "ColumnFit",
    "Segmentor",
    "columns_are_dark",
    "estimate_spacing",
    "load_segmentor",
    "locate",
    "refine_columns",
    "subtract_background",
]


make_callable(__name__, locate)
