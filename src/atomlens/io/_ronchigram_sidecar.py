"""The Ronchigram sidecar (JSON): writer and reader; the layout is in :mod:`._schemas`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import FileMissingError, UnreadableFileError
from ._schemas import (
    SETUP_KEYS,
    SIDECAR_SCHEMA,
    VERSION,
    SchemaError,
    _atomlens_version,
    _check_setup,
    _label_table,
    _setup_from_flat,
    _version,
)
from ._write import to_jsonable, write_json

__all__ = [
    "RonchigramSidecar",
    "read_ronchigram_sidecar",
    "sidecar_path",
    "write_ronchigram_sidecar",
]


@dataclass(frozen=True)
class RonchigramSidecar:
    """A Ronchigram sidecar read by :func:`read_ronchigram_sidecar`.

    Attributes
    ----------
    setup : dict
        ``energy_eV``, ``semiangle_mrad``, ``angular_sampling_mrad_per_px`` and, where known,
        ``size_px``, ``edge_width_mrad``, ``source_size_A``.
    aberrations : dict
        The true coefficients, abTEM keywords [Å, rad].
    tilt : tuple of float
        Beam tilt (y, x) [mrad].
    specimen, detector : dict or None
        Their descriptions, units in the keys.
    image_units : str or None
        What the pixel values are.
    parameters : dict
        Everything else recorded (seed, oversampling, wavelength, ...).
    version : int
        Schema version of the file.
    path : Path or None
        The file read.
    """

    setup: dict[str, Any]
    aberrations: dict[str, float]
    tilt: tuple[float, float] = (0.0, 0.0)
    specimen: dict[str, Any] | None = None
    detector: dict[str, Any] | None = None
    image_units: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION
    path: Path | None = None


def sidecar_path(image: str | os.PathLike) -> Path:
    """The sidecar of an image file: the same name with the suffix ``.json``.

    >>> sidecar_path("run/ronchigram.tif").as_posix()
    'run/ronchigram.json'
    """
    return Path(image).with_suffix(".json")


def write_ronchigram_sidecar(
    path: str | os.PathLike,
    *,
    setup: Mapping[str, Any],
    aberrations: Mapping[str, float],
    tilt: Sequence[float] = (0.0, 0.0),
    specimen: Mapping[str, Any] | None = None,
    detector: Mapping[str, Any] | None = None,
    image_units: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the version-2 JSON sidecar of one Ronchigram, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination, usually :func:`sidecar_path` of the image.
    setup : dict
        ``energy_eV``, ``semiangle_mrad``, ``angular_sampling_mrad_per_px`` and optionally
        ``size_px``, ``edge_width_mrad``, ``source_size_A``.
    aberrations : dict
        abTEM keywords [Å, rad].
    tilt : (float, float)
        Beam tilt (y, x) [mrad].
    specimen, detector : dict, optional
        Descriptions with units in the keys.
    image_units : str, optional
        What the pixel values are.
    parameters : dict, optional
        Anything else to record.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    names, table = _label_table([aberrations], None)
    if len(tilt) != 2:
        raise ValueError(f"tilt is (y, x) [mrad], got {tilt!r}")
    record = {
        "schema": SIDECAR_SCHEMA,
        "version": VERSION,
        "atomlens_version": _atomlens_version(),
        "setup": _check_setup(setup),
        "aberrations_A_rad": dict(zip(names, map(float, table[0]), strict=True)),
        "tilt_mrad": [float(t) for t in tilt],
        "specimen": to_jsonable(specimen),
        "detector": to_jsonable(detector),
        "image_units": image_units,
        "parameters": to_jsonable(dict(parameters or {})),
    }
    return write_json(path, record, overwrite=overwrite)


def read_ronchigram_sidecar(path: str | os.PathLike) -> RonchigramSidecar:
    """Read a Ronchigram sidecar (JSON) of version 2, or of version 1 (earlier atomlens).

    Parameters
    ----------
    path : str or PathLike
        The JSON file (see :func:`sidecar_path`).

    Returns
    -------
    RonchigramSidecar

    Raises
    ------
    FileMissingError, UnreadableFileError
        No such file, or not JSON.
    SchemaError
        Not a Ronchigram sidecar; :class:`SchemaVersionError` for one of an unknown version.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileMissingError(f"{path} does not exist or is not a file")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableFileError(f"cannot read {path} as JSON: {error}") from error
    if not isinstance(record, dict):
        raise SchemaError(f"{path} is not a Ronchigram sidecar (expected a JSON object)")
    schema = record.get("schema")
    if schema is None and record.get("kind") == "ronchigram":
        return _sidecar_v1(record, path)
    if schema != SIDECAR_SCHEMA:
        raise SchemaError(
            f"{path} is not a Ronchigram sidecar: its schema is {schema!r}, expected "
            f'{SIDECAR_SCHEMA!r} (or a version-1 record with "kind": "ronchigram")'
        )
    _version(record.get("version"), path, schema)
    for key in ("setup", "aberrations_A_rad"):
        if not isinstance(record.get(key), dict):
            raise SchemaError(f"{path}: a Ronchigram sidecar needs a {key!r} object")
    return RonchigramSidecar(
        setup=record["setup"],
        aberrations={k: float(v) for k, v in record["aberrations_A_rad"].items()},
        tilt=tuple(record.get("tilt_mrad") or (0.0, 0.0)),
        specimen=record.get("specimen"),
        detector=record.get("detector"),
        image_units=record.get("image_units"),
        parameters=record.get("parameters") or {},
        version=2,
        path=path,
    )


def _sidecar_v1(record: dict, path: Path) -> RonchigramSidecar:
    setup = _setup_from_flat(record)
    taken = {*SETUP_KEYS, "kind", "aberrations_A_rad", "tilt_mrad", "specimen", "detector"}
    return RonchigramSidecar(
        setup=setup,
        aberrations={k: float(v) for k, v in (record.get("aberrations_A_rad") or {}).items()},
        tilt=tuple(record.get("tilt_mrad") or (0.0, 0.0)),
        specimen=record.get("specimen"),
        detector=record.get("detector"),
        image_units=record.get("units"),
        parameters={k: v for k, v in record.items() if k not in taken | {"units"}},
        version=1,
        path=path,
    )
