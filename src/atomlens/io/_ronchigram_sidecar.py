"""The Ronchigram sidecar (JSON): writer and reader; the layout is in :mod:`._schemas`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import FileMissingError, UnreadableFileError
from ._lazy import format_bytes
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
    check_aberrations,
    check_tilt,
    check_type,
    parse_json,
)
from ._write import to_jsonable, write_json

__all__ = [
    "RonchigramSidecar",
    "read_ronchigram_sidecar",
    "sidecar_path",
    "write_ronchigram_sidecar",
]

#: The largest file :func:`read_ronchigram_sidecar` reads [bytes]; a sidecar takes about 1 kB.
SIDECAR_MAX_BYTES = 1 << 20


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
        No such file (or a folder), or not JSON: malformed, not UTF-8, nested too deeply.
    SchemaError
        Not a Ronchigram sidecar: another JSON record, a file larger than
        :data:`SIDECAR_MAX_BYTES` (1 MiB), or a field of the wrong type or outside its valid
        range (the message names the field); :class:`SchemaVersionError` for one of an unknown
        version.
    """
    path = Path(path).expanduser()
    record = _json_record(path)
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
        setup=_check_setup(record["setup"], path),
        version=2,
        **_common_fields(record, path, units_key="image_units"),
    )


def _json_record(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, read only when it is a file of sidecar size."""
    if path.is_dir():
        raise FileMissingError(f"{path} is a folder, not a Ronchigram sidecar (a JSON file)")
    if not path.is_file():
        raise FileMissingError(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size > SIDECAR_MAX_BYTES:
        raise SchemaError(
            f"{path} is not a Ronchigram sidecar: it takes {format_bytes(size)}, a sidecar "
            f"about 1 kB (atomlens reads at most {format_bytes(SIDECAR_MAX_BYTES)})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableFileError(f"cannot read {path} as JSON (UTF-8 text): {error}") from error
    record = parse_json(text, f"cannot read {path} as JSON", UnreadableFileError)
    if not isinstance(record, dict):
        raise SchemaError(f"{path} is not a Ronchigram sidecar (expected a JSON object)")
    return record


def _common_fields(record: dict[str, Any], path: Path, units_key: str) -> dict[str, Any]:
    """The fields both versions share, checked: aberrations, tilt, specimen, detector, units."""
    return {
        "aberrations": check_aberrations(
            record.get("aberrations_A_rad") or {}, path, "aberrations_A_rad"
        ),
        "tilt": check_tilt(record.get("tilt_mrad"), path, "tilt_mrad"),
        "specimen": check_type(record.get("specimen"), dict, path, "specimen"),
        "detector": check_type(record.get("detector"), dict, path, "detector"),
        "image_units": check_type(record.get(units_key), str, path, units_key),
        "parameters": check_type(record.get("parameters"), dict, path, "parameters") or {},
        "path": path,
    }


def _sidecar_v1(record: dict, path: Path) -> RonchigramSidecar:
    setup = _check_setup(_setup_from_flat(record), path, required=False)
    taken = {*SETUP_KEYS, "kind", "aberrations_A_rad", "tilt_mrad", "specimen", "detector"}
    fields = _common_fields(record, path, units_key="units")
    fields["parameters"] = {k: v for k, v in record.items() if k not in taken | {"units"}}
    return RonchigramSidecar(setup=setup, version=1, **fields)
