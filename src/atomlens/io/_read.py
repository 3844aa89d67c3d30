"""``read``: one entry point for microscope files, with calibration and clear errors.

``describe`` is what ``atomlens info`` prints: the same reading, but the data are loaded (for the
value statistics) only when they take at most :data:`DESCRIBE_VALUES_LIMIT`.
"""

import contextlib
import gc
import logging
import operator
import os
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from atomlens.core.validation import InputError, SizeLimitError, check_size

from ._axes import build_axes
from ._errors import (
    AtomlensIOError,
    ComplexDataError,
    EmptyFileError,
    FileMissingError,
    NotAnImageError,
    SignalIndexError,
    UnreadableFileError,
    UnsupportedFormatError,
)
from ._formats import FORMATS, READERS, SIGNATURES, Signals
from ._imagedata import ImageData
from ._lazy import DESCRIBE_VALUES_LIMIT, declared_bytes, format_bytes, placeholder
from ._metadata import apply_mapping, beam_energy, get_path, to_builtin
from ._summary import summarise

__all__ = ["DESCRIBE_VALUES_LIMIT", "describe", "read", "supported_extensions"]

_logger = logging.getLogger(__name__)

# errors that already say what is wrong with the file (not wrapped in UnreadableFileError)
_OWN_ERRORS = (AtomlensIOError, SizeLimitError, InputError, MemoryError, KeyboardInterrupt)

_SPECTRUM_TYPES = {"eels", "eds", "eds_tem", "eds_sem", "cl", "edx"}


def supported_extensions() -> tuple[str, ...]:
    """File extensions that :func:`read` accepts, e.g. ``('.dm3', '.dm4', ...)``."""
    return tuple(FORMATS)


def read(path: str | os.PathLike, *, index: int | None = None) -> ImageData:
    """Read an image, image series or diffraction pattern with its calibration.

    The reader is chosen by the file extension: .dm3/.dm4 (Gatan DigitalMicrograph),
    .emd (Velox or Berkeley EMD), .ser (TIA), .mrc, .tif/.tiff, .png/.jpg/.jpeg/.bmp,
    .hspy/.hdf5/.h5 (HyperSpy, EMD, or a plain HDF5 file such as one written by
    :func:`write_hdf5`) and .npy. All but TIFFs written by :func:`write_tiff`, plain HDF5 and
    .npy go through rosettasciio.

    Parameters
    ----------
    path : str or PathLike
        The file.
    index : int, optional
        Which signal to return when the file holds several (Velox EMD files often hold a
        HAADF image, a DF4 image, a diffraction pattern, ...). By default the first 2D or 3D
        image signal; ``metadata['atomlens']`` records which one and lists the others.

    Returns
    -------
    ImageData
        The array with its original dtype, axes in Å (real space), mrad (diffraction with a
        known beam energy) or 1/Å, beam energy [eV], kind and metadata.

    Raises
    ------
    FileMissingError
        The path does not exist or is a folder (also a ``FileNotFoundError``).
    UnsupportedFormatError
        Unknown extension.
    EmptyFileError
        Zero bytes, a zero-size array, or only NaN / inf values.
    UnreadableFileError
        Corrupt, truncated, or of another format than its extension says.
    NotAnImageError
        The file holds only spectra or other 1D data.
    SignalIndexError
        ``index`` is out of range; the message lists the valid indices.
    ComplexDataError
        The signal holds complex values (also an :class:`~atomlens.core.validation.InputError`).
    SizeLimitError
        The signal's declared shape x item size exceeds the array size limit
        (``ATOMLENS_MAX_ARRAY_GB``, see :func:`atomlens.core.validation.check_size`); nothing
        was allocated.

    Examples
    --------
    >>> image = read("haadf.dm3")  # doctest: +SKIP
    >>> image.pixel_size, image.energy  # doctest: +SKIP
    ((0.127, 0.127), 60000.0)
    >>> print(image.summary())  # doctest: +SKIP
    """
    with _releasing(path):
        return _read(path, index)


def _read(path: str | os.PathLike, index: int | None) -> ImageData:
    file = _open(path, index)
    _refuse_complex(file.path, file.signals, file.chosen)
    _load(file)
    return _to_imagedata(file)


