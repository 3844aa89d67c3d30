"""Turn the axis dictionaries of a reader into normalised :class:`Axis` records.

Conventions: the last two array axes are the image (signal) axes, indexed (row, column) =
(y, x), or (ky, kx) for a diffraction pattern; a third, leading axis is a frame axis; a 4D
array is (scan_y, scan_x, ky, kx). Lengths are converted to Å, reciprocal lengths to 1/Å and,
when the beam energy is known, to mrad (small-angle: alpha = lambda * k).
"""

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from atomlens.core.energy import wavelength
from atomlens.core.units import (
    ANGLE,
    LENGTH,
    OTHER,
    RECIPROCAL,
    UNDEFINED,
    classify_units,
)

from ._imagedata import Axis

__all__ = ["build_axes"]

_logger = logging.getLogger(__name__)

_ANGSTROM = "Å"
_INV_ANGSTROM = "1/Å"
_MRAD = "mrad"


def _as_float(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _align(raw_axes: Sequence[Mapping[str, Any]], shape: tuple[int, ...]) -> list[dict]:
    """Match the reader's axis dictionaries to the array dimensions, or give empty ones."""
    raw = [dict(axis) for axis in raw_axes or ()]
    sizes = [int(axis.get("size", -1)) if _as_float(axis.get("size")) else -1 for axis in raw]
    if len(raw) == len(shape):
        if sizes == list(shape):
            return raw
        if all("index_in_array" in axis for axis in raw):
            ordered = sorted(raw, key=lambda axis: int(axis["index_in_array"]))
            if [int(axis.get("size", -1)) for axis in ordered] == list(shape):
                return ordered
    if raw:
        _logger.warning(
            "axis descriptions %s do not match the array shape %s; calibration ignored",
            sizes,
            shape,
        )
    return [{} for _ in shape]


def _convert(axis: Mapping[str, Any], quantity: str, factor: float | None) -> tuple:
    """(scale, offset, units) of one axis in atomlens units; scale None if it has none."""
    scale = _as_float(axis.get("scale"))
    offset = _as_float(axis.get("offset")) or 0.0
    if scale == 0.0:
        scale = None
    if quantity == LENGTH and scale is not None:
        return scale * factor, offset * factor, _ANGSTROM
    if quantity == RECIPROCAL and scale is not None:
        return scale * factor, offset * factor, _INV_ANGSTROM
    if quantity == ANGLE and scale is not None:
        return scale * factor, offset * factor, _MRAD
    if quantity == OTHER and scale is not None:
        return scale, offset, str(axis.get("units"))
    return None, 0.0, None


def _signal_axes(
    raw: list[dict], energy: float | None, unitless_unit: str | None, notes: list[str]
) -> tuple[list[tuple], str]:
    """Converted (scale, offset, units) of the two image axes and what they measure."""
    classes = [classify_units(axis.get("units")) for axis in raw]
    scales = [_as_float(axis.get("scale")) for axis in raw]
    quantities = {quantity for quantity, _ in classes}
    if (
        quantities == {UNDEFINED}
        and unitless_unit is not None
        and all(scale is not None and scale not in (0.0, 1.0) for scale in scales)
    ):
        classes = [classify_units(unitless_unit)] * len(raw)
        quantities = {LENGTH}
        notes.append(
            f"the file gives a pixel size but no units; {unitless_unit} assumed "
            "(HyperSpy's default for images)"
        )
    converted = [_convert(axis, *cls) for axis, cls in zip(raw, classes, strict=True)]
    if any(scale is None for scale, _, _ in converted) and quantities != {UNDEFINED}:
        notes.append("an image axis has a unit but no usable scale; treated as uncalibrated")
        return [(None, 0.0, "px")] * len(raw), "uncalibrated"
    if quantities == {LENGTH}:
        return converted, "real"
    if quantities and quantities <= {RECIPROCAL, ANGLE}:
        if energy is not None:
            to_mrad = wavelength(energy) * 1e3
            converted = [
                (scale * to_mrad, offset * to_mrad, _MRAD)
                if units == _INV_ANGSTROM
                else (scale, offset, units)
                for scale, offset, units in converted
            ]
        elif quantities == {RECIPROCAL, ANGLE}:
            notes.append("mixed 1/Å and mrad axes and no beam energy to reconcile them")
        return converted, "diffraction"
    if quantities == {UNDEFINED}:
        return [(None, 0.0, "px")] * len(raw), "uncalibrated"
    return converted, "other"


def _navigation_names(n_nav: int) -> list[str]:
    if n_nav == 1:
        return ["frame"]
    if n_nav == 2:
        return ["scan_y", "scan_x"]
    return [f"axis{i}" for i in range(n_nav)]


def build_axes(
    raw_axes: Sequence[Mapping[str, Any]],
    shape: tuple[int, ...],
    energy: float | None,
    *,
    unitless_unit: str | None = None,
) -> tuple[tuple[Axis, ...], str, bool, list[str]]:
    """Normalise a reader's axes for an array of at least two dimensions.

    Parameters
    ----------
    raw_axes : sequence of dict
        rosettasciio axis dictionaries (``size``, ``scale``, ``offset``, ``units``, ``name``),
        in array order.
    shape : tuple of int
        Shape of the data array, ``len(shape) >= 2``.
    energy : float or None
        Beam energy [eV]; with it, reciprocal axes are converted to mrad.
    unitless_unit : str, optional
        Unit to assume when the image axes have a non-trivial scale but no unit at all
        (HyperSpy files written without units); ``None`` treats them as uncalibrated.

    Returns
    -------
    axes : tuple of Axis
        One per array dimension.
    kind : str
        'image', 'diffraction', 'stack' or 'other'.
    calibrated : bool
        Whether both image axes carry a physical scale (Å, 1/Å or mrad).
    notes : list of str
        Assumptions made on the way, for the metadata and the summary.
    """
    notes: list[str] = []
    raw = _align(raw_axes, tuple(int(n) for n in shape))
    n_nav = len(shape) - 2
    signal, meaning = _signal_axes(raw[n_nav:], energy, unitless_unit, notes)
    names = ("ky", "kx") if meaning == "diffraction" else ("y", "x")
    axes = [
        Axis(
            _navigation_names(n_nav)[i],
            int(shape[i]),
            *_convert(raw[i], *classify_units(raw[i].get("units"))),
        )
        for i in range(n_nav)
    ]
    axes += [
        Axis(name, int(size), scale, offset, units)
        for name, size, (scale, offset, units) in zip(names, shape[n_nav:], signal, strict=True)
    ]
    if meaning == "diffraction":
        kind = "diffraction" if n_nav <= 1 else "other"
    elif meaning == "other":
        kind = "other"
    else:
        kind = {0: "image", 1: "stack"}.get(n_nav, "other")
    calibrated = meaning in ("real", "diffraction")
    return tuple(axes), kind, calibrated, notes
