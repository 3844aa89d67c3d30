"""Atomic writers for results: TIFF, HDF5, CSV and JSON.

Every writer writes to a temporary file in the destination folder, flushes it to disk
(``fsync``) and only then moves it into place with one atomic rename. A failed write
removes the temporary file and leaves any existing file untouched, so a crash or a full disk
never leaves a half-written result behind. Existing files are kept unless
``overwrite=True``.
"""

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import h5py
import numpy as np
import pandas as pd
import tifffile

from ._atomic import atomic_write
from ._formats import HDF5_JSON_ATTRS_KEY, TIFF_DESCRIPTION_KEY
from ._imagedata import ImageData, validate_pixel_size
from ._lazy import check_declared

__all__ = ["read_hdf5", "write_csv", "write_hdf5", "write_json", "write_tiff"]

# arrays larger than this are gzip-compressed in HDF5 files [bytes]
_COMPRESS_ABOVE = 1 << 16
_JSON_ATTRS_KEY = HDF5_JSON_ATTRS_KEY


# ---------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Plain-Python copy of ``obj`` that :func:`json.dumps` accepts.

    numpy scalars become Python numbers, arrays nested lists, complex numbers
    ``{'real': ..., 'imag': ...}``, paths strings, dates ISO strings, dataclasses and pandas
    objects dicts / lists, and mapping keys strings. Anything else raises ``TypeError``.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, complex):
        return {"real": obj.real, "imag": obj.imag}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, Mapping):
        return {_json_key(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, datetime.date | datetime.time):
        return obj.isoformat()
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="list"))
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.tolist())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    raise TypeError(
        f"cannot write an object of type {type(obj).__name__} to JSON; convert it to "
        "numbers, strings, lists or dicts first"
    )


def _json_key(key: Any) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str | int | float | bool) or key is None:
        return key if isinstance(key, str) else json.dumps(key)
    raise TypeError(f"cannot use a key of type {type(key).__name__} in JSON: {key!r}")


def write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON (indent=2, UTF-8), atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination file.
    obj : object
        Dicts, lists, numbers, strings; numpy scalars and arrays, paths, dates, dataclasses
        and pandas objects are converted. NaN and infinity are written as ``NaN`` /
        ``Infinity`` as Python's json module does.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    TypeError
        ``obj`` holds something JSON cannot represent; nothing is written then.
    """
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite)


# ---------------------------------------------------------------------- CSV


def write_csv(path: str | os.PathLike, table: pd.DataFrame, *, overwrite: bool = False) -> Path:
    """Write a table (e.g. an atom table with columns y, x, ...) as CSV, atomically.

    The index is written only when it carries information (it has a name or is not the
    default 0..n-1 range).

    Parameters
    ----------
    path : str or PathLike
        Destination file.
    table : pandas.DataFrame
        The table.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"write_csv expects a pandas DataFrame, got {type(table).__name__}; "
            "wrap it with pandas.DataFrame(...)"
        )
    default_index = table.index.name is None and table.index.equals(pd.RangeIndex(len(table)))
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=not default_index), overwrite)


# ---------------------------------------------------------------------- TIFF


