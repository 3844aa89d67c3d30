"""Format-specific readers behind :func:`atomlens.io.read`.

Each reader takes a path and returns ``(signals, reader_name, unitless_unit)``: a list of
rosettasciio-style signal dictionaries (``data``, ``axes``, ``metadata``,
``original_metadata``, optionally ``mapping``), the name of the library that read them, and
the unit to assume for axes that have a scale but no unit (None: treat them as uncalibrated).

The ``data`` of a signal is left in the file where the format allows it: a
:class:`~._lazy.Deferred` (.npy, plain HDF5, atomlens TIFF) or a dask array (rosettasciio's lazy
readers), which :func:`atomlens.io.read` size-checks and then loads. Where rosettasciio cannot
read a file lazily (PNG, JPEG, BMP, HyperSpy files with unchunked data, DM RGBA images) or should
not (other TIFFs up to 256 MiB: its lazy reader leaves them open), the file is read whole, after
the sizes its header declares were checked against the array size limit (DM files, whose data
are stored uncompressed, have no such probe). The headers of MRC and SER files are checked
before rosettasciio sees the file, against the size limit and the bytes the file holds: its
readers allocate what those headers declare.
"""

import importlib
import json
import logging
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import tifffile

from ._errors import EmptyFileError
from ._lazy import (
    DESCRIBE_VALUES_LIMIT,
    Deferred,
    check_declared,
    declared_bytes,
    format_bytes,
)

__all__ = ["FORMATS", "HDF5_JSON_ATTRS_KEY", "READERS", "SIGNATURES", "TIFF_DESCRIPTION_KEY"]

_logger = logging.getLogger(__name__)

Signals = list[dict[str, Any]]
ReaderResult = tuple[Signals, str, str | None]

# key that marks an ImageDescription written by atomlens.io.write_tiff
TIFF_DESCRIPTION_KEY = "atomlens"
# file attribute of atomlens.io.write_hdf5 that lists the attributes it stored as JSON text
HDF5_JSON_ATTRS_KEY = "atomlens_json_attrs"

# extension -> (format name, human description)
FORMATS: dict[str, tuple[str, str]] = {
    ".dm3": ("dm3", "Gatan DigitalMicrograph DM3"),
    ".dm4": ("dm4", "Gatan DigitalMicrograph DM4"),
    ".emd": ("emd", "EMD (Thermo Fisher Velox or Berkeley NCEM)"),
    ".ser": ("ser", "FEI/Thermo Fisher TIA SER"),
    ".mrc": ("mrc", "MRC"),
    ".tif": ("tiff", "TIFF"),
    ".tiff": ("tiff", "TIFF"),
    ".png": ("png", "PNG"),
    ".jpg": ("jpeg", "JPEG"),
    ".jpeg": ("jpeg", "JPEG"),
    ".bmp": ("bmp", "BMP"),
    ".hspy": ("hdf5", "HyperSpy HDF5"),
    ".hdf5": ("hdf5", "HDF5 (HyperSpy, EMD or atomlens)"),
    ".h5": ("hdf5", "HDF5 (HyperSpy, EMD or atomlens)"),
    ".npy": ("npy", "NumPy .npy"),
}

# leading bytes -> (format name, extensions it may carry; the first is suggested)
_HDF5_EXTENSIONS = (".hdf5", ".h5", ".hspy", ".emd")
SIGNATURES: tuple[tuple[bytes, str, tuple[str, ...]], ...] = (
    (b"II*\x00", "TIFF", (".tif", ".tiff")),
    (b"MM\x00*", "TIFF", (".tif", ".tiff")),
    (b"II+\x00", "BigTIFF", (".tif", ".tiff")),
    (b"MM\x00+", "BigTIFF", (".tif", ".tiff")),
    (b"\x89PNG\r\n\x1a\n", "PNG", (".png",)),
    (b"\xff\xd8\xff", "JPEG", (".jpg", ".jpeg")),
    (b"\x89HDF\r\n\x1a\n", "HDF5", _HDF5_EXTENSIONS),
    (b"\x93NUMPY", "NumPy", (".npy",)),
    (b"\x00\x00\x00\x03", "DigitalMicrograph DM3", (".dm3",)),
    (b"\x00\x00\x00\x04", "DigitalMicrograph DM4", (".dm4",)),
    (b"II\x97\x01", "TIA SER", (".ser",)),
)


Declared = list[tuple[str, tuple[int, ...], np.dtype]]


