"""Versioned file schemas: the Ronchigram dataset (HDF5) and the Ronchigram sidecar (JSON).

Both carry a ``schema`` name and an integer ``version``. The readers also take the files that
atomlens wrote before the schemas had names (version 1, see below) and refuse other schemas and
versions with an error that names the file, what it holds and what was expected.

Ronchigram dataset, HDF5, version 2::

    /                  attrs: schema = "atomlens.ronchigram-dataset", version = 2,
                              atomlens_version, setup (JSON), parameters (JSON)
    /ronchigrams       (N, rows, columns) float32; attrs: units
    /aberrations       (N, K) float64, one row per image; attrs: columns (JSON list of abTEM
                       names), units (JSON list, "Å" for C.., "rad" for phi..)
    /tilts             (N, 2) float64, beam tilt (y, x); attrs: units = "mrad"   (optional)
    /captions          (N,) strings                                              (optional)

Ronchigram sidecar, JSON beside the image (same name, ``.json``), version 2::

    {"schema": "atomlens.ronchigram-sidecar", "version": 2, "atomlens_version": ...,
     "setup": {...}, "aberrations_A_rad": {"C10": ..., ...}, "tilt_mrad": [y, x],
     "specimen": {...}, "detector": {...} or null, "image_units": "...", "parameters": {...}}

``setup`` holds ``energy_eV``, ``semiangle_mrad``, ``angular_sampling_mrad_per_px`` (required) and
``size_px``, ``edge_width_mrad``, ``source_size_A``. Version 1 is what atomlens wrote before: a
dataset with the calibration inside a ``parameters`` JSON attribute (``atomlens simulate
ronchigram --count``) or as plain file attributes with ``aberration_columns`` (the demo gallery),
and a flat sidecar marked ``"kind": "ronchigram"``.

The readers check every field they return: setup values, aberrations and tilts must be finite
numbers inside the valid ranges of :data:`atomlens.core.validation.PARAMETERS` (``size_px``:
whole numbers of pixels), arrays must hold real numbers of the documented shapes, and anything
else raises a :class:`SchemaError` that names the file and the field.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.core.validation import PARAMETERS, Range

from ._errors import AtomlensIOError
from ._write import to_jsonable

__all__ = ["DATASET_SCHEMA", "SETUP_KEYS", "SIDECAR_SCHEMA", "SchemaError", "SchemaVersionError"]

DATASET_SCHEMA = "atomlens.ronchigram-dataset"
SIDECAR_SCHEMA = "atomlens.ronchigram-sidecar"
VERSION = 2
_READS = (1, 2)

#: The setup keys, with units in the names; the first three are required.
SETUP_KEYS = (
    "energy_eV",
    "semiangle_mrad",
    "angular_sampling_mrad_per_px",
    "size_px",
    "edge_width_mrad",
    "source_size_A",
)
_REQUIRED = SETUP_KEYS[:3]
_NAME = re.compile(r"^(C|phi)(\d)(\d)$")
# the entry of core.validation.PARAMETERS that gives each setup key its valid range
_SETUP_RANGES = {
    "energy_eV": "energy",
    "semiangle_mrad": "semiangle",
    "angular_sampling_mrad_per_px": "angular_sampling",
    "size_px": "size",
    "edge_width_mrad": "edge_width",
    "source_size_A": "source_size",
}


class SchemaError(AtomlensIOError, ValueError):
    """The file is not of the expected schema (another kind of file, or a broken one)."""


class SchemaVersionError(SchemaError):
    """The file is of the expected schema but of a version this atomlens cannot read."""


# ---------------------------------------------------------------------- shared parts


def _column_order(name: str) -> tuple[int, int, int]:
    """C.. before phi.., each by order n then m (the order of ``atomlens.physics`` NAMES)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"aberration label {name!r} is not an abTEM name C<n><m> [Å] or phi<n><m> [rad], "
            "e.g. C10, C12, phi12"
        )
    return (match[1] == "phi", int(match[2]), int(match[3]))


def aberration_units(columns: Sequence[str]) -> list[str]:
    """The unit of each abTEM-named coefficient: "Å" for C<n><m>, "rad" for phi<n><m>."""
    return ["rad" if _column_order(name)[0] else "Å" for name in columns]


def _field_error(path: Path | None, message: str) -> ValueError:
    """A SchemaError naming the file when reading one, a plain ValueError when writing."""
    return SchemaError(f"{path}: {message}") if path is not None else ValueError(message)


def _range_words(valid: Range) -> str:
    if valid.low == 0 and valid.low_open:
        unit = f" {valid.unit}" if valid.unit else ""
        return f"a positive number up to {valid.high:g}{unit}"
    return f"a {'whole ' if valid.integer else ''}number in {valid.text()}"


def check_number(value: Any, kind: str, field: str, path: Path | None = None) -> float:
    """``value`` as a float if it is a number inside the valid range of ``kind``.

    Parameters
    ----------
    value : object
        The value read (or given).
    kind : str
        The entry of :data:`atomlens.core.validation.PARAMETERS` with its range and unit.
    field : str
        The field, named in the message (``"setup.energy_eV"``).
    path : Path, optional
        The file read: the error is then a :class:`SchemaError` that names it.

    Returns
    -------
    float
    """
    valid = PARAMETERS[kind]
    number = None
    if isinstance(value, numbers.Real | np.integer | np.floating) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
    if number is None or not math.isfinite(number) or not valid.contains(number):
        raise _field_error(path, f"{field} must be {_range_words(valid)}, got {_short(value)}")
    if valid.integer and number != int(number):
        raise _field_error(path, f"{field} must be {_range_words(valid)}, got {_short(value)}")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_size_px(value: Any, path: Path | None) -> None:
    values = value if isinstance(value, list | tuple) else [value]
    if len(values) not in (1, 2):
        raise _field_error(path, f"setup.size_px must be (rows, columns) px, got {_short(value)}")
    for number in values:
        check_number(number, "size", "setup.size_px", path)


