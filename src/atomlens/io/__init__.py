"""Reading microscope files with their calibration, and atomic writers for results.

:func:`read` opens .dm3/.dm4, .emd, .ser, .mrc, .tif/.tiff, .png/.jpg, .hspy/.hdf5/.h5 and .npy
files (through rosettasciio where it has a reader) and returns an :class:`ImageData`: the
array in its original dtype, :class:`Axis` records in Å (real space) or mrad / 1/Å
(diffraction), the beam energy [eV] and the metadata. Errors derive from
:class:`AtomlensIOError` and say which file, what is wrong and what to do.

The writers (:func:`write_tiff`, :func:`write_hdf5`, :func:`write_csv`, :func:`write_json`)
write to a temporary file and rename it into place, so a failed write never leaves a
half-written file, and they refuse to replace an existing file unless ``overwrite=True``.
"""

from ._atomic import atomic_write
from ._errors import (
    AtomlensIOError,
    EmptyFileError,
    FileMissingError,
    MissingCalibrationError,
    NotAnImageError,
    SignalIndexError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from ._imagedata import Axis, ImageData
from ._read import read, supported_extensions
from ._write import read_hdf5, write_csv, write_hdf5, write_json, write_tiff

__all__ = [
    "AtomlensIOError",
    "Axis",
    "EmptyFileError",
    "FileMissingError",
    "ImageData",
    "MissingCalibrationError",
    "NotAnImageError",
    "SignalIndexError",
    "UnreadableFileError",
    "UnsupportedFormatError",
    "atomic_write",
    "read",
    "read_hdf5",
    "supported_extensions",
    "write_csv",
    "write_hdf5",
    "write_json",
    "write_tiff",
]