def _rsciio(
    path: Path,
    module: str,
    probe: Callable[[Path], Declared] | None = None,
    *,
    lazy: bool = True,
    **options: Any,
) -> Signals:
    """Signals read by ``rsciio.<module>``: lazily when it can, else whole after ``probe``."""
    file_reader = importlib.import_module(f"rsciio.{module}").file_reader
    if lazy:
        try:
            return file_reader(str(path), lazy=True, **options)
        except Exception as err:  # rosettasciio's lazy readers do not cover every variant
            _logger.debug("%s: no lazy read (%s: %s)", path.name, type(err).__name__, err)
    if probe is not None:
        check_declared(path, probe(path))
    return file_reader(str(path), **options)


def _hdf5_arrays(path: Path, under: str | None = None) -> Declared:
    """Name, shape and dtype of every numeric dataset (below the group ``under``)."""
    found: Declared = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and item.dtype.kind in "biufc":
            found.append((name, item.shape or (), item.dtype))

    with h5py.File(path, "r") as handle:
        group = handle if under is None else handle.get(under)
        if isinstance(group, h5py.Group):
            group.visititems(visit)
    return found


def _velox_image_arrays(path: Path) -> Declared:
    """The image datasets of a Velox EMD file (its spectrum streams are not read)."""
    return _hdf5_arrays(path, "Data/Image")


def _image_arrays(path: Path) -> Declared:
    """The pixel array a PNG, JPEG or BMP header declares (Pillow opens it without decoding)."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        bands = len(image.getbands())
        depth = 2 if image.mode.startswith("I;16") else 4 if image.mode in ("I", "F") else 1
    return [("pixels", (height, width, bands), np.dtype(f"u{depth}"))]


def _tiff_arrays(path: Path) -> Declared:
    """Every image series a TIFF header declares."""
    with tifffile.TiffFile(path) as tif:
        return [(f"series {i}", s.shape, s.dtype) for i, s in enumerate(tif.series)]


def _read_dm(path: Path) -> ReaderResult:
    return _rsciio(path, "digitalmicrograph"), "rsciio.digitalmicrograph", None


# TIA data type code -> dtype; series of 1D elements (spectra) and the tag with a position
_TIA_TYPES = {
    1: "<u1",
    2: "<u2",
    3: "<u4",
    4: "<i1",
    5: "<i2",
    6: "<i4",
    7: "<f4",
    8: "<f8",
    9: "<c8",
    10: "<c16",
}
_TIA_SPECTRA = 0x4120
_TIA_XY_TAG = 0x4142


def _ser_arrays(path: Path) -> Declared:
    """What rosettasciio's TIA reader allocates for a .ser file, refused where the header lies.

    The reader sizes its header record by the string lengths of the dimension records, reads
    the offset array and every valid element into memory (lazy or not) and then fills the
    declared map, all from header fields it does not compare with the file: a few bytes
    changed make it allocate gigabytes. Each field is checked here against the bytes the file
    holds; the arrays it would then allocate are returned for the size check.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:

        def unpack(offset: int, layout: str) -> tuple:
            handle.seek(offset)
            raw = handle.read(struct.calcsize(layout))
            if len(raw) < struct.calcsize(layout):
                raise ValueError(f"it ends (at {size} bytes) inside its header, at byte {offset}")
            return struct.unpack(layout, raw)

        _, _, version, series, tag_type, total, valid = unpack(0, "<3H4I")
        wide = version > 0x210  # 8-byte offsets
        offsets, ndim = unpack(22, "<QI" if wide else "<II")
        position = 34 if wide else 30
        if ndim > (size - position) // 32:  # a dimension record takes 32 bytes and its texts
            raise ValueError(f"its header declares {ndim} dimensions, more than it can hold")
        dims = []
        for _ in range(ndim):
            (dim,) = unpack(position, "<I")
            (description,) = unpack(position + 24, "<I")
            (units,) = unpack(position + 28 + description, "<I")
            position += 32 + description + units
            dims.append(dim)
        if position > size:
            raise ValueError(f"its header declares {position} bytes of dimension records")
        if valid == 0:
            return []  # rosettasciio says the file holds no valid data
        width = 8 if wide else 4
        if offsets + (valid + 1) * width > size:
            raise ValueError(f"its header declares {valid} elements at byte {offsets}")
        (first,) = unpack(offsets, "<Q" if wide else "<I")
        if series == _TIA_SPECTRA:
            code, *shape = unpack(first + 20, "<HI")
            head = 26
        else:
            code, *shape = unpack(first + 40, "<HII")
            head = 50
        if code not in _TIA_TYPES:
            raise ValueError(f"its data type code {code} is none of TIA's {sorted(_TIA_TYPES)}")
        dtype = np.dtype(_TIA_TYPES[code])
        element = head + declared_bytes(shape, dtype) + (24 if tag_type == _TIA_XY_TAG else 8)
        if valid * element > size:
            raise ValueError(
                f"its header declares {valid} element(s) of {format_bytes(element)}, more than "
                f"the file's {format_bytes(size)}"
            )
    # the signal: the valid elements of a series (or of positions only), else the declared map
    count = valid if ndim == 0 or (ndim == 1 and total != valid) else math.prod(dims)
    return [
        ("elements", (valid, element), np.dtype("u1")),
        ("signal", (count, *shape), dtype),
    ]


