"""Property-based tests of every reader: generated files read back, mutated files fail cleanly.

The formats: atomlens's own TIFF with its Ronchigram JSON sidecar, foreign TIFF (plain, zlib,
ImageJ), .npy, plain HDF5 (``write_hdf5``), the Ronchigram dataset (HDF5, schema versions 1 and
2), HyperSpy (.hspy/.hdf5), PNG, DM3, SER and MRC. Every file is built here, small, in a
temporary folder, with the writers atomlens has, tifffile, h5py, numpy, Pillow and the format
writers of tests/io/fake_microscope_files.py.

Contract:

- a valid file with random shapes, dtypes and metadata reads back the data it was written with,
  its calibration [Å, mrad], beam energy [eV] and title, and sane metadata;
- a mutated file (truncated, bytes flipped or overwritten, huge integers spliced into its header
  and shape fields, JSON values replaced by random JSON with NaN, huge integers and deep
  nesting, HDF5 datasets and attributes deleted, retyped or linked to nowhere) makes
  ``io.read``, ``io.describe`` and the Ronchigram dataset and sidecar readers return a result or
  raise a ValueError or OSError subclass whose message names the file, never another exception;
- every call takes less than 10 s and allocates (tracemalloc, numpy included) less than the
  0.25 GiB array limit that tests/fuzz/conftest.py sets;
- reading never modifies the file (SHA-256 before and after).

The real files of the shared data folder (``ATOMLENS_REAL_DATA``) seed extra mutations when they
are present: they are read into memory and only mutated copies are written, to a temporary folder.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image

from atomlens import io
from atomlens.core.validation import max_array_bytes
from atomlens.io._metadata import to_builtin

IO_TESTS = Path(__file__).resolve().parents[1] / "io"
if str(IO_TESTS) not in sys.path:  # the format writers of tests/io (importlib import mode)
    sys.path.insert(0, str(IO_TESTS))

from fake_microscope_files import write_dm3, write_hspy, write_mrc, write_ser  # noqa: E402

#: Wall-clock bound of one read [s].
TIME_LIMIT = 10.0
#: The shared folder of real microscope files, used read-only as seeds.
REAL_FOLDER = Path(
    os.environ.get("ATOMLENS_REAL_DATA", Path(__file__).resolve().parents[3] / "shared/data/real")
)
#: Examples of the ci / thorough profile, for tests that are slower per example.
EXAMPLES = settings.default.max_examples
#: The per-format tests run 11 formats each: half the profile's examples per format keeps the
#: whole file under a minute in CI (the thorough profile still runs 125 per format).
PER_FORMAT = settings(max_examples=max(10, EXAMPLES // 2))

# ---------------------------------------------------------------------- running a reader


@pytest.fixture(scope="module", autouse=True)
def _frozen_garbage_collector():
    """Keep the objects that exist before these tests (torch, hypothesis) out of the collector.

    ``io.read`` runs a full garbage collection after each refused file, to close the files a
    third-party reader left open; in a process that has imported torch that scans some 250 000
    objects, 0.1 s a refusal. Frozen, they are skipped, and the collection still finds what the
    readers left.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _call(reader: Callable[[Path], Any], path: Path) -> Any:
    """``reader(path)`` under the contract: a result, or a ValueError/OSError naming the file.

    Returns the result, or None after an accepted error; any other exception propagates.
    """
    before = _digest(path)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = reader(path)
        outcome = "result"
    except (ValueError, OSError) as err:
        assert path.name in str(err), f"{type(err).__name__} does not name the file: {err}"
        result, outcome = None, type(err).__name__
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < TIME_LIMIT, f"{reader.__name__}({path.name}) took {elapsed:.1f} s"
    assert peak < max_array_bytes(), f"{reader.__name__}({path.name}) allocated {peak} bytes"
    assert _digest(path) == before, f"{reader.__name__} modified {path.name}"
    event(f"{reader.__name__}: {outcome}")
    if isinstance(result, io.ImageData):
        _check_sane(result)
    elif isinstance(result, str):
        result.encode("utf-8")  # `atomlens info` prints it
    return result


def _check_sane(image: io.ImageData) -> None:
    """Metadata a caller can rely on, whatever the file said."""
    assert image.data.ndim >= 2 and len(image.axes) == image.data.ndim
    assert image.data.dtype.kind in "biuf" and image.data.dtype.isnative
    assert image.kind in ("image", "diffraction", "stack", "other")
    for sampling in (image.pixel_size, image.angular_sampling):
        assert sampling is None or all(math.isfinite(v) and v > 0 for v in sampling), sampling
    assert image.energy is None or (math.isfinite(image.energy) and image.energy > 0)
    json.dumps(to_builtin(image.metadata))
    image.summary().encode("utf-8")


# ---------------------------------------------------------------------- arrays