def describe(path: str | os.PathLike, *, index: int | None = None) -> str:
    """What ``atomlens info`` prints about a file: :meth:`ImageData.summary` of its signal.

    Shape, dtype, calibration and metadata come from the file's headers; the value statistics
    only when the data take at most :data:`DESCRIBE_VALUES_LIMIT` (256 MiB), so a huge or
    decompression-bomb file is described without being read. Complex data are described, with a
    note that :func:`read` refuses them.

    Parameters
    ----------
    path : str or PathLike
        The file.
    index : int, optional
        Which signal to describe, as for :func:`read`.

    Returns
    -------
    str
        The multi-line description.

    Raises
    ------
    AtomlensIOError
        As :func:`read`, for a file that cannot be read at all.
    """
    with _releasing(path):
        return _describe_file(path, index)


def _describe_file(path: str | os.PathLike, index: int | None) -> str:
    file = _open(path, index)
    signal = file.signals[file.chosen]
    data = signal["data"]
    size = declared_bytes(data.shape, data.dtype)
    notes = []
    if data.dtype.kind == "c":
        notes.append("complex values: atomlens.io.read refuses them (it reads real intensities)")
    if size <= DESCRIBE_VALUES_LIMIT:
        _load(file)
        return summarise(_to_imagedata(file, notes=notes))
    signal["data"] = placeholder(data.shape, data.dtype)
    image = _to_imagedata(file, loaded=False, notes=notes)
    skipped = (
        f"not read: the data take {format_bytes(size)}, more than the "
        f"{format_bytes(DESCRIBE_VALUES_LIMIT)} read for statistics"
    )
    return summarise(image, values=skipped)


class _OpenFile(NamedTuple):
    """A file's signals, their data still unread where the format allows, and the one chosen."""

    path: Path
    fmt: str
    description: tuple[str, str]
    signals: Signals
    reader: str
    chosen: int


def _open(path: str | os.PathLike, index: int | None) -> _OpenFile:
    path = Path(path).expanduser()
    if index is not None:
        index = operator.index(index)  # TypeError for 1.5, "2", ...
    _check_file(path)
    fmt, description = _format_of(path)
    signals, reader = _call_reader(path, fmt, description)
    chosen = _select_signal(path, signals, index)
    return _OpenFile(path, fmt, description, signals, reader, chosen)


# ---------------------------------------------------------------------- checks


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FileMissingError(
            f"{path} does not exist; check the spelling and the folder "
            f"(relative paths start from {Path.cwd()})"
        )
    if path.is_dir():
        raise FileMissingError(f"{path} is a folder, not a file; pass one file inside it")
    if path.stat().st_size == 0:
        raise EmptyFileError(
            f"{path} is empty (0 bytes); the acquisition or the copy probably failed, "
            "save or copy the file again"
        )


def _format_of(path: Path) -> tuple[str, tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix][0], FORMATS[suffix]
    sniffed = _sniff(path)
    if sniffed and sniffed[1] == (".txt",):
        hint = " It is a text file, not microscope data."
    elif sniffed:
        hint = f" Its content looks like {sniffed[0]}: rename it to *{sniffed[1][0]}."
    else:
        hint = ""
    raise UnsupportedFormatError(
        f"{path}: unsupported file extension {suffix or '(none)'!r}; atomlens reads "
        f"{', '.join(FORMATS)}.{hint}"
    )


