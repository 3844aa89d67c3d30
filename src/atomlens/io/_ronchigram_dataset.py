"""The Ronchigram dataset (HDF5): writer and reader; the layout is in :mod:`._schemas`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from atomlens.core.validation import PARAMETERS, SizeLimitError, check_size

from ._atomic import atomic_write
from ._errors import AtomlensIOError, FileMissingError, UnreadableFileError
from ._schemas import (
    DATASET_SCHEMA,
    SETUP_KEYS,
    VERSION,
    SchemaError,
    _atomlens_version,
    _check_setup,
    _label_table,
    _setup_from_flat,
    _text,
    _version,
    aberration_units,
    check_columns,
    check_type,
    parse_json,
)
from ._write import to_jsonable

__all__ = ["RonchigramDataset", "read_ronchigram_dataset", "write_ronchigram_dataset"]


@dataclass(frozen=True, eq=False)
class RonchigramDataset:
    """A Ronchigram dataset read by :func:`read_ronchigram_dataset`.

    Attributes
    ----------
    images : ndarray of shape (N, rows, columns), float32
        The Ronchigrams, optical axis at pixel (rows // 2, columns // 2).
    aberrations : ndarray of shape (N, K), float64
        Row i: the coefficients of image i, in the order of ``columns``.
    columns : tuple of str
        abTEM names of the coefficients (C10, C12, phi12, ...).
    units : tuple of str
        Unit of each column: "Å" (C..) or "rad" (phi..).
    setup : dict
        ``energy_eV``, ``semiangle_mrad``, ``angular_sampling_mrad_per_px`` and, where known,
        ``size_px``, ``edge_width_mrad``, ``source_size_A``.
    image_units : str or None
        What the pixel values are, e.g. "counts".
    tilts : ndarray of shape (N, 2) or None
        Beam tilt (y, x) of each image [mrad].
    captions : tuple of str or None
        A short caption per image.
    parameters : dict
        Everything else the writer recorded (specimen, detector, seed, ranges, ...).
    version : int
        Schema version of the file.
    path : Path or None
        The file read.
    """

    images: np.ndarray = field(repr=False)
    aberrations: np.ndarray = field(repr=False)
    columns: tuple[str, ...]
    units: tuple[str, ...]
    setup: dict[str, Any]
    image_units: str | None = None
    tilts: np.ndarray | None = field(default=None, repr=False)
    captions: tuple[str, ...] | None = field(default=None, repr=False)
    parameters: dict[str, Any] = field(default_factory=dict, repr=False)
    version: int = VERSION
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.images)

    def labels(self, index: int) -> dict[str, float]:
        """The coefficients of image ``index`` as abTEM keywords [Å, rad]."""
        return dict(zip(self.columns, map(float, self.aberrations[index]), strict=True))


def _image_blocks(images: np.ndarray | Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    if isinstance(images, np.ndarray):
        yield images
        return
    for block in images:
        block = np.asarray(block)
        yield block[None] if block.ndim == 2 else block


def write_ronchigram_dataset(
    path: str | os.PathLike,
    images: np.ndarray | Iterable[np.ndarray],
    aberrations: Sequence[Mapping[str, float]],
    setup: Mapping[str, Any],
    *,
    columns: Sequence[str] | None = None,
    image_units: str | None = None,
    tilts: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write Ronchigrams with their aberration labels as a version-2 dataset, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination (.h5 or .hdf5).
    images : ndarray of shape (N, rows, columns), or an iterable of such blocks
        The Ronchigrams, stored as float32. Blocks (e.g. from a simulation that runs in chunks)
        are written as they arrive, so the whole set never has to be in memory.
    aberrations : sequence of dict
        One dict per image, abTEM keywords [Å, rad], e.g. ``{"C10": -200.0, "C12": 50.0,
        "phi12": 0.3}``; a name missing from a dict is 0.
    setup : dict
        ``energy_eV``, ``semiangle_mrad``, ``angular_sampling_mrad_per_px`` and optionally
        ``size_px``, ``edge_width_mrad``, ``source_size_A``.
    columns : sequence of str, optional
        Label columns to store; default every name in ``aberrations``, C.. then phi.., each by
        order.
    image_units : str, optional
        What the pixel values are, e.g. "counts".
    tilts : array of shape (N, 2), optional
        Beam tilt (y, x) of each image [mrad].
    captions : sequence of str, optional
        A short caption per image.
    parameters : dict, optional
        Anything else to record (specimen, detector, seed, ...), JSON-serialisable.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    count = len(aberrations)
    names, table = _label_table(aberrations, columns)
    setup_json = json.dumps(_check_setup(setup))
    parameters_json = json.dumps(to_jsonable(dict(parameters or {})))
    if tilts is not None:
        tilts = np.asarray(tilts, dtype=np.float64)
        if tilts.shape != (count, 2):
            raise ValueError(f"tilts must have shape ({count}, 2), got {tilts.shape}")
    if captions is not None and len(captions) != count:
        raise ValueError(f"{len(captions)} captions for {count} images")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["schema"] = DATASET_SCHEMA
            handle.attrs["version"] = VERSION
            handle.attrs["atomlens_version"] = _atomlens_version()
            handle.attrs["setup"] = setup_json
            handle.attrs["parameters"] = parameters_json
            _write_images(handle, images, count, image_units)
            labels = handle.create_dataset("aberrations", data=table)
            labels.attrs["columns"] = json.dumps(names)
            labels.attrs["units"] = json.dumps(aberration_units(names))
            if tilts is not None:
                handle.create_dataset("tilts", data=tilts).attrs["units"] = "mrad"
            if captions is not None:
                handle.create_dataset(
                    "captions", data=np.array(list(captions), dtype=h5py.string_dtype())
                )

    return atomic_write(path, write, overwrite)


def _write_images(handle: h5py.File, images, count: int, units: str | None) -> None:
    dataset, filled = None, 0
    for block in _image_blocks(images):
        if block.ndim != 3 or block.dtype.kind not in "biuf":
            raise ValueError(
                f"Ronchigrams must be real arrays (N, rows, columns), got {block.shape} "
                f"{block.dtype}"
            )
        if dataset is None:
            dataset = handle.create_dataset(
                "ronchigrams",
                shape=(count, *block.shape[1:]),
                dtype="float32",
                chunks=(1, *block.shape[1:]),  # one image per chunk: fast random access
            )  # no gzip: it saved 10 % of the size and cost a fifth of `simulate --count` time
        if filled + len(block) > count or block.shape[1:] != dataset.shape[1:]:
            raise ValueError(
                f"image block {block.shape} does not fit a dataset of {count} images of "
                f"{dataset.shape[1:]} px after {filled}"
            )
        dataset[filled : filled + len(block)] = block.astype(np.float32, copy=False)
        filled += len(block)
    if filled != count:
        raise ValueError(f"{filled} images for {count} aberration labels")
    if units is not None:
        dataset.attrs["units"] = units


def read_ronchigram_dataset(path: str | os.PathLike) -> RonchigramDataset:
    """Read a Ronchigram dataset (HDF5) of version 2, or of version 1 (earlier atomlens).

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    RonchigramDataset

    Raises
    ------
    FileMissingError, UnreadableFileError
        No such file (or a folder), not HDF5, or an array that cannot be read (truncated or
        corrupt).
    SchemaError
        Not a Ronchigram dataset, or an array or attribute that is missing or of the wrong type,
        shape or range (the message names the file and the field); :class:`SchemaVersionError`
        for one of an unknown version.
    SizeLimitError
        An array larger than the array size limit (``ATOMLENS_MAX_ARRAY_GB``); nothing was
        allocated.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise FileMissingError(f"{path} is a folder, not a Ronchigram dataset (an HDF5 file)")
    if not path.is_file():
        raise FileMissingError(f"{path} does not exist or is not a file")
    try:
        handle = h5py.File(path, "r")
    except (OSError, RuntimeError) as error:
        raise UnreadableFileError(f"cannot read {path} as HDF5: {error}") from error
    with handle:
        try:
            return _read_handle(handle, path)
        except (AtomlensIOError, SizeLimitError):
            raise
        except (OSError, RuntimeError) as error:
            # h5py could not read an array, an attribute or a link: HDF5 reports a corrupt heap
            # or B-tree as RuntimeError ("bad local heap signature"), a broken chunk as OSError
            raise UnreadableFileError(
                f"cannot read {path}: {error}; the file may be truncated or corrupt"
            ) from error
        except (TypeError, KeyError, ValueError) as error:  # types numpy has no equivalent for
            raise SchemaError(f"{path} holds data atomlens cannot interpret: {error}") from error


def _read_handle(handle: h5py.File, path: Path) -> RonchigramDataset:
    schema = check_type(_text(handle.attrs.get("schema")), str, path, "attribute 'schema'")
    if schema is None and "ronchigrams" not in handle:
        raise SchemaError(
            f"{path} is not a Ronchigram dataset: it has no 'schema' attribute and no "
            f"'ronchigrams' array (expected schema {DATASET_SCHEMA!r})"
        )
    if schema is not None and schema != DATASET_SCHEMA:
        raise SchemaError(f"{path} holds {schema!r}, not {DATASET_SCHEMA!r}")
    version = 1 if schema is None else _version(handle.attrs.get("version"), path, schema)
    return (_read_dataset_v2 if version == 2 else _read_dataset_v1)(handle, path)


# what each array holds, for messages
_LAYOUT = {
    "ronchigrams": "(N, rows, columns) real numbers",
    "aberrations": "(N, K) real numbers, one row per image",
    "tilts": "(N, 2) real numbers, beam tilt (y, x) in mrad",
    "captions": "(N,) strings",
}


def _dataset(handle: h5py.File, name: str, path: Path, *, required: bool) -> h5py.Dataset | None:
    item = handle.get(name)
    if item is None and not required:
        return None
    if item is None:
        raise SchemaError(f"{path} has no {name!r} array ({_LAYOUT[name]})")
    if not isinstance(item, h5py.Dataset):
        raise SchemaError(f"{path}: {name!r} must be an array ({_LAYOUT[name]}), got a group")
    return item


def _numbers(item: h5py.Dataset, path: Path, shape: tuple[int | str, ...], itemsize: int):
    """The array's values, after checking dtype, shape (a str: any length) and size [bytes]."""
    name = item.name.lstrip("/")
    if item.dtype.kind not in "biuf":
        raise SchemaError(
            f"{path}: {name!r} must hold real numbers ({_LAYOUT[name]}), got dtype {item.dtype}"
        )
    if len(item.shape) != len(shape) or any(
        isinstance(want, int) and n != want for n, want in zip(item.shape, shape, strict=True)
    ):
        wanted = "(" + ", ".join(map(str, shape)) + ")"
        layout = f" ({_LAYOUT[name]})" if any(isinstance(n, int) for n in shape) else ""
        raise SchemaError(f"{path}: {name!r} has shape {item.shape}, expected {wanted}{layout}")
    check_size(f"array {name!r} of {path}", item.shape, max(itemsize, item.dtype.itemsize))
    if item.size and item.id.get_storage_size() == 0:  # e.g. a 1 kB file "holding" 4 GiB
        raise SchemaError(
            f"{path}: {name!r} declares shape {item.shape} but stores no data (it was created "
            "and never written)"
        )
    return item[()]


def _in_range(values: np.ndarray, kind: str, path: Path, field: str) -> np.ndarray:
    """``values``, if all are finite and inside the valid range of ``kind``."""
    valid = PARAMETERS[kind]
    bad = ~np.isfinite(values) | (values < valid.low) | (values > valid.high)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SchemaError(
            f"{path}: {field} {list(where)} is {float(values[where]):g}; it must be a finite "
            f"number in {valid.text()}"
        )
    return values


def _json_attr(attrs, key: str, default: Any, path: Path) -> Any:
    value = _text(attrs.get(key))
    if value is None:
        return default
    return parse_json(value, f"{path}: attribute {key!r} is not valid JSON")


def _images(handle: h5py.File, path: Path) -> tuple[np.ndarray, str | None]:
    item = _dataset(handle, "ronchigrams", path, required=True)
    images = _numbers(item, path, ("N", "rows", "columns"), 4)
    units = check_type(_text(item.attrs.get("units")), str, path, "'ronchigrams' attribute units")
    return images.astype(np.float32, copy=False), units


def _labels(handle: h5py.File, columns: list[str], count: int, path: Path) -> np.ndarray:
    if not columns:
        return np.zeros((count, 0))
    item = _dataset(handle, "aberrations", path, required=True)
    table = _numbers(item, path, (count, len(columns)), 8).astype(np.float64, copy=False)
    for index, name in enumerate(columns):
        kind = "aberration_angle" if name.startswith("phi") else "aberration"
        _in_range(table[:, index], kind, path, f"'aberrations' column {name}, row")
    return table


def _optional(handle: h5py.File, count: int, path: Path):
    """Tilts (N, 2) [mrad] and captions (N,), each None when the file has none."""
    tilts = _dataset(handle, "tilts", path, required=False)
    if tilts is not None:
        tilts = _numbers(tilts, path, (count, 2), 8).astype(np.float64, copy=False)
        _in_range(tilts, "tilt", path, "'tilts'")
    item = _dataset(handle, "captions", path, required=False)
    if item is None:
        return tilts, None
    if h5py.check_string_dtype(item.dtype) is None or item.shape != (count,):
        raise SchemaError(
            f"{path}: 'captions' must be {count} strings, got {item.shape} {item.dtype}"
        )
    check_size(f"array 'captions' of {path}", item.shape, 8)
    return tilts, tuple(str(c) for c in item.asstr(errors="replace")[()])


def _read_dataset_v2(handle: h5py.File, path: Path) -> RonchigramDataset:
    images, image_units = _images(handle, path)
    labels = _dataset(handle, "aberrations", path, required=True)
    columns = check_columns(
        _json_attr(labels.attrs, "columns", None, path), path, "'aberrations' attribute columns"
    )
    units = _json_attr(labels.attrs, "units", None, path)
    if units != aberration_units(columns):
        raise SchemaError(
            f"{path}: 'aberrations' attribute units must be {aberration_units(columns)} for "
            f"columns {columns}, got {units!r}"
        )
    setup = _json_attr(handle.attrs, "setup", None, path)
    if setup is None:
        raise SchemaError(f"{path} has no 'setup' attribute (the calibration, JSON)")
    parameters = _json_attr(handle.attrs, "parameters", {}, path)
    tilts, captions = _optional(handle, len(images), path)
    return RonchigramDataset(
        images=images,
        aberrations=_labels(handle, columns, len(images), path),
        columns=tuple(columns),
        units=tuple(units),
        setup=_check_setup(setup, path),
        image_units=image_units,
        tilts=tilts,
        captions=captions,
        parameters=check_type(parameters, dict, path, "attribute 'parameters'"),
        version=2,
        path=path,
    )


def _v1_record(handle: h5py.File, path: Path) -> dict[str, Any]:
    """``simulate ronchigram --count`` (a ``parameters`` record) or the demo gallery (flat)."""
    record = _json_attr(handle.attrs, "parameters", None, path)
    if record is not None:
        return check_type(record, dict, path, "attribute 'parameters'")
    # the demo gallery, written by write_hdf5: JSON attrs listed by name
    json_keys = _json_attr(handle.attrs, "atomlens_json_attrs", [], path)
    if not isinstance(json_keys, list) or not all(isinstance(k, str) for k in json_keys):
        raise SchemaError(f"{path}: attribute 'atomlens_json_attrs' must be a list of names")
    return {
        key: (
            parse_json(_text(value), f"{path}: attribute {key!r} is not valid JSON")
            if key in json_keys
            else _plain(value)
        )
        for key, value in handle.attrs.items()
        if key != "atomlens_json_attrs"
    }


def _v1_columns(handle: h5py.File, record: dict[str, Any], path: Path) -> list[str]:
    if "aberrations" not in handle:
        return []
    columns = _json_attr(handle["aberrations"].attrs, "columns", None, path)
    field = "'aberrations' attribute columns"
    if columns is None:
        columns, field = record.get("aberration_columns"), "attribute aberration_columns"
    if columns is None:
        raise SchemaError(f"{path}: the 'aberrations' labels do not name their columns")
    return check_columns(columns, path, field)


def _read_dataset_v1(handle: h5py.File, path: Path) -> RonchigramDataset:
    """``simulate ronchigram --count`` (a ``parameters`` record) or the demo gallery (flat)."""
    images, image_units = _images(handle, path)
    record = _v1_record(handle, path)
    columns = _v1_columns(handle, record, path)
    tilts, captions = _optional(handle, len(images), path)
    labels = record.get("labels")
    if captions is None and isinstance(labels, list) and len(labels) == len(images):
        captions = tuple(str(label) for label in labels)
    setup = _check_setup(_setup_from_flat(record), path, required=False)
    if isinstance(setup.get("size_px"), int | float):
        setup["size_px"] = [setup["size_px"]] * 2
    setup.setdefault("size_px", list(images.shape[1:]))
    kept = set(SETUP_KEYS) | {"aberration_columns", "aberration_units", "labels", "units"}
    return RonchigramDataset(
        images=images,
        aberrations=_labels(handle, columns, len(images), path),
        columns=tuple(columns),
        units=tuple(aberration_units(columns)),
        setup=setup,
        image_units=image_units or check_type(record.get("units"), str, path, "units"),
        tilts=tilts,
        captions=captions,
        parameters={k: v for k, v in record.items() if k not in kept},
        version=1,
        path=path,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return _text(value)