@dataclass(frozen=True)
class ArraySpec:
    """A deterministic test array: shape, dtype, how it is filled and the seed."""

    shape: tuple[int, ...]
    dtype: str
    fill: str = "random"
    seed: int = 0

    def make(self) -> np.ndarray:
        """The array (the same for the same spec)."""
        rng = np.random.default_rng(self.seed)
        dtype = np.dtype(self.dtype).newbyteorder("=")  # drawn native, stored as asked
        size = math.prod(self.shape)
        if self.fill == "zeros":
            flat = np.zeros(size, dtype)
        elif dtype.kind == "b":
            flat = rng.random(size) < 0.5
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            if self.fill == "extremes":
                flat = np.resize(np.array([info.min, info.max, 0, 1], dtype), size)
            else:
                flat = rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True)
        else:
            info = np.finfo(dtype)
            if self.fill == "extremes":
                flat = np.resize(np.array([info.max, -info.max, info.tiny, 0.0], dtype), size)
            else:
                flat = rng.standard_normal(size) * 10.0 ** rng.uniform(-3, 3)
                if self.fill == "special":  # a few NaN and infinities, never all
                    flat[1::3] = rng.choice([np.nan, np.inf, -np.inf], len(flat[1::3]))
        return np.asarray(flat).astype(dtype).astype(self.dtype).reshape(self.shape)


def array_specs(
    dtypes: list[str], *, frames: bool = False, size: int = 24
) -> st.SearchStrategy[ArraySpec]:
    """Images (H, W), and with ``frames`` series (T, H, W), of 2..``size`` px."""
    side = st.integers(2, size)
    image = st.tuples(side, side)
    shapes = st.one_of(image, st.tuples(st.integers(2, 4), side, side)) if frames else image
    return st.builds(
        ArraySpec,
        shape=shapes,
        dtype=st.sampled_from(dtypes),
        fill=st.sampled_from(["random", "zeros", "extremes", "special"]),
        seed=st.integers(0, 2**32 - 1),
    )


# ---------------------------------------------------------------------- JSON values


def _finite_json(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**62), 2**62),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=max_leaves,
    )


#: Any JSON value, hostile ones included (NaN, infinities, huge integers).
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, -1, 0, 8, 16385]),
        st.floats(),
        st.text(max_size=8),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)

#: JSON text that Python objects cannot be dumped to: written into the text as it is.
RAW_JSON = [
    "[" * 100_000 + "]" * 100_000,  # RecursionError in json.loads
    '{"a": ' * 3000 + "1" + "}" * 3000,
    "9" * 5000,  # over Python's 4300-digit limit for int()
    "-" + "9" * 400,
    "1e999",
    "-1e999",
    "NaN",
    '"\\ud800"',  # a lone surrogate: a str that cannot be encoded as UTF-8
    '"\\u0000"',
    '"' + "x" * 100_000 + '"',
]
_RAW = "@@atomlens-raw@@"

JSON_EDITS = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**6), JSON_VALUES),
    st.tuples(st.just("raw"), st.integers(0, 10**6), st.sampled_from(RAW_JSON)),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("add"), st.integers(0, 10**6), st.text(max_size=12), JSON_VALUES),
)


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON tree, the root first."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _json_paths(item, (*prefix, index))
    return paths


def mutate_json(text: str, edits: list[tuple]) -> str:
    """``text`` (JSON) with ``edits`` applied; the result need not be valid JSON."""
    record = json.loads(text)
    raws = []
    for edit in edits:
        paths = _json_paths(record)
        path = paths[edit[1] % len(paths)]
        kind = edit[0]
        if kind == "raw":
            raws.append(edit[2])
            value = f"{_RAW}{len(raws) - 1}"
        elif kind == "replace":
            value = edit[2]
        if not path:  # the root
            if kind == "delete":
                record = {}
            elif kind == "add" and isinstance(record, dict):
                record[edit[2]] = edit[3]
            elif kind == "add" and isinstance(record, list):
                record.append(edit[3])
            elif kind == "add":
                record = {edit[2]: edit[3]}
            else:
                record = value
            continue
        *parents, last = path
        parent = record
        for key in parents:
            parent = parent[key]
        if kind == "delete":
            del parent[last]
        elif kind == "add":
            target = parent[last]
            if isinstance(target, dict):
                target[edit[2]] = edit[3]
            elif isinstance(target, list):
                target.append(edit[3])
            else:
                parent[last] = edit[3]
        else:
            parent[last] = value
    out = json.dumps(record)
    for index, raw in enumerate(raws):
        out = out.replace(json.dumps(f"{_RAW}{index}"), raw)
    return out


# ---------------------------------------------------------------------- byte mutations

#: Huge, negative and boundary integers spliced into headers and shape fields.
HUGE = [0, 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 2**64 - 1, -1, -(2**31)]
_FRACTION = st.floats(0, 1, exclude_max=True)
_WIDTH = st.sampled_from([2, 4, 8])
_ORDER = st.sampled_from(["little", "big"])

BYTE_MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), _FRACTION),
    st.tuples(st.just("flip"), _FRACTION, st.integers(1, 255)),
    st.tuples(st.just("overwrite"), _FRACTION, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("header"), st.integers(0, 511), st.sampled_from(HUGE), _WIDTH, _ORDER),
    st.tuples(st.just("anywhere"), _FRACTION, st.sampled_from(HUGE), _WIDTH, _ORDER),
    st.tuples(st.just("shape"), st.integers(0, 10**6), st.sampled_from(HUGE), _WIDTH, _ORDER),
    st.tuples(st.just("text"), st.integers(0, 10**6), st.sampled_from(HUGE)),
)


def _integer(value: int, width: int, order: str) -> bytes:
    return (value % 2 ** (8 * width)).to_bytes(width, order)


def _occurrences(content: bytes, needles: list[bytes]) -> list[tuple[int, int]]:
    """(offset, length) of every occurrence of the needles."""
    found = []
    for needle in needles:
        start = content.find(needle)
        while start >= 0:
            found.append((start, len(needle)))
            start = content.find(needle, start + 1)
    return sorted(found)