def _sniff(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """(format description, extensions it may carry) guessed from the first bytes, or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return None
    for signature, name, extensions in SIGNATURES:
        if head.startswith(signature):
            return f"a {name} file", extensions
    if len(head) >= 212 and head[208:212] == b"MAP ":
        return "an MRC file", (".mrc",)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(char.isprintable() or char in "\r\n\t" for char in text):
        return "a text file", (".txt",)
    return None


# ---------------------------------------------------------------------- reading


def _unreadable_message(path: Path, description: tuple[str, str], err: Exception) -> str:
    reason = str(err).strip() or type(err).__name__
    if len(reason) > 300:
        reason = reason[:300] + "..."
    sniffed = _sniff(path)
    if sniffed and sniffed[1] == (".txt",):
        hint = "It is a text file, not microscope data; check that you picked the right file."
    elif sniffed and path.suffix.lower() not in sniffed[1]:
        hint = f"Its content looks like {sniffed[0]}: rename it to *{sniffed[1][0]} and retry."
    else:
        hint = (
            "The file may be truncated or corrupt; copy or export it again from the "
            "acquisition software and retry."
        )
    return f"Cannot read {path} (expected {description[1]}; {type(err).__name__}: {reason}). {hint}"


@contextlib.contextmanager
def _releasing(path: str | os.PathLike) -> Iterator[None]:
    """Close, inside the block, the files that lazily read arrays left open (TIFF via zarr)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except BaseException as err:
            traceback.clear_frames(err.__traceback__)  # the error keeps no unread array alive
            raise
        finally:
            gc.collect(1)  # the young generations only: about a millisecond
            for warning in caught:
                level = logging.DEBUG if warning.category is ResourceWarning else logging.WARNING
                _logger.log(level, "%s: %s", Path(path).name, warning.message)


@contextlib.contextmanager
def _reading(path: Path, description: tuple[str, str]) -> Iterator[None]:
    """Log the warnings of a third-party reader; turn its errors into UnreadableFileError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except _OWN_ERRORS:
            raise
        except Exception as err:
            # drop the reader's local variables and garbage now, so that file handles it
            # left open are closed (and their ResourceWarning recorded) inside this block
            traceback.clear_frames(err.__traceback__)
            gc.collect()
            raise UnreadableFileError(_unreadable_message(path, description, err)) from err
        finally:
            for warning in caught:
                level = logging.DEBUG if warning.category is ResourceWarning else logging.WARNING
                _logger.log(level, "%s: %s", path.name, warning.message)


def _call_reader(path: Path, fmt: str, description: tuple[str, str]) -> tuple[Signals, str]:
    with _reading(path, description):
        signals, reader, unitless = READERS[fmt](path)
        for signal in signals:
            if not hasattr(signal["data"], "shape"):
                signal["data"] = np.asarray(signal["data"])
            signal["_unitless_unit"] = unitless
    if not signals:
        raise NotAnImageError(
            f"{path} holds no image data that {reader} can read (spectra and spectrum images "
            "are skipped); open it in the acquisition software to check what it contains"
        )
    return signals, reader


def _refuse_complex(path: Path, signals: Signals, chosen: int) -> None:
    dtype = signals[chosen]["data"].dtype
    if dtype.kind == "c":
        which = f"signal {chosen} ({dtype})" if len(signals) > 1 else f"dtype {dtype}"
        raise ComplexDataError(
            f"{path} holds complex values ({which}); atomlens reads real intensities: save the "
            "modulus (np.abs) or the real part to a file and read that"
        )


def _load(file: _OpenFile) -> None:
    """Read the chosen signal's data into memory, after checking its declared size."""
    signal = file.signals[file.chosen]
    data = signal["data"]
    check_size(f"signal {file.chosen} of {file.path}", data.shape, data.dtype.itemsize)
    with _reading(file.path, file.description):
        signal["data"] = np.asarray(data)


def _squeezed(signal: dict[str, Any]) -> tuple[np.ndarray, list]:
    """The data without length-1 dimensions, and the matching axis dictionaries."""
    data, axes = signal["data"], list(signal.get("axes") or [])
    if 1 in data.shape and data.ndim > 1:
        if len(axes) == data.ndim:
            axes = [axis for axis, n in zip(axes, data.shape, strict=True) if n != 1]
        data = data.reshape([n for n in data.shape if n != 1])
    return data, axes


def _is_image(signal: dict[str, Any], *, default: bool) -> bool:
    """Whether a signal is an image-like array (default choice: 2D or 3D only)."""
    data, axes = _squeezed(signal)
    if data.ndim < 2 or (default and data.ndim > 3):
        return False
    if str(get_path(signal.get("metadata", {}), "Signal.signal_type", "")).lower() in (
        _SPECTRUM_TYPES
    ):
        return False
    flags = [axis.get("navigate") for axis in axes]
    if len(flags) == data.ndim and None not in flags:
        return sum(not flag for flag in flags) != 1  # one signal axis: a spectrum
    return True


def _describe(signal: dict[str, Any], number: int) -> str:
    title = get_path(signal.get("metadata", {}), "General.title") or ""
    shape = "x".join(str(n) for n in signal["data"].shape)
    image = "" if _is_image(signal, default=False) else ", not an image"
    label = f"{str(title)!r} " if title else ""
    return f"{number}: {label}{shape} {signal['data'].dtype}{image}"


def _select_signal(path: Path, signals: Signals, index: int | None) -> int:
    listing = "; ".join(_describe(signal, i) for i, signal in enumerate(signals))
    if index is None:
        for i, signal in enumerate(signals):
            if _is_image(signal, default=True):
                return i
        raise NotAnImageError(
            f"{path} holds no 2D image, image series or diffraction pattern (found: {listing}); "
            "atomlens works on images, not on spectra or 1D data"
        )
    if not -len(signals) <= index < len(signals):
        raise SignalIndexError(
            f"index={index} is out of range for {path}, which holds {len(signals)} signal(s): "
            f"valid indices are 0..{len(signals) - 1} ({listing})"
        )
    chosen = index % len(signals)
    if not _is_image(signals[chosen], default=False):
        images = [i for i, signal in enumerate(signals) if _is_image(signal, default=False)]
        raise NotAnImageError(
            f"signal {chosen} of {path} is not an image ({listing}); "
            + (f"image signals are at index {images}" if images else "the file holds no image")
        )
    return chosen


# ---------------------------------------------------------------------- conversion


def _plain_data(path: Path, data: np.ndarray, notes: list[str]) -> np.ndarray:
    """Native byte order, RGB(A) records turned into one grey channel, validity checks."""
    if data.dtype.names:
        channels = [name for name in ("R", "G", "B") if name in data.dtype.names]
        if not channels:
            raise NotAnImageError(f"{path} holds records of dtype {data.dtype}, not an image")
        planes = [data[name] for name in channels]
        if all(np.array_equal(planes[0], plane) for plane in planes[1:]):
            data = np.ascontiguousarray(planes[0])
            notes.append("grey image stored as RGB(A); one channel kept")
        else:
            data = (0.299 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2]).astype(np.float32)
            notes.append("colour image converted to grey (ITU-R 601 luma)")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    if data.size == 0:
        raise EmptyFileError(f"{path} holds an empty array of shape {data.shape}; nothing to read")
    if data.dtype.kind in "fc" and not np.isfinite(data).any():
        raise EmptyFileError(
            f"{path}: all {data.size} values are NaN or infinite; the acquisition or the "
            "processing that wrote this file failed, so there is no image to analyse"
        )
    return data


