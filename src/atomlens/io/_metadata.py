"""Metadata helpers: plain-Python copies, rosettasciio mappings, and look-ups."""

import datetime
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = [
    "apply_mapping",
    "beam_energy",
    "find_key",
    "get_path",
    "to_builtin",
]

_logger = logging.getLogger(__name__)

_MAX_STRING = 2000
_MAX_LIST = 64
_MAX_DEPTH = 24


def to_builtin(obj: Any, *, max_array: int | None = 16, _depth: int = 0) -> Any:
    """Copy ``obj`` into plain, printable, JSON-friendly Python objects.

    Parameters
    ----------
    obj : object
        A metadata tree: nested mappings (dict, Box), sequences, numpy scalars and arrays,
        bytes, dates.
    max_array : int or None
        Arrays (and long lists) with more elements than this are replaced by a short
        description such as ``'<ndarray shape=(1024, 1024) dtype=uint16>'``; None keeps all.

    Returns
    -------
    object
        dict (str keys), list, str, int, float, bool or None.
    """
    if _depth > _MAX_DEPTH:
        return "<nested too deep>"
    nested = {"max_array": max_array, "_depth": _depth + 1}
    if obj is None or isinstance(obj, bool | int | str):
        if isinstance(obj, str) and max_array is not None and len(obj) > _MAX_STRING:
            return obj[:_MAX_STRING] + f"... <{len(obj)} characters>"
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, np.generic):
        if isinstance(obj, np.void) and obj.dtype.names:
            return {name: to_builtin(obj[name], **nested) for name in obj.dtype.names}
        if isinstance(obj, np.void | np.bytes_):
            return to_builtin(bytes(obj), **nested)
        return to_builtin(obj.item(), **nested)
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if isinstance(obj, bytes | bytearray):
        if max_array is not None and len(obj) > _MAX_STRING:
            return f"<{len(obj)} bytes>"
        text = bytes(obj).rstrip(b"\x00")
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            return text.decode("latin-1")
    if isinstance(obj, np.ndarray):
        if max_array is not None and obj.size > max_array:
            return f"<ndarray shape={obj.shape} dtype={obj.dtype}>"
        return (
            [to_builtin(item, **nested) for item in obj.tolist()]
            if obj.ndim
            else to_builtin(obj.item(), **nested)
        )
    if isinstance(obj, Mapping) or hasattr(obj, "to_dict"):
        items = obj.items() if isinstance(obj, Mapping) else obj.to_dict().items()
        return {str(key): to_builtin(value, **nested) for key, value in items}
    if isinstance(obj, list | tuple | set | frozenset):
        values = list(obj)
        if max_array is not None and len(values) > _MAX_LIST:
            return f"<{type(obj).__name__} of {len(values)} items>"
        return [to_builtin(value, **nested) for value in values]
    if isinstance(obj, datetime.date | datetime.time):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # dask, h5py.Empty, other array-likes
        shape = obj.shape  # None for h5py.Empty, the value of an HDF5 null attribute
        shape = tuple(shape) if isinstance(shape, Iterable) else shape
        return f"<{type(obj).__name__} shape={shape} dtype={obj.dtype}>"
    text = repr(obj)
    return text if len(text) <= 200 else text[:200] + "..."


def _normalise_key(key: object) -> str:
    return str(key).replace(" ", "_").lower()


def _child(tree: Any, key: str) -> Any:
    """``tree[key]``, also matching keys that differ by spaces vs underscores or case."""
    if not isinstance(tree, Mapping):
        raise KeyError(key)
    if key in tree:
        return tree[key]
    wanted = _normalise_key(key)
    for candidate, value in tree.items():
        if _normalise_key(candidate) == wanted:
            return value
    raise KeyError(key)


def get_path(tree: Any, path: str, default: Any = None) -> Any:
    """Value at a dotted ``path`` such as ``'Acquisition_instrument.TEM.beam_energy'``."""
    node = tree
    for key in path.split("."):
        try:
            node = _child(node, key)
        except KeyError:
            return default
    return node


class _DottedView(dict):
    """A dict whose ``get`` also follows dotted paths, as rosettasciio's mapping functions
    expect of the HyperSpy tree they are usually given."""

    def get(self, key: Any, default: Any = None) -> Any:
        value = get_path(self, str(key), default=None)
        if value is None:
            value = super().get(key, default)
        return _DottedView(value) if isinstance(value, Mapping) else value


def _set_path(tree: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return
    node[leaf] = value


def apply_mapping(
    metadata: dict,
    original_metadata: Mapping,
    mapping: Mapping[str, tuple[str, Callable | None]] | None,
) -> None:
    """Fill ``metadata`` from ``original_metadata`` as HyperSpy does with a reader's mapping.

    Parameters
    ----------
    metadata : dict
        Updated in place.
    original_metadata : Mapping
        The file's own tags.
    mapping : dict, optional
        ``{original path: (metadata path, function or None)}``, as rosettasciio readers
        return it. Entries whose source is missing or whose function fails are skipped.
    """
    for source, (target, function) in (mapping or {}).items():
        value = get_path(original_metadata, source)
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = _DottedView(value)
        try:
            if function is not None:
                value = function(value)
        except Exception as err:  # a metadata nicety must never stop reading the image
            _logger.debug("metadata mapping %s -> %s skipped: %s", source, target, err)
            continue
        if value is not None and not isinstance(value, Mapping):
            _set_path(metadata, target, value)


def beam_energy(metadata: Mapping) -> float | None:
    """Beam energy [eV] from a rosettasciio metadata tree (which stores it in keV)."""
    for microscope in ("TEM", "SEM"):
        value = get_path(metadata, f"Acquisition_instrument.{microscope}.beam_energy")
        try:
            energy = float(value) * 1e3
        except (TypeError, ValueError):
            continue
        if math.isfinite(energy) and energy > 0:
            return energy
    return None


def find_key(tree: Any, names: Iterable[str], *, _depth: int = 0) -> Any:
    """First non-empty scalar value whose key is one of ``names`` (case-insensitive)."""
    wanted = {_normalise_key(name) for name in names}
    if not isinstance(tree, Mapping) or _depth > _MAX_DEPTH:
        return None
    for key, value in tree.items():
        if (
            _normalise_key(key) in wanted
            and not isinstance(value, Mapping)
            and value
            not in (
                None,
                "",
                [],
            )
        ):
            return value
    for value in tree.values():
        found = find_key(value, wanted, _depth=_depth + 1)
        if found is not None:
            return found
    return None