def mutate_bytes(content: bytes, mutations: list[tuple], dims: tuple[int, ...]) -> bytes:
    """``content`` with ``mutations`` applied; ``dims`` are the array sizes written in it."""
    data = bytearray(content)
    for mutation in mutations:
        kind = mutation[0]
        if not data:
            break
        if kind == "truncate":
            del data[int(mutation[1] * len(data)) :]
        elif kind == "flip":
            data[int(mutation[1] * len(data))] ^= mutation[2]
        elif kind == "overwrite":
            offset = int(mutation[1] * len(data))
            data[offset : offset + len(mutation[2])] = mutation[2]
        elif kind in ("header", "anywhere"):
            _, where, value, width, order = mutation
            offset = where % len(data) if kind == "header" else int(where * len(data))
            data[offset : offset + width] = _integer(value, width, order)
        elif kind == "shape":  # a binary integer equal to one of the array sizes
            _, which, value, width, order = mutation
            spots = _occurrences(bytes(data), [_integer(n, width, order) for n in set(dims)])
            if spots:
                offset, length = spots[which % len(spots)]
                data[offset : offset + length] = _integer(value, width, order)
        elif kind == "text":  # a decimal number equal to one of the array sizes (npy, JSON)
            _, which, value = mutation
            padded = b" " + bytes(data) + b" "  # every number has a neighbour on both sides
            spots = [
                (offset - 1, length)
                for offset, length in _occurrences(padded, [str(n).encode() for n in dims])
                if not padded[offset - 1 : offset].isdigit()
                and not padded[offset + length : offset + length + 1].isdigit()
            ]
            if spots:
                offset, length = spots[which % len(spots)]
                data[offset : offset + length] = str(value).encode()
    return bytes(data)


# ---------------------------------------------------------------------- HDF5 mutations


def _unwritten(handle: h5py.Group, name: str) -> None:
    handle.create_dataset(name, (2**20, 2**20), "f4", chunks=(64, 64))


#: What an HDF5 object may be replaced with.
H5_REPLACEMENTS: dict[str, Callable[[h5py.Group, str], Any]] = {
    "group": lambda g, n: g.create_group(n),
    "text": lambda g, n: g.create_dataset(n, data="not numbers"),
    "strings": lambda g, n: g.create_dataset(n, data=np.array([b"a", b"\xff\xfe"])),
    "scalar": lambda g, n: g.create_dataset(n, data=7.0),
    "1d": lambda g, n: g.create_dataset(n, data=np.arange(5.0)),
    "4d": lambda g, n: g.create_dataset(n, data=np.ones((2, 3, 4, 5), "f4")),
    "nan": lambda g, n: g.create_dataset(n, data=np.full((3, 4), np.nan)),
    "complex": lambda g, n: g.create_dataset(n, data=np.ones((3, 4), "c8")),
    "bool": lambda g, n: g.create_dataset(n, data=np.ones((3, 4), bool)),
    "compound": lambda g, n: g.create_dataset(n, data=np.zeros((3, 4), "i4,f8")),
    "empty": lambda g, n: g.create_dataset(n, data=np.zeros((0, 5), "f4")),
    "null": lambda g, n: g.create_dataset(n, data=h5py.Empty("f4")),
    "unwritten": _unwritten,
    "vlen": lambda g, n: g.create_dataset(n, (3,), dtype=h5py.vlen_dtype("i4")),
    "big_endian": lambda g, n: g.create_dataset(n, data=np.arange(12, dtype=">f8").reshape(3, 4)),
    "uint64": lambda g, n: g.create_dataset(n, data=np.full((3, 4), 2**64 - 1, "u8")),
    "dangling": lambda g, n: g.__setitem__(n, h5py.SoftLink("/nowhere")),
    "external": lambda g, n: g.__setitem__(n, h5py.ExternalLink("missing.h5", "/data")),
    "cycle": lambda g, n: g.__setitem__(n, g.file["/"]),
}

#: What an HDF5 attribute may be set to (JSON text comes from JSON_VALUES and RAW_JSON).
H5_ATTRS: dict[str, Any] = {
    "text": "text",
    "bad_utf8": np.bytes_(b"\xff\xfe\x00"),
    "int64": np.int64(2**63 - 1),
    "uint64": np.uint64(2**64 - 1),
    "negative": np.int64(-1),
    "nan": np.float64(np.nan),
    "inf": np.float64(np.inf),
    "array": np.arange(3),
    "empty_array": np.zeros(0),
    "matrix": np.zeros((2, 2)),
    "strings": np.array(["a", "b"], dtype=h5py.string_dtype()),
    "bool": np.bool_(True),
    "complex": np.complex128(1 + 2j),
    "null": h5py.Empty("f4"),
    "compound": np.zeros((), "i4,f8"),
    "version": np.int64(2),
    "schema": "atomlens.ronchigram-dataset",
    "hyperspy": "HyperSpy",
}
#: Attribute names the readers look for.
H5_ATTR_NAMES = [
    "schema",
    "version",
    "setup",
    "parameters",
    "columns",
    "units",
    "pixel_size",
    "energy",
    "file_format",
    "file_format_version",
    "atomlens_json_attrs",
    "aberration_columns",
    "labels",
    "energy_eV",
    "title",
    "size",
    "scale",
    "offset",
    "navigate",
    "signal_type",
    "version_major",
]