def write_tiff(
    path: str | os.PathLike,
    image: np.ndarray | ImageData,
    *,
    pixel_size: float | tuple[float, float] | None = None,
    angular_sampling: float | tuple[float, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an image (H, W) or series (T, H, W) as TIFF with its calibration, atomically.

    The dtype is kept (float32 stays float32). The pixel size [Å] (or, for a diffraction
    pattern or Ronchigram, the angular sampling [mrad]) and ``metadata`` go, as JSON, into
    the ImageDescription tag, from which :func:`atomlens.io.read` recovers them. A pixel
    size is also written to the standard resolution tags (pixels per cm), which ImageJ /
    Fiji understand.

    Parameters
    ----------
    path : str or PathLike
        Destination file (.tif or .tiff).
    image : ndarray or ImageData
        Image (H, W) or image series (T, H, W). An ImageData gives its pixel size and beam
        energy unless ``pixel_size`` / ``metadata`` are passed.
    pixel_size : float or (float, float), optional
        Pixel size [Å], one value or (y, x).
    angular_sampling : float or (float, float), optional
        Angle per pixel [mrad] of a diffraction pattern or Ronchigram, one value or (y, x);
        not together with ``pixel_size``.
    metadata : dict, optional
        JSON-serialisable information to store; an ``energy`` (or ``energy_eV``) entry [eV]
        is read back as the beam energy, a ``title`` entry as the title.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    if pixel_size is not None and angular_sampling is not None:
        raise ValueError("give pixel_size (real space, Å) or angular_sampling (mrad), not both")
    if isinstance(image, ImageData):
        if pixel_size is None and angular_sampling is None:
            pixel_size, angular_sampling = image.pixel_size, image.angular_sampling
        if metadata is None and image.energy is not None:
            metadata = {"energy": image.energy}
        image = image.data
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.dtype.kind not in "biuf":
        raise ValueError(
            f"write_tiff writes real images (H, W) or series (T, H, W); got shape {array.shape}, "
            f"dtype {array.dtype}"
        )
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    sizes = None if pixel_size is None else validate_pixel_size(pixel_size)
    angles = None if angular_sampling is None else validate_pixel_size(angular_sampling)
    description = {
        TIFF_DESCRIPTION_KEY: {"version": 1},
        "shape": list(array.shape),
        "axes": ["frame", "y", "x"][-array.ndim :],
        "pixel_size": None if sizes is None else list(sizes),
        "units": "Å",
        "angular_sampling": None if angles is None else list(angles),
        "metadata": to_jsonable(dict(metadata or {})),
    }
    text = json.dumps(description, ensure_ascii=True)
    # minisblack: never let tifffile take a (3, H, W) series for an RGB image
    options: dict[str, Any] = {"description": text, "metadata": None, "photometric": "minisblack"}
    resolution = None if sizes is None else (1e8 / sizes[1], 1e8 / sizes[0])  # pixels per cm
    if resolution is not None and all(1e-6 < value < 4e9 for value in resolution):
        options.update(resolution=resolution, resolutionunit=tifffile.RESUNIT.CENTIMETER)

    def write(tmp: Path) -> None:
        tifffile.imwrite(tmp, array, **options)

    return atomic_write(path, write, overwrite)


# ---------------------------------------------------------------------- HDF5


def _hdf5_attr(value: Any) -> tuple[Any, bool]:
    """(value to store, whether it was JSON-encoded)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value, False
    return json.dumps(to_jsonable(value)), True


def _hdf5_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, pd.DataFrame):
        value = value.to_records(index=False)
    array = np.asarray(value)
    if array.dtype.kind == "U":
        return array.astype(h5py.string_dtype())
    if array.dtype.kind == "O" or (
        array.dtype.names and any(array.dtype[field].kind == "O" for field in array.dtype.names)
    ):
        raise TypeError(
            f"dataset {name!r} has Python objects (dtype {array.dtype}); HDF5 stores numbers "
            "and strings only: convert it first (for a table use write_csv)"
        )
    return array


def write_hdf5(
    path: str | os.PathLike,
    datasets: Mapping[str, Any],
    *,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write named arrays to an HDF5 file, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination file (.h5 or .hdf5).
    datasets : dict of str to array_like
        Dataset name (``'/'`` makes groups, e.g. ``'frames/0'``) to array; numeric pandas
        DataFrames are stored as compound datasets. Arrays above 64 KiB are gzip-compressed.
    attrs : dict, optional
        File attributes. Numbers and strings are stored as they are; anything else (lists,
        dicts, arrays) as a JSON string, listed in the ``atomlens_json_attrs`` attribute so
        that :func:`read_hdf5` decodes it. A ``pixel_size`` [Å] and an ``energy`` [eV]
        attribute let :func:`atomlens.io.read` calibrate the images.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    arrays = {str(name): _hdf5_array(str(name), value) for name, value in datasets.items()}
    encoded = {key: _hdf5_attr(value) for key, value in (attrs or {}).items()}

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            for name, array in arrays.items():
                big = array.nbytes > _COMPRESS_ABOVE and array.ndim > 0
                handle.create_dataset(
                    name,
                    data=array,
                    compression="gzip" if big else None,
                    compression_opts=4 if big else None,
                )
            json_keys = [key for key, (_, is_json) in encoded.items() if is_json]
            for key, (value, _) in encoded.items():
                handle.attrs[key] = value
            if json_keys:
                handle.attrs[_JSON_ATTRS_KEY] = json.dumps(json_keys)

    return atomic_write(path, write, overwrite)


def _check_sizes(handle: h5py.File, path: Path) -> None:
    """Refuse, before reading, datasets whose declared sizes exceed the array size limit."""
    arrays: list[tuple[str, tuple[int, ...], np.dtype]] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            arrays.append((name, item.shape or (), item.dtype))

    handle.visititems(visit)
    check_declared(path, arrays)


def read_hdf5(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read back a file written by :func:`write_hdf5`.

    Parameters
    ----------
    path : str or PathLike
        The HDF5 file.

    Returns
    -------
    datasets : dict of str to ndarray
        Every dataset, by its full path without the leading '/'.
    attrs : dict
        File attributes, with JSON-encoded ones decoded.

    Raises
    ------
    SizeLimitError
        A dataset, or all of them together, larger than the array size limit
        (``ATOMLENS_MAX_ARRAY_GB``); checked from their declared shapes before any is read.
    """
    path = Path(path).expanduser()
    datasets: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as handle:
        _check_sizes(handle, path)

        def visit(name: str, item: Any) -> None:
            if isinstance(item, h5py.Dataset):
                value = item[()]
                if item.dtype.kind == "O" and h5py.check_string_dtype(item.dtype):
                    value = item.asstr()[()]
                datasets[name] = value

        handle.visititems(visit)
        attrs = {key: handle.attrs[key] for key in handle.attrs if key != _JSON_ATTRS_KEY}
        json_keys = json.loads(handle.attrs.get(_JSON_ATTRS_KEY, "[]"))
    for key in json_keys:
        attrs[key] = json.loads(attrs[key])
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            attrs[key] = value.item()
        elif isinstance(value, bytes):
            attrs[key] = value.decode("utf-8")
    return datasets, attrs