def _read_ser(path: Path) -> ReaderResult:
    check_declared(path, _ser_arrays(path))  # before rosettasciio reads the header's sizes
    return _rsciio(path, "tia"), "rsciio.tia", None


# MRC mode -> the dtype rosettasciio reads it as (little-endian, its default)
_MRC_MODES = {0: "u1", 1: "<i2", 2: "<f4", 4: "<c8", 6: "<u2", 12: "<f2"}
_MRC_HEADER = 1024  # bytes


def _mrc_arrays(path: Path) -> Declared:
    """The array an MRC header declares, refused unless the file holds its bytes.

    rosettasciio maps the declared (NZ, NY, NX) array, after the 1024-byte header and the NEXT
    bytes of extended header, before it reads anything: for a header that declares terabytes it
    builds per-chunk index arrays of that size (minutes of work, or a MemoryError).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(_MRC_HEADER)
    if len(header) < _MRC_HEADER:
        raise ValueError(
            f"an MRC file starts with a {_MRC_HEADER}-byte header; it has {size} bytes"
        )
    nx, ny, nz, mode = struct.unpack_from("<4I", header)
    (extended,) = struct.unpack_from("<I", header, 92)  # NEXT
    if mode not in _MRC_MODES:
        raise ValueError(f"its data mode {mode} is none of the MRC modes {sorted(_MRC_MODES)}")
    shape, dtype = (nz, ny, nx), np.dtype(_MRC_MODES[mode])
    declared, held = declared_bytes(shape, dtype), size - _MRC_HEADER - extended
    if held < declared:
        raise ValueError(
            f"its header declares {nx} x {ny} x {nz} values of {dtype} "
            f"({format_bytes(declared)}) after {extended} bytes of extended header, but the "
            f"file holds {format_bytes(max(held, 0))} of data"
        )
    return [("data", shape, dtype)]


def _read_mrc(path: Path) -> ReaderResult:
    check_declared(path, _mrc_arrays(path))  # before rosettasciio maps the declared array
    return _rsciio(path, "mrc"), "rsciio.mrc", None


def _read_image(path: Path) -> ReaderResult:
    from rsciio.image import file_reader

    check_declared(path, _image_arrays(path))  # rosettasciio reads these formats whole
    return file_reader(str(path)), "rsciio.image", None


def _emd_variant(handle: h5py.File) -> str | None:
    """'velox', 'ncem' or None, from the markers each variant writes."""
    if "Version" in handle:
        try:
            version = json.loads(bytes(handle["Version"][0]).decode("utf-8"))
        except (ValueError, TypeError, IndexError):
            version = {}
        if isinstance(version, dict) and version.get("format") in ("Velox", "DevelopersKit"):
            return "velox"
    groups = [handle, *(item for item in handle.values() if isinstance(item, h5py.Group))]
    if any("version_major" in group.attrs for group in groups):
        return "ncem"
    return None


def _read_emd(path: Path) -> ReaderResult:
    with h5py.File(path, "r") as handle:
        variant = _emd_variant(handle)
    if variant == "velox":
        # images only: spectrum images need the optional 'sparse' package and are no images
        signals = _rsciio(path, "emd", _velox_image_arrays, select_type="image")
        return signals, "rsciio.emd (Velox)", None
    return _rsciio(path, "emd", _hdf5_arrays), "rsciio.emd (NCEM)", None


def _atomlens_tiff_info(description: str | None) -> dict | None:
    """The JSON written by ``write_tiff`` into the ImageDescription, or None."""
    if not description or not description.lstrip().startswith("{"):
        return None
    try:
        info = json.loads(description)
    except ValueError:
        return None
    return info if isinstance(info, dict) and TIFF_DESCRIPTION_KEY in info else None


def _imagej_unit(tif: tifffile.TiffFile) -> str | None:
    """Length unit of an ImageJ TIFF ('nm', 'µm', ...), or None."""
    unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
    if not isinstance(unit, str):
        return None
    unit = unit.replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    return "µm" if unit == "micron" else unit


def _read_foreign_tiff(path: Path, imagej_unit: str | None) -> ReaderResult:
    # rosettasciio's lazy TIFF reader leaves the file open until garbage collection: it is
    # used only where reading the file whole would go past what atomlens info reads
    declared = sum(declared_bytes(shape, dtype) for _, shape, dtype in _tiff_arrays(path))
    signals = _rsciio(path, "tiff", _tiff_arrays, lazy=declared > DESCRIBE_VALUES_LIMIT)
    if imagej_unit is not None:
        # rosettasciio takes ImageJ's scale but keeps its unit only when it is 'micron'
        for signal in signals:
            for axis in signal["axes"][-2:]:
                if axis.get("units") is None and axis.get("name") in ("height", "width"):
                    axis["units"] = imagej_unit
    return signals, "rsciio.tiff", None


def _positive_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int of 400 digits
        return None
    return number if number > 0 and np.isfinite(number) else None


def _tiff_sampling(info: dict, user: dict) -> tuple[list[float] | None, str | None]:
    """(y, x) sampling and its unit from an atomlens TIFF description.

    ``pixel_size`` [Å] or ``angular_sampling`` [mrad] written by ``write_tiff``; failing
    those, an ``angular_sampling_mrad`` / ``angular_sampling`` entry of the user metadata.
    """
    candidates = (
        (info.get("pixel_size"), "Å"),
        (info.get("angular_sampling"), "mrad"),
        (user.get("angular_sampling_mrad", user.get("angular_sampling")), "mrad"),
    )
    for value, units in candidates:
        if value is None:
            continue
        values = [_positive_number(v) for v in np.broadcast_to(np.ravel(value), (2,))]
        if None not in values:
            return values, units
    return None, None


def _read_tiff(path: Path) -> ReaderResult:
    data = None
    with tifffile.TiffFile(path) as tif:
        info = _atomlens_tiff_info(tif.pages[0].description if tif.pages else None)
        if info is not None and tif.series:
            series = tif.series[0]
            data = Deferred(series.shape, series.dtype, lambda: tifffile.imread(path))
        imagej_unit = _imagej_unit(tif)
    if info is None or data is None:
        return _read_foreign_tiff(path, imagej_unit)
    user = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
    axes: list[dict[str, Any]] = [{"size": n} for n in data.shape]
    sampling, units = _tiff_sampling(info, user)
    if sampling is not None:
        for axis, scale in zip(axes[-2:], sampling, strict=True):
            axis.update(scale=scale, offset=0.0, units=units)
    metadata: dict[str, Any] = {"General": {"original_filename": path.name}}
    energy = _positive_number(user.get("energy", user.get("energy_eV")))
    if energy is not None:
        metadata["Acquisition_instrument"] = {"TEM": {"beam_energy": energy / 1e3}}
    if user.get("title"):
        metadata["General"]["title"] = str(user["title"])
    signal = {"data": data, "axes": axes, "metadata": metadata, "original_metadata": info}
    return [signal], "tifffile (atomlens TIFF)", None


def _hdf5_loader(path: Path, dataset: h5py.Dataset) -> Callable[[], np.ndarray]:
    """Reads ``dataset`` of ``path``, or refuses one that stores nothing (no chunk written)."""
    name, shape, dtype = dataset.name, dataset.shape, dataset.dtype
    unwritten = dataset.size > 0 and dataset.id.get_storage_size() == 0

    def load() -> np.ndarray:
        if unwritten:
            raise EmptyFileError(
                f"{path}: dataset {name!r} declares shape {shape} {dtype} "
                f"({format_bytes(declared_bytes(shape, dtype))}) but stores no data (it was "
                "created and never written); there is nothing to read"
            )
        with h5py.File(path, "r") as handle:
            return handle[name][()]

    return load


def _json_decoded(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """The attributes, those that ``write_hdf5`` stored as JSON text decoded.

    ``write_hdf5`` stores lists, dicts and arrays (a (y, x) ``pixel_size``) as JSON text and
    names them in the :data:`HDF5_JSON_ATTRS_KEY` attribute. Text that is not valid JSON is
    kept as it is.
    """
    values = dict(attrs)
    names = _json_text(values.pop(HDF5_JSON_ATTRS_KEY, None))
    for name in names if isinstance(names, list) else []:
        if isinstance(name, str) and isinstance(values.get(name), str | bytes):
            decoded = _json_text(values[name])
            values[name] = values[name] if decoded is None else decoded
    return values


def _json_text(value: Any) -> Any:
    """``value`` (str or bytes) decoded as JSON, or None."""
    if not isinstance(value, str | bytes):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # malformed, 5000-digit integers, nested too deep
        return None


def _hdf5_pixel_size(path: Path, value: Any) -> list[float] | None:
    """(y, x) pixel size [Å] from a ``pixel_size`` attribute of one or two positive numbers."""
    try:
        sizes = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError, OverflowError):
        sizes = np.zeros(0)
    if sizes.size == 1:
        sizes = np.repeat(sizes, 2)
    values = [_positive_number(v) for v in sizes] if sizes.size == 2 else [None]
    if None in values:
        _logger.warning(
            "%s: attribute pixel_size=%.80r is not one or two positive numbers of Å; the "
            "image is read uncalibrated",
            path.name,
            value,
        )
        return None
    return values


def _read_generic_hdf5(path: Path) -> ReaderResult:
    """Every numeric dataset of a plain HDF5 file, e.g. one written by ``write_hdf5``.

    A ``pixel_size`` attribute [Å] (on the dataset or the file; one number or (y, x))
    calibrates the last two axes; an ``energy`` attribute [eV] gives the beam energy. The
    datasets stay unread (:class:`~._lazy.Deferred`) until :func:`atomlens.io.read` has picked
    and size-checked one.
    """
    signals: Signals = []
    with h5py.File(path, "r") as handle:
        root_attrs = _json_decoded(handle.attrs)

        def visit(name: str, item: Any) -> None:
            if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "biufc":
                return
            attrs = {**root_attrs, **_json_decoded(item.attrs)}
            data = Deferred(item.shape or (), item.dtype, _hdf5_loader(path, item))
            axes: list[dict[str, Any]] = [{"size": n} for n in data.shape]
            pixel_size = attrs.get("pixel_size")
            if pixel_size is not None and data.ndim >= 2:
                sizes = _hdf5_pixel_size(path, pixel_size) or []
                for axis, scale in zip(axes[-2:], sizes, strict=False):
                    axis.update(scale=scale, offset=0.0, units="Å")
            metadata: dict[str, Any] = {"General": {"title": name}}
            energy = attrs.get("energy")
            energy = _positive_number(energy) if np.isscalar(energy) else None
            if energy is not None:
                metadata["Acquisition_instrument"] = {"TEM": {"beam_energy": energy / 1e3}}
            signals.append(
                {"data": data, "axes": axes, "metadata": metadata, "original_metadata": attrs}
            )

        handle.visititems(visit)
    return signals, "h5py", None


def _read_hdf5(path: Path) -> ReaderResult:
    with h5py.File(path, "r") as handle:
        file_format = handle.attrs.get("file_format", b"")
        variant = _emd_variant(handle)
    if isinstance(file_format, bytes):
        file_format = file_format.decode("utf-8", "replace")
    if str(file_format).lower() in ("hyperspy", "hspy"):
        return _rsciio(path, "hspy", _hdf5_arrays), "rsciio.hspy", "nm"
    if variant is not None:
        return _read_emd(path)
    return _read_generic_hdf5(path)


_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset [bytes] from a .npy header, read without the data."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in _NPY_HEADERS:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        shape, _, dtype = _NPY_HEADERS[version](handle)
        return tuple(shape), dtype, handle.tell()


def _read_npy(path: Path) -> ReaderResult:
    shape, dtype, offset = _npy_header(path)
    if dtype.hasobject:
        raise ValueError(f"it holds Python objects (dtype {dtype}), which atomlens never unpickles")
    declared, held = declared_bytes(shape, dtype), path.stat().st_size - offset
    if held < declared:
        raise ValueError(
            f"its header declares shape {shape} {dtype} ({format_bytes(declared)}), but the "
            f"file holds only {format_bytes(held)} of data"
        )
    data = Deferred(shape, dtype, lambda: np.load(path, allow_pickle=False))
    signal = {"data": data, "axes": [], "metadata": {}, "original_metadata": {}}
    return [signal], "numpy.load", None


READERS: dict[str, Callable[[Path], ReaderResult]] = {
    "dm3": _read_dm,
    "dm4": _read_dm,
    "emd": _read_emd,
    "ser": _read_ser,
    "mrc": _read_mrc,
    "tiff": _read_tiff,
    "png": _read_image,
    "jpeg": _read_image,
    "bmp": _read_image,
    "hdf5": _read_hdf5,
    "npy": _read_npy,
}