H5_MUTATIONS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("replace"), st.integers(0, 10**6), st.sampled_from(sorted(H5_REPLACEMENTS))),
    st.tuples(st.just("delete_attr"), st.integers(0, 10**6)),
    st.tuples(
        st.just("set_attr"),
        st.integers(0, 10**6),
        st.sampled_from(H5_ATTR_NAMES),
        st.sampled_from(sorted(H5_ATTRS)),
    ),
    st.tuples(
        st.just("json_attr"),
        st.integers(0, 10**6),
        st.sampled_from(H5_ATTR_NAMES),
        st.one_of(JSON_VALUES.map(json.dumps), st.sampled_from(RAW_JSON)),
    ),
    st.tuples(st.just("edit_json_attr"), st.integers(0, 10**6), st.lists(JSON_EDITS, max_size=2)),
)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def mutate_hdf5(path: Path, mutations: list[tuple]) -> None:
    """Apply ``mutations`` to the objects and attributes of the HDF5 file ``path``."""
    with h5py.File(path, "r+") as handle:
        for mutation in mutations:
            names: list[str] = []
            handle.visit(names.append)
            owners = ["/", *names]
            attrs = [(owner, key) for owner in owners for key in handle[owner].attrs]
            kind, which = mutation[0], mutation[1]
            if kind in ("delete", "replace") and names:
                name = names[which % len(names)]
                parent, _, leaf = name.rpartition("/")
                group = handle[parent or "/"]
                del group[leaf]
                if kind == "replace":
                    H5_REPLACEMENTS[mutation[2]](group, leaf)
            elif kind == "delete_attr" and attrs:
                owner, key = attrs[which % len(attrs)]
                del handle[owner].attrs[key]
            elif kind in ("set_attr", "json_attr"):
                owner = owners[which % len(owners)]
                value = H5_ATTRS[mutation[3]] if kind == "set_attr" else mutation[3]
                handle[owner].attrs[mutation[2]] = value
            elif kind == "edit_json_attr":
                texts = []
                for owner, key in attrs:
                    value = handle[owner].attrs[key]
                    if isinstance(value, str) and value[:1] in "[{" and _is_json(value):
                        texts.append((owner, key, value))
                if texts:
                    owner, key, value = texts[which % len(texts)]
                    handle[owner].attrs[key] = mutate_json(value, mutation[2])


# ---------------------------------------------------------------------- valid files


@dataclass
class Written:
    """A file written for a test, and what reading it must give back.

    ``data`` is what ``io.read`` returns (None: ``io.read`` does not apply); ``pixel_size`` [Å]
    or ``angular_sampling`` [mrad] the (y, x) calibration (None: uncalibrated); ``energy`` [eV].
    """

    path: Path
    dims: tuple[int, ...]
    data: np.ndarray | None = None
    pixel_size: tuple[float, float] | None = None
    angular_sampling: tuple[float, float] | None = None
    energy: float | None = None
    title: str | None = None
    readers: tuple[Callable[[Path], Any], ...] = (io.read, io.describe)
    check: Callable[[Any], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


SCALES = st.floats(1e-4, 1e4)
TITLES = st.text(
    st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)
ABERRATIONS = ["C10", "C12", "phi12", "C21", "phi21", "C23", "phi23", "C30", "C32", "phi32"]
_LENGTH_UNITS = {"nm": 10.0, "µm": 1e4, "pm": 0.01, "Å": 1.0}


def _pair(value: float | tuple[float, float]) -> tuple[float, float]:
    return (value, value) if isinstance(value, float) else tuple(value)


def _setups() -> st.SearchStrategy[dict[str, Any]]:
    required = st.fixed_dictionaries(
        {
            "energy_eV": st.floats(1e3, 1e7),
            "semiangle_mrad": st.floats(1e-3, 500),
            "angular_sampling_mrad_per_px": st.floats(1e-3, 100),
        },
        optional={
            "size_px": st.lists(st.integers(8, 16384), min_size=2, max_size=2),
            "edge_width_mrad": st.floats(0, 100),
            "source_size_A": st.floats(0, 100),
        },
    )
    return required


def _aberrations() -> st.SearchStrategy[dict[str, float]]:
    def value(name: str) -> st.SearchStrategy[float]:
        return st.floats(-1e3, 1e3) if name.startswith("phi") else st.floats(-1e8, 1e8)

    return st.lists(st.sampled_from(ABERRATIONS), unique=True, max_size=5).flatmap(
        lambda names: st.fixed_dictionaries({name: value(name) for name in names})
    )


def _sidecar_specs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "setup": _setups(),
            "aberrations": _aberrations(),
            "tilt": st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
            "specimen": st.none() | st.dictionaries(st.text(max_size=5), _finite_json()),
            "detector": st.none() | st.dictionaries(st.text(max_size=5), _finite_json()),
            "image_units": st.none() | st.text(max_size=8),
            "parameters": st.dictionaries(st.text(max_size=5), _finite_json(), max_size=3),
        }
    )


def _check_sidecar(sidecar: io.RonchigramSidecar, spec: dict[str, Any]) -> None:
    assert sidecar.version == 2
    assert sidecar.setup == spec["setup"] and sidecar.aberrations == spec["aberrations"]
    assert sidecar.tilt == spec["tilt"] and sidecar.image_units == spec["image_units"]
    assert sidecar.specimen == spec["specimen"] and sidecar.detector == spec["detector"]
    assert sidecar.parameters == spec["parameters"]


