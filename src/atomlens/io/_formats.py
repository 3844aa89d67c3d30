"""Format-specific readers behind :func:`atomlens.io.read`.

Each reader takes a path and returns ``(signals, reader_name, unitless_unit)``: a list of
rosettasciio-style signal dictionaries (``data``, ``axes``, ``metadata``,
``original_metadata``, optionally ``mapping``), the name of the library that read them, and
the unit to assume for axes that have a scale but no unit (None: treat them as uncalibrated).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import tifffile

__all__ = ["FORMATS", "READERS", "SIGNATURES", "TIFF_DESCRIPTION_KEY"]

Signals = list[dict[str, Any]]
ReaderResult = tuple[Signals, str, str | None]

# key that marks an ImageDescription written by atomlens.io.write_tiff
TIFF_DESCRIPTION_KEY = "atomlens"

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


def _read_dm(path: Path) -> ReaderResult:
    from rsciio.digitalmicrograph import file_reader

    return file_reader(str(path)), "rsciio.digitalmicrograph", None


def _read_ser(path: Path) -> ReaderResult:
    from rsciio.tia import file_reader

    return file_reader(str(path)), "rsciio.tia", None


def _read_mrc(path: Path) -> ReaderResult:
    from rsciio.mrc import file_reader

    return file_reader(str(path)), "rsciio.mrc", None


def _read_image(path: Path) -> ReaderResult:
    from rsciio.image import file_reader

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
    from rsciio.emd import file_reader

    with h5py.File(path, "r") as handle:
        variant = _emd_variant(handle)
    if variant == "velox":
        # images only: spectrum images need the optional 'sparse' package and are no images
        return file_reader(str(path), select_type="image"), "rsciio.emd (Velox)", None
    return file_reader(str(path)), "rsciio.emd (NCEM)", None


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
    from rsciio.tiff import file_reader

    signals = file_reader(str(path))
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
    except (TypeError, ValueError):
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
    with tifffile.TiffFile(path) as tif:
        info = _atomlens_tiff_info(tif.pages[0].description if tif.pages else None)
        if info is not None:
            data = tif.asarray()
        imagej_unit = _imagej_unit(tif)
    if info is None:
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


def _read_generic_hdf5(path: Path) -> ReaderResult:
    """Every numeric dataset of a plain HDF5 file, e.g. one written by ``write_hdf5``.

    A ``pixel_size`` attribute [Å] (on the dataset or the file) calibrates the last two
    axes; an ``energy`` attribute [eV] gives the beam energy.
    """
    signals: Signals = []
    with h5py.File(path, "r") as handle:
        root_attrs = dict(handle.attrs)

        def visit(name: str, item: Any) -> None:
            if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "biufc":
                return
            attrs = {**root_attrs, **dict(item.attrs)}
            data = item[()]
            axes: list[dict[str, Any]] = [{"size": n} for n in np.shape(data)]
            pixel_size = attrs.get("pixel_size")
            if pixel_size is not None and len(axes) >= 2:
                sizes = np.broadcast_to(np.asarray(pixel_size, dtype=float).ravel(), (2,))
                for axis, scale in zip(axes[-2:], sizes, strict=True):
                    axis.update(scale=float(scale), offset=0.0, units="Å")
            metadata: dict[str, Any] = {"General": {"title": name}}
            energy = attrs.get("energy")
            if energy is not None and np.ndim(energy) == 0:
                metadata["Acquisition_instrument"] = {"TEM": {"beam_energy": float(energy) / 1e3}}
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
        from rsciio.hspy import file_reader

        return file_reader(str(path)), "rsciio.hspy", "nm"
    if variant is not None:
        return _read_emd(path)
    return _read_generic_hdf5(path)


def _read_npy(path: Path) -> ReaderResult:
    data = np.load(path, allow_pickle=False)
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
