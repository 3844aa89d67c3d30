"""Exceptions raised by :mod:`atomlens.io`.

Every error names the file, says what is wrong with it and what to do. Reader failures from
third-party libraries are wrapped (``raise ... from err``), so callers catch one family,
:class:`AtomlensIOError`, and still see the original cause in the traceback.

Two refusals come from the shared validation layer (:mod:`atomlens.core.validation`): a file whose
data would exceed the array size limit raises its :class:`~atomlens.core.validation.SizeLimitError`
before anything is allocated, and :class:`ComplexDataError` is also an
:class:`~atomlens.core.validation.InputError`.
"""

from atomlens.core.validation import InputError

__all__ = [
    "AtomlensIOError",
    "ComplexDataError",
    "EmptyFileError",
    "FileMissingError",
    "MissingCalibrationError",
    "NotAnImageError",
    "SignalIndexError",
    "UnreadableFileError",
    "UnsupportedFormatError",
]


class AtomlensIOError(Exception):
    """Base class of every error raised while reading a microscope file."""


class UnreadableFileError(AtomlensIOError, OSError):
    """The file exists but cannot be parsed: corrupt, truncated or of another format."""


class FileMissingError(UnreadableFileError, FileNotFoundError):
    """The path does not exist, or is a folder rather than a file."""


class UnsupportedFormatError(AtomlensIOError, ValueError):
    """The file extension belongs to no format that :func:`atomlens.io.read` knows."""


class NotAnImageError(AtomlensIOError, ValueError):
    """The file holds data, but no 2D image, image stack or diffraction pattern."""


class EmptyFileError(AtomlensIOError, ValueError):
    """The file holds no usable data: zero bytes, a zero-size array, or only NaN / inf."""


class MissingCalibrationError(AtomlensIOError, ValueError):
    """A physical pixel size is needed but the file does not give one."""


class SignalIndexError(AtomlensIOError, IndexError):
    """``index`` asks for a signal that the file does not contain."""


class ComplexDataError(AtomlensIOError, InputError):
    """The file holds complex values (an exit wave, an FFT); atomlens reads real intensities."""