# atomlens TIFF + sidecar ------------------------------------------------------------------

_RESERVED = {"energy", "energy_eV", "title", "angular_sampling", "angular_sampling_mrad"}


@st.composite
def atomlens_tiff_specs(draw) -> dict[str, Any]:
    array = draw(array_specs(["u1", "u2", "i2", "i4", "f4", "f8", "b1"], frames=True))
    calibration = draw(st.sampled_from([None, "pixel_size", "angular_sampling"]))
    metadata = draw(
        st.dictionaries(st.text(max_size=6).filter(lambda k: k not in _RESERVED), _finite_json())
    )
    energy = draw(st.none() | st.floats(1e3, 1e7))
    title = draw(st.none() | TITLES)
    if energy is not None:
        metadata["energy"] = energy
    if title is not None:
        metadata["title"] = title
    return {
        "array": array,
        calibration or "uncalibrated": draw(SCALES | st.tuples(SCALES, SCALES)),
        "metadata": metadata,
        "sidecar": draw(_sidecar_specs()),
    }


def write_atomlens_tiff(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    calibration = {k: spec[k] for k in ("pixel_size", "angular_sampling") if k in spec}
    path = io.write_tiff(folder / "image.tif", array, metadata=spec["metadata"], **calibration)
    sidecar = io.write_ronchigram_sidecar(io.sidecar_path(path), **spec["sidecar"])
    metadata = spec["metadata"]
    return Written(
        path,
        array.shape,
        data=array.astype(np.uint8) if array.dtype == bool else array,
        pixel_size=_pair(spec["pixel_size"]) if "pixel_size" in spec else None,
        angular_sampling=_pair(spec["angular_sampling"]) if "angular_sampling" in spec else None,
        energy=metadata.get("energy"),
        title=str(metadata["title"]) if metadata.get("title") else None,
        extra={"sidecar": sidecar},
    )


def _check_atomlens_tiff_pair(written: Written, spec: dict[str, Any]) -> None:
    sidecar = _call(io.read_ronchigram_sidecar, written.extra["sidecar"])
    _check_sidecar(sidecar, spec["sidecar"])


@st.composite
def sidecar_specs(draw) -> dict[str, Any]:
    return {"sidecar": draw(_sidecar_specs()), "v1": draw(st.booleans())}


def write_sidecar(folder: Path, spec: dict[str, Any]) -> Written:
    """A version-2 sidecar, or the flat version-1 record written from the same values."""
    values = spec["sidecar"]
    path = folder / "image.json"
    if spec["v1"]:
        record = {
            "kind": "ronchigram",
            **values["setup"],
            "aberrations_A_rad": values["aberrations"],
            "tilt_mrad": list(values["tilt"]),
            "specimen": values["specimen"],
            "detector": values["detector"],
            "units": values["image_units"],
        }
        io.write_json(path, record)
    else:
        io.write_ronchigram_sidecar(path, **values)
    return Written(path, (), readers=(io.read_ronchigram_sidecar,))


def _check_sidecar_file(written: Written, spec: dict[str, Any]) -> None:
    sidecar = _call(io.read_ronchigram_sidecar, written.path)
    if spec["v1"]:
        assert sidecar.version == 1 and sidecar.setup == spec["sidecar"]["setup"]
        assert sidecar.aberrations == spec["sidecar"]["aberrations"]
        assert sidecar.tilt == spec["sidecar"]["tilt"]
    else:
        _check_sidecar(sidecar, spec["sidecar"])


# foreign TIFF ------------------------------------------------------------------------------


_ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126))


@st.composite
def foreign_tiff_specs(draw) -> dict[str, Any]:
    imagej = draw(st.booleans())
    dtypes = ["u1", "u2", "f4"] if imagej else ["u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"]
    return {
        "array": draw(array_specs(dtypes, frames=True)),
        "imagej": imagej,
        "pixel_nm": draw(st.none() | st.floats(1e-3, 1e3)),
        "compression": draw(st.sampled_from([None, "zlib"])),
        "description": draw(st.none() | _ASCII),
    }


