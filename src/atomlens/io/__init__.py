"""Reading microscope files with their calibration, and atomic writers for results.

:func:`read` opens .dm3/.dm4, .emd, .ser, .mrc, .tif/.tiff, .png/.jpg, .hspy/.hdf5/.h5 and .npy
files (through rosettasciio where it has a reader) and returns an :class:`ImageData`: the
array in its original dtype, :class:`Axis` records in Å (real space) or mrad / 1/Å
(diffraction), the beam energy [eV] and the metadata. Errors derive from
:class:`AtomlensIOError` and say which file, what is wrong and what to do. Data are size-checked
(:func:`atomlens.core.validation.check_size`, ``ATOMLENS_MAX_ARRAY_GB``) from what the file
declares before they are read, and complex data are refused (:class:`ComplexDataError`).
:func:`describe` is what ``atomlens info`` prints; it reads the data only when they are small.

The writers (:func:`write_tiff`, :func:`write_hdf5`, :func:`write_csv`, :func:`write_json`)
write to a temporary file and rename it into place, so a failed write never leaves a
half-written file, and they refuse to replace an existing file unless ``overwrite=True``.

The versioned file schemas: :func:`write_ronchigram_dataset` / :func:`read_ronchigram_dataset`
(Ronchigrams with their aberration labels and setup, HDF5) and :func:`write_ronchigram_sidecar` /
:func:`read_ronchigram_sidecar` (the JSON beside one simulated Ronchigram). The readers also take
the files of earlier atomlens versions and raise :class:`SchemaError` for anything else.
"""

from ._atomic import atomic_outputs, atomic_write
from ._errors import (
    AtomlensIOError,
    ComplexDataError,
    EmptyFileError,
    FileMissingError,
    MissingCalibrationError,
    NotAnImageError,
    SignalIndexError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from ._imagedata import Axis, ImageData
from ._read import DESCRIBE_VALUES_LIMIT, describe, read, supported_extensions
from ._ronchigram_dataset import (
    RonchigramDataset,
    read_ronchigram_dataset,
    write_ronchigram_dataset,
)
from ._ronchigram_sidecar import (
    RonchigramSidecar,
    read_ronchigram_sidecar,
    sidecar_path,
    write_ronchigram_sidecar,
)
from ._schemas import DATASET_SCHEMA, SIDECAR_SCHEMA, SchemaError, SchemaVersionError
from ._write import read_hdf5, write_csv, write_hdf5, write_json, write_tiff

__all__ = [
    "DATASET_SCHEMA",
    "DESCRIBE_VALUES_LIMIT",
    "SIDECAR_SCHEMA",
    "AtomlensIOError",
    "Axis",
    "ComplexDataError",
    "EmptyFileError",
    "FileMissingError",
    "ImageData",
    "MissingCalibrationError",
    "NotAnImageError",
    "RonchigramDataset",
    "RonchigramSidecar",
    "SchemaError",
    "SchemaVersionError",
    "SignalIndexError",
    "UnreadableFileError",
    "UnsupportedFormatError",
    "atomic_outputs",
    "atomic_write",
    "describe",
    "read",
    "read_hdf5",
    "read_ronchigram_dataset",
    "read_ronchigram_sidecar",
    "sidecar_path",
    "supported_extensions",
    "write_csv",
    "write_hdf5",
    "write_json",
    "write_ronchigram_dataset",
    "write_ronchigram_sidecar",
    "write_tiff",
]
