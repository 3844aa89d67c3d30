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
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def _check_setup(setup: Mapping[str, Any]) -> dict[str, Any]:
    missing = [key for key in _REQUIRED if key not in setup]
    if missing:
        raise ValueError(
            f"the Ronchigram setup needs {', '.join(missing)}; got keys {sorted(setup)}"
        )
    for key in _REQUIRED:
        value = setup[key]
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"setup {key} must be a positive number, got {value!r}")
    unknown = sorted(set(setup) - set(SETUP_KEYS))
    if unknown:
        raise ValueError(
            f"unknown setup keys {unknown}; a Ronchigram setup holds {list(SETUP_KEYS)} "
            "(put anything else in parameters)"
        )
    return to_jsonable(dict(setup))


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


def _text(value: Any) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value
