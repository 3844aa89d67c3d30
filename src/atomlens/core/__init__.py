"""Physical constants and units shared by every part of atomlens, with no heavy dependencies.

Modules
-------
energy
    Relativistic electron kinematics: ``wavelength`` [eV -> Å], ``relativistic_mass``,
    ``interaction_parameter`` [rad / (V Å)].
units
    The table of unit spellings that :func:`atomlens.io.read` maps onto Å, 1/Å and mrad
    (``classify_units``).
parallel
    Frame-parallel maps over image stacks and lists of files on Dask (``map_blocks``,
    ``map_files``, ``check_scheduler``, ``open_stack`` for lazy .npy/TIFF stacks); imported
    on its own (``atomlens.core.parallel``), it loads dask only when called.
validation
    The validation layer every verb shares: ``PARAMETERS`` (the valid range and unit of every
    physical parameter), ``check_parameter``, ``check_image``, ``check_size`` and their errors
    ``ParameterError``, ``InputError``, ``SizeLimitError`` (all ``ValueError``).

Importing this package imports neither torch nor :mod:`atomlens.physics`, so :mod:`atomlens.io`
can use it.
"""

from atomlens.core.energy import interaction_parameter, relativistic_mass, wavelength
from atomlens.core.units import classify_units
from atomlens.core.validation import (
    PARAMETERS,
    InputError,
    ParameterError,
    SizeLimitError,
    check_image,
    check_parameter,
    check_size,
)

__all__ = [
    "PARAMETERS",
    "InputError",
    "ParameterError",
    "SizeLimitError",
    "check_image",
    "check_parameter",
    "check_size",
    "classify_units",
    "interaction_parameter",
    "relativistic_mass",
    "wavelength",
]