def _check_setup(setup: Any, path: Path | None = None, *, required: bool = True) -> dict[str, Any]:
    """The setup as JSON-ready dict, after checking every value's type and range.

    Parameters
    ----------
    setup : mapping
        The setup keys (:data:`SETUP_KEYS`).
    path : Path, optional
        The file read; errors then name it (:class:`SchemaError`).
    required : bool
        Whether the first three keys must be there (version-1 files may lack them).
    """
    if not isinstance(setup, Mapping):
        raise _field_error(path, f"the Ronchigram setup must be an object, got {_short(setup)}")
    missing = [key for key in _REQUIRED if key not in setup] if required else []
    if missing:
        raise _field_error(
            path, f"the Ronchigram setup needs {', '.join(missing)}; got keys {sorted(setup)}"
        )
    unknown = sorted(map(str, set(setup) - set(SETUP_KEYS)))
    if unknown:
        raise _field_error(
            path,
            f"unknown setup keys {unknown}; a Ronchigram setup holds {list(SETUP_KEYS)} "
            "(put anything else in parameters)",
        )
    for key, value in setup.items():
        if value is None and key not in _REQUIRED:
            continue
        if key == "size_px":
            _check_size_px(value, path)
        else:
            check_number(value, _SETUP_RANGES[key], f"setup.{key}", path)
    return to_jsonable(dict(setup))


def check_aberrations(values: Any, path: Path, field: str) -> dict[str, float]:
    """abTEM-named coefficients read from a file [Å, rad], each a finite number in range."""
    if not isinstance(values, Mapping):
        raise SchemaError(f"{path}: {field} must be an object of abTEM names, got {_short(values)}")
    checked = {}
    for name, value in values.items():
        if not isinstance(name, str) or _NAME.match(name) is None:
            raise SchemaError(
                f"{path}: {field} holds {_short(name)}, not an abTEM name C<n><m> [Å] or "
                "phi<n><m> [rad]"
            )
        kind = "aberration_angle" if name.startswith("phi") else "aberration"
        checked[name] = check_number(value, kind, f"{field}.{name}", path)
    return checked


def check_columns(columns: Any, path: Path, field: str) -> list[str]:
    """Aberration column names read from a file: a list of distinct abTEM names."""
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise SchemaError(f"{path}: {field} must be a list of abTEM names, got {_short(columns)}")
    for name in columns:
        if _NAME.match(name) is None:
            raise SchemaError(f"{path}: {field} holds {name!r}, not an abTEM name such as C10")
    if len(set(columns)) != len(columns):
        raise SchemaError(f"{path}: {field} repeats a name: {columns}")
    return columns


def check_tilt(value: Any, path: Path, field: str) -> tuple[float, float]:
    """A beam tilt (y, x) [mrad] read from a file; None is no tilt."""
    if value is None:
        return (0.0, 0.0)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SchemaError(f"{path}: {field} must be a (y, x) pair in mrad, got {_short(value)}")
    y, x = (check_number(v, "tilt", field, path) for v in value)
    return (y, x)


def check_type(value: Any, types: type | tuple[type, ...], path: Path, field: str) -> Any:
    """``value`` if it is of ``types`` (None always passes), else a SchemaError."""
    if value is not None and not isinstance(value, types):
        names = " or ".join(
            {dict: "an object", str: "a string", list: "a list"}.get(t, t.__name__)
            for t in (types if isinstance(types, tuple) else (types,))
        )
        raise SchemaError(f"{path}: {field} must be {names}, got {_short(value)}")
    return value


def parse_json(text: Any, failure: str, error: type[Exception] = SchemaError) -> Any:
    """Parse JSON text, or raise ``error(f"{failure} (reason)")``.

    Deeply nested text (``RecursionError``), integers of thousands of digits and other
    malformed input all give that one error.
    """
    try:
        return json.loads(text)
    except RecursionError:
        reason = "it is nested too deeply"
    except (ValueError, TypeError) as err:  # JSONDecodeError, int digit limit, not text
        reason = str(err)
    raise error(f"{failure} ({reason[:200]})")


def _setup_from_flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """The setup keys of a version-1 record that lists them at its top level."""
    return {key: record[key] for key in SETUP_KEYS if record.get(key) is not None}


def _version(value: Any, path: Path, schema: str) -> int:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, int) or isinstance(value, bool) or value not in _READS:
        raise SchemaVersionError(
            f"{path} is a {schema} of version {value!r}; this atomlens reads versions "
            f"{', '.join(map(str, _READS))}. Update atomlens to read it."
        )
    return value


def _atomlens_version() -> str:
    from atomlens import __version__

    return __version__


def _label_table(
    aberrations: Sequence[Mapping[str, float]], columns: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    given = set(itertools.chain.from_iterable(aberrations))
    columns = sorted(given, key=_column_order) if columns is None else list(columns)
    for name in columns:
        _column_order(name)
    if len(set(columns)) != len(columns):
        raise ValueError(f"aberration columns repeat a name: {columns}")
    extra = given - set(columns)
    if extra:
        raise ValueError(f"aberrations name {sorted(extra)}, which are not in columns {columns}")
    table = np.array(
        [[float(a.get(name, 0.0)) for name in columns] for a in aberrations], dtype=np.float64
    ).reshape(len(aberrations), len(columns))
    if not np.isfinite(table).all():
        raise ValueError("aberration labels must be finite numbers")
    return columns, table


def _text(value: Any) -> Any:
    """A bytes value as text (undecodable bytes replaced), anything else as it is."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