def _to_imagedata(
    file: _OpenFile, *, loaded: bool = True, notes: list[str] | None = None
) -> ImageData:
    path, fmt, _, signals, reader, chosen = file
    signal = signals[chosen]
    notes = list(notes or [])
    data, raw_axes = _squeezed(signal)
    if loaded:
        data = _plain_data(path, data, notes)
    metadata = dict(signal.get("metadata") or {})
    original = signal.get("original_metadata") or {}
    apply_mapping(metadata, original, signal.get("mapping"))
    energy = beam_energy(metadata)
    axes, kind, calibrated, axis_notes = build_axes(
        raw_axes, data.shape, energy, unitless_unit=signal.get("_unitless_unit")
    )
    notes += axis_notes
    metadata = to_builtin(metadata)
    metadata["original_metadata"] = to_builtin(original)
    metadata["atomlens"] = {
        "format": fmt,
        "reader": reader,
        "signal_index": chosen,
        "n_signals": len(signals),
        "notes": notes,
    }
    if len(signals) > 1:
        metadata["atomlens"]["signals"] = [
            _describe(other, i) for i, other in enumerate(signals) if i != chosen
        ]
    for note in notes:
        _logger.info("%s: %s", path.name, note)
    return ImageData(
        data=data,
        axes=axes,
        kind=kind,
        calibrated=calibrated,
        energy=energy,
        metadata=metadata,
        path=path,
        format=fmt,
    )