def write_foreign_tiff(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = folder / "foreign.tiff"
    options: dict[str, Any] = {"compression": spec["compression"]}
    pixel = None
    if spec["imagej"]:
        options["imagej"] = True
        options["metadata"] = {"unit": "nm"} if spec["pixel_nm"] else {}
        if spec["pixel_nm"]:
            options["resolution"] = (1 / spec["pixel_nm"], 1 / spec["pixel_nm"])
            pixel = (spec["pixel_nm"] * 10, spec["pixel_nm"] * 10)
    else:
        options.update(photometric="minisblack", metadata=None, description=spec["description"])
    tifffile.imwrite(path, array, **options)
    return Written(path, array.shape, data=array, pixel_size=pixel)


# .npy --------------------------------------------------------------------------------------

_NPY_DTYPES = ["<f4", ">f4", "<f8", ">f8", "<f2", "<u2", ">u2", "|u1", "|i1", "<i4", ">i8"]


@st.composite
def npy_specs(draw) -> dict[str, Any]:
    return {
        "array": draw(array_specs([*_NPY_DTYPES, "<u8", "|b1"], frames=True)),
        "fortran": draw(st.booleans()),
    }


def write_npy(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    if spec["fortran"]:
        array = np.asfortranarray(array)
    path = folder / "image.npy"
    np.save(path, array)
    return Written(path, array.shape, data=array)


# plain HDF5 ------------------------------------------------------------------------------


@st.composite
def hdf5_specs(draw) -> dict[str, Any]:
    return {
        "array": draw(array_specs(["u1", "u2", "i2", "i4", "i8", "f4", "f8", "b1"], frames=True)),
        "name": draw(st.sampled_from(["image", "data", "frames/0", "deep/er/image"])),
        "profile": draw(st.booleans()),  # a 1D dataset sorted first, skipped by read
        "pixel_size": draw(st.none() | SCALES | st.tuples(SCALES, SCALES).map(list)),
        "energy": draw(st.none() | st.floats(1e3, 1e7)),
        "extra": draw(st.dictionaries(st.sampled_from(["note", "list"]), _finite_json())),
    }


def write_plain_hdf5(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    datasets = {spec["name"]: array}
    if spec["profile"]:
        datasets["a_profile"] = np.arange(7.0)
    attrs = dict(spec["extra"])
    for key in ("pixel_size", "energy"):
        if spec[key] is not None:
            attrs[key] = spec[key]
    path = io.write_hdf5(folder / "plain.h5", datasets, attrs=attrs)
    pixel = spec["pixel_size"]
    return Written(
        path,
        array.shape,
        data=array,
        pixel_size=None if pixel is None else _pair(pixel),
        energy=spec["energy"],
        readers=(io.read, io.describe, io.read_ronchigram_dataset),
    )


# Ronchigram datasets ---------------------------------------------------------------------


#: Keys of the free parameters of a dataset: none that version 1 reads as a field, and none that
#: HDF5 cannot name an attribute with (empty, or with a NUL character).
_V1_FREE_KEYS = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=5).filter(
    lambda key: key not in {"units", "kind", "seed"}
)


@st.composite
def dataset_specs(draw) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    images = draw(array_specs(["f4", "u2"], size=16))  # the writer stores float32
    images = ArraySpec((count, *images.shape), images.dtype, images.fill, images.seed)
    return {
        "images": images,
        "aberrations": draw(st.lists(_aberrations(), min_size=count, max_size=count)),
        "setup": draw(_setups()),
        "image_units": draw(st.none() | st.text(max_size=8)),
        "tilts": draw(st.none() | st.integers(0, 2**32 - 1)),
        "captions": draw(st.none() | st.lists(TITLES, min_size=count, max_size=count)),
        "parameters": draw(st.dictionaries(_V1_FREE_KEYS, _finite_json(), max_size=3)),
        "layout": draw(st.sampled_from(["v2", "v1 cli", "v1 demo"])),
    }


def write_dataset(folder: Path, spec: dict[str, Any]) -> Written:
    """A Ronchigram dataset of version 2, or one of the two layouts of version 1."""
    images = spec["images"].make()
    count = len(images)
    tilts = None
    if spec["tilts"] is not None:
        tilts = np.random.default_rng(spec["tilts"]).uniform(-500, 500, (count, 2))
    path = folder / "dataset.h5"
    columns = sorted({n for a in spec["aberrations"] for n in a}, key=ABERRATIONS.index)
    table = np.array([[a.get(n, 0.0) for n in columns] for a in spec["aberrations"]])
    table = table.reshape(count, len(columns))
    if spec["layout"] == "v2":
        io.write_ronchigram_dataset(
            path,
            images,
            spec["aberrations"],
            spec["setup"],
            image_units=spec["image_units"],
            tilts=tilts,
            captions=spec["captions"],
            parameters=spec["parameters"],
        )
        columns = sorted(columns, key=lambda n: (n.startswith("phi"), n[-2:]))
        table = np.array([[a.get(n, 0.0) for n in columns] for a in spec["aberrations"]])
    elif spec["layout"] == "v1 cli":
        record = {**spec["parameters"], **spec["setup"], "kind": "ronchigram", "seed": 3}
        with h5py.File(path, "w") as handle:
            handle.create_dataset("ronchigrams", data=images)
            handle.create_dataset("aberrations", data=table).attrs["columns"] = json.dumps(columns)
            if tilts is not None:
                handle.create_dataset("tilts", data=tilts).attrs["units"] = "mrad"
            handle.attrs["parameters"] = json.dumps(record)
    else:
        attrs = {**spec["parameters"], **spec["setup"], "aberration_columns": columns}
        io.write_hdf5(path, {"ronchigrams": images, "aberrations": table}, attrs=attrs)
    return Written(
        path,
        images.shape,
        readers=(io.read, io.describe, io.read_ronchigram_dataset),
        extra={"images": images, "columns": columns, "table": table.reshape(count, -1)},
    )


def _check_dataset(written: Written, spec: dict[str, Any]) -> None:
    dataset = _call(io.read_ronchigram_dataset, written.path)
    assert dataset.version == (2 if spec["layout"] == "v2" else 1)
    assert np.array_equal(
        dataset.images, written.extra["images"].astype(np.float32), equal_nan=True
    )
    assert dataset.images.dtype == np.float32 and len(dataset) == len(written.extra["images"])
    assert list(dataset.columns) == written.extra["columns"]
    assert np.array_equal(dataset.aberrations, written.extra["table"])
    for key, value in spec["setup"].items():
        assert dataset.setup[key] == value
    if spec["layout"] == "v2":
        assert dataset.image_units == spec["image_units"]
        assert dataset.parameters == spec["parameters"]
        captions = spec["captions"]
        assert dataset.captions == (None if captions is None else tuple(captions))


# HyperSpy ----------------------------------------------------------------------------------


@st.composite
def hspy_specs(draw) -> dict[str, Any]:
    return {
        "array": draw(array_specs(["u1", "u2", "i4", "f4", "f8"])),
        "scale": draw(SCALES | st.just(1.0)),
        "units": draw(st.sampled_from([None, "nm", "Å", "µm", "pm"])),
        "title": draw(TITLES),
        "suffix": draw(st.sampled_from([".hspy", ".hdf5"])),
    }


def write_hyperspy(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = write_hspy(
        folder / f"image{spec['suffix']}",
        array,
        scale=spec["scale"],
        units=spec["units"],
        title=spec["title"],
    )
    units, scale = spec["units"], spec["scale"]
    if units is None:  # HyperSpy's default unit, when the scale is not the default 1
        units = None if scale == 1.0 else "nm"
    pixel = None if units is None else (scale * _LENGTH_UNITS[units],) * 2
    return Written(
        path,
        array.shape,
        data=array,
        pixel_size=pixel,
        title=spec["title"] or None,
        readers=(io.read, io.describe, io.read_ronchigram_dataset),
    )


# PNG ---------------------------------------------------------------------------------------


@st.composite
def png_specs(draw) -> dict[str, Any]:
    mode = draw(st.sampled_from(["L", "I;16", "RGB grey", "RGB colour"]))
    dtype = "u2" if mode == "I;16" else "u1"
    return {"array": draw(array_specs([dtype])), "mode": mode}


def write_png(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = folder / "image.png"
    expected = array
    if spec["mode"] == "RGB grey":
        Image.fromarray(np.stack([array] * 3, axis=-1)).save(path)
    elif spec["mode"] == "RGB colour":
        rgb = np.stack([array, array[::-1], array[:, ::-1]], axis=-1)
        Image.fromarray(rgb).save(path)
        expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype("f4")
        if all(np.array_equal(rgb[..., 0], rgb[..., i]) for i in (1, 2)):
            expected = array
    else:
        Image.fromarray(array).save(path)
    return Written(path, array.shape, data=expected)


# DM3, SER, MRC ---------------------------------------------------------------------------


@st.composite
def dm3_specs(draw) -> dict[str, Any]:
    return {
        "array": draw(array_specs(["i2", "f4", "u1", "i4", "i1", "u2", "u4", "f8"])),
        "scale": draw(SCALES),
        "units": draw(st.sampled_from(["nm", "µm", "pm", "Å", ""])),
        "voltage": draw(st.none() | st.floats(1e3, 1e7)),
        "title": draw(TITLES),
    }


def write_dm(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = write_dm3(
        folder / "image.dm3",
        array,
        scale=spec["scale"],
        units=spec["units"],
        voltage=spec["voltage"],
        title=spec["title"],
    )
    scale = float(np.float32(spec["scale"]))  # DigitalMicrograph stores float32
    units = spec["units"]
    pixel = (scale * _LENGTH_UNITS[units],) * 2 if units else None
    return Written(path, array.shape, data=array, pixel_size=pixel, energy=spec["voltage"])


@st.composite
def ser_specs(draw) -> dict[str, Any]:
    dtypes = ["u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"]
    return {"array": draw(array_specs(dtypes)), "pixel_m": draw(st.floats(1e-12, 1e-6))}


def write_tia(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = write_ser(folder / "image_1.ser", array, pixel_size=spec["pixel_m"])
    return Written(path, array.shape, data=array, pixel_size=(spec["pixel_m"] * 1e10,) * 2)


@st.composite
def mrc_specs(draw) -> dict[str, Any]:
    return {"array": draw(array_specs(["f4"], frames=True)), "pixel": draw(st.floats(1e-2, 1e2))}


def write_mrc_file(folder: Path, spec: dict[str, Any]) -> Written:
    array = spec["array"].make()
    path = write_mrc(folder / "image.mrc", array, pixel_size=spec["pixel"])
    pixel = float(np.float32(spec["pixel"] * array.shape[-1])) / array.shape[-1]
    return Written(path, array.shape, data=array, pixel_size=(pixel, pixel))


@dataclass(frozen=True)
class Format:
    """How to make valid files of one format, and the extra round-trip checks it needs."""

    specs: st.SearchStrategy[dict[str, Any]]
    write: Callable[[Path, dict[str, Any]], Written]
    check: Callable[[Written, dict[str, Any]], None] | None = None


FORMATS: dict[str, Format] = {
    "atomlens-tiff": Format(atomlens_tiff_specs(), write_atomlens_tiff, _check_atomlens_tiff_pair),
    "sidecar": Format(sidecar_specs(), write_sidecar, _check_sidecar_file),
    "foreign-tiff": Format(foreign_tiff_specs(), write_foreign_tiff),
    "npy": Format(npy_specs(), write_npy),
    "hdf5": Format(hdf5_specs(), write_plain_hdf5),
    "ronchigram-dataset": Format(dataset_specs(), write_dataset, _check_dataset),
    "hyperspy": Format(hspy_specs(), write_hyperspy),
    "png": Format(png_specs(), write_png),
    "dm3": Format(dm3_specs(), write_dm),
    "ser": Format(ser_specs(), write_tia),
    "mrc": Format(mrc_specs(), write_mrc_file),
}
HDF5_FORMATS = ["hdf5", "ronchigram-dataset", "hyperspy"]


def _same(value: tuple[float, float] | None, expected: tuple[float, float] | None) -> bool:
    if value is None or expected is None:
        return value is expected
    return all(math.isclose(v, e, rel_tol=1e-6) for v, e in zip(value, expected, strict=True))


# ---------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", sorted(FORMATS))
@PER_FORMAT
@given(data=st.data())
def test_valid_file_reads_back_its_data_and_metadata(name, data):
    fmt = FORMATS[name]
    spec = data.draw(fmt.specs, label="spec")
    with tempfile.TemporaryDirectory() as tmp:
        written = fmt.write(Path(tmp), spec)
        if written.data is not None:
            image = _call(io.read, written.path)
            expected = written.data
            assert image is not None, "a valid file was refused"
            assert image.data.dtype == expected.dtype.newbyteorder("=")
            assert np.array_equal(image.data, expected, equal_nan=expected.dtype.kind == "f")
            assert _same(image.pixel_size, written.pixel_size), image.axes
            assert _same(image.angular_sampling, written.angular_sampling), image.axes
            if written.energy is None:
                assert image.energy is None
            else:
                assert math.isclose(image.energy, written.energy, rel_tol=1e-6)
            if written.title is not None:
                assert image.metadata["General"]["title"] == written.title
            text = _call(io.describe, written.path)
            assert " x ".join(map(str, expected.shape)) in text
        if fmt.check is not None:
            fmt.check(written, spec)


def _mutated_contract(written: Written) -> None:
    for reader in written.readers:
        _call(reader, written.path)


@pytest.mark.parametrize("name", sorted(FORMATS))
@PER_FORMAT
@given(data=st.data())
def test_mutated_bytes_give_a_result_or_a_clear_error(name, data):
    fmt = FORMATS[name]
    spec = data.draw(fmt.specs, label="spec")
    mutations = data.draw(st.lists(BYTE_MUTATIONS, min_size=1, max_size=3), label="mutations")
    with tempfile.TemporaryDirectory() as tmp:
        written = fmt.write(Path(tmp), spec)
        content = written.path.read_bytes()
        mutated = mutate_bytes(content, mutations, written.dims)
        if not mutated:
            mutated = content[:1]
        written.path.write_bytes(mutated)
        _mutated_contract(written)


@pytest.mark.parametrize("name", HDF5_FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_mutated_hdf5_structure_gives_a_result_or_a_clear_error(name, data):
    fmt = FORMATS[name]
    spec = data.draw(fmt.specs, label="spec")
    mutations = data.draw(st.lists(H5_MUTATIONS, min_size=1, max_size=3), label="mutations")
    with tempfile.TemporaryDirectory() as tmp:
        written = fmt.write(Path(tmp), spec)
        mutate_hdf5(written.path, mutations)
        _mutated_contract(written)


@given(data=st.data())
def test_mutated_sidecar_json_gives_a_result_or_a_clear_error(data):
    spec = data.draw(sidecar_specs(), label="spec")
    edits = data.draw(st.lists(JSON_EDITS, min_size=1, max_size=3), label="edits")
    with tempfile.TemporaryDirectory() as tmp:
        written = write_sidecar(Path(tmp), spec)
        written.path.write_text(mutate_json(written.path.read_text(), edits))
        _mutated_contract(written)


@given(data=st.data())
def test_mutated_tiff_description_gives_a_result_or_a_clear_error(data):
    """The JSON that write_tiff puts in the ImageDescription tag, edited at random."""
    spec = data.draw(atomlens_tiff_specs(), label="spec")
    edits = data.draw(st.lists(JSON_EDITS, min_size=1, max_size=3), label="edits")
    with tempfile.TemporaryDirectory() as tmp:
        written = write_atomlens_tiff(Path(tmp), spec)
        with tifffile.TiffFile(written.path) as tif:
            description = tif.pages[0].description
            array = tif.asarray()
        text = mutate_json(description, edits)
        text = text.encode("ascii", "backslashreplace").decode("ascii")
        tifffile.imwrite(
            written.path, array, description=text, metadata=None, photometric="minisblack"
        )
        _mutated_contract(written)


# ---------------------------------------------------------------------- real files as seeds

REAL_FILES = [
    "example_Se_implanted_MoS2.dm3",
    "hrstem_example.ser",
    "SrTiO3_ADF_cropped.hdf5",
    "Si110_HAADF.png",
]


@functools.cache
def _real_dims(path: Path) -> tuple[int, ...]:
    return io.read(path).data.shape


@pytest.mark.parametrize("name", REAL_FILES)
@settings(max_examples=max(4, EXAMPLES // 6))
@given(mutations=st.lists(BYTE_MUTATIONS, min_size=1, max_size=3))
def test_mutated_real_files_give_a_result_or_a_clear_error(name, mutations):
    source = REAL_FOLDER / name
    if not source.is_file():
        pytest.skip(f"real data file {source} not available")
    content = source.read_bytes()  # the original is only read
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(mutate_bytes(content, mutations, _real_dims(source)) or content[:1])
        for reader in (io.read, io.describe):
            _call(reader, path)
