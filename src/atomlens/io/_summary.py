"""Text summary of an :class:`~atomlens.io.ImageData`, printed by ``atomlens info FILE``."""

from typing import TYPE_CHECKING

import numpy as np

from ._metadata import find_key, get_path

if TYPE_CHECKING:
    from ._imagedata import ImageData

__all__ = ["summarise"]

_WIDTH = 15  # label column

# (label, branch of the metadata tree, keys searched for in it (first match wins),
#  and for numbers (factor from the rosettasciio unit to the unit shown, unit shown))
_METADATA_ENTRIES = (
    ("Microscope", "Acquisition_instrument", ("microscope",), None),
    ("Detector", "Acquisition_instrument", ("detector_name", "detector"), None),
    ("Mode", "Acquisition_instrument", ("acquisition_mode",), None),
    ("Magnification", "Acquisition_instrument", ("magnification",), (1.0, "x")),
    ("Camera length", "Acquisition_instrument", ("camera_length",), (1.0, "mm")),
    ("Beam current", "Acquisition_instrument", ("beam_current",), (1.0, "nA")),
    ("Dwell time", "Acquisition_instrument", ("dwell_time",), (1e6, "µs")),
    ("Operator", "General", ("authors",), None),
    ("Specimen", "Sample", ("description",), None),
)


def _statistics(data: np.ndarray) -> str:
    if data.dtype.names or data.dtype.kind not in "biufc":
        return f"not summarised (dtype {data.dtype})"
    values = np.abs(data) if data.dtype.kind == "c" else data
    values = values.astype(np.float64, copy=False) if values.dtype.kind == "b" else values
    finite = np.isfinite(values) if values.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        values = values[finite]
        extra = f", non-finite: {int(finite.size - finite.sum())}"
    else:
        extra = ""
    if values.size == 0:
        return "no finite values"
    prefix = "|value| " if data.dtype.kind == "c" else ""
    low, high = values.min(), values.max()
    return f"{prefix}min {low:.6g}, max {high:.6g}, mean {_mean(values, low, high):.6g}{extra}"


def _mean(values: np.ndarray, low: float, high: float) -> float:
    """The mean of finite ``values`` (between ``low`` and ``high``), without overflow.

    A float64 sum of values near the largest float64 (1.8e308) overflows to infinity; the values
    are then divided by their largest magnitude first, so the mean stays finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(values.mean(dtype=np.float64))
        if np.isfinite(mean):
            return mean
        scale = max(abs(float(low)), abs(float(high)))
        return float((values / scale).mean(dtype=np.float64)) * scale


def _calibration_lines(image: "ImageData") -> list[str]:
    lines = ["  " + axis.describe() for axis in image.axes]
    if image.pixel_size is not None:
        size_y, size_x = image.pixel_size
        lines.append(f"  pixel size: {size_y:.6g} x {size_x:.6g} Å ({size_x * 100:.4g} pm)")
    elif image.angular_sampling is not None:
        lines.append("  angular sampling: {:.6g} x {:.6g} mrad/px".format(*image.angular_sampling))
    elif image.reciprocal_sampling is not None:
        lines.append(
            "  reciprocal sampling: {:.6g} x {:.6g} 1/Å per px".format(*image.reciprocal_sampling)
        )
    if not image.calibrated:
        lines.append("  uncalibrated: the file gives no physical pixel size")
    return lines


def _line(label: str, value: object) -> str:
    return f"{label + ':':<{_WIDTH}}{value}"


def _metadata_lines(metadata: dict) -> list[str]:
    tree = {
        key: value
        for key, value in metadata.items()
        if key not in ("original_metadata", "atomlens")
    }
    lines = []
    title = get_path(tree, "General.title")
    if title:
        lines.append(_line("Title", title))
    date, time = get_path(tree, "General.date"), get_path(tree, "General.time")
    if date:
        lines.append(_line("Acquired", f"{date} {time}" if time else date))
    for label, branch, keys, unit in _METADATA_ENTRIES:
        value = find_key(tree.get(branch, {}), keys)
        if value is None:
            continue
        if unit is not None:
            try:
                number = float(value) * unit[0]
            except (TypeError, ValueError):
                number = None
            if number == 0:  # written as 0 when the software did not know it
                continue
            value = value if number is None else f"{number:.4g} {unit[1]}"
        lines.append(_line(label, value))
    return lines


def summarise(image: "ImageData", *, values: str | None = None) -> str:
    """Multi-line description of ``image``; see :meth:`ImageData.summary`.

    Parameters
    ----------
    image : ImageData
        What was read.
    values : str, optional
        The text of the "Values" line when the data were not read (by default, the minimum,
        maximum and mean of ``image.data``).

    Returns
    -------
    str
    """
    info = image.metadata.get("atomlens", {}) if isinstance(image.metadata, dict) else {}
    shape = " x ".join(str(n) for n in image.data.shape)
    names = ", ".join(axis.name for axis in image.axes)
    lines = [_line("File", image.path if image.path is not None else "(in memory)")]
    if image.format:
        reader = info.get("reader")
        lines.append(_line("Format", image.format + (f" (read with {reader})" if reader else "")))
    if info.get("n_signals", 1) > 1:
        others = "; ".join(info.get("signals", []))
        lines.append(
            _line(
                "Signal",
                f"index {info.get('signal_index')} of {info['n_signals']} "
                f"(others: {others}; choose with index=...)",
            )
        )
    energy = f"{image.energy / 1e3:.6g} keV" if image.energy else "unknown"
    lines += [
        _line("Kind", image.kind),
        _line("Shape", f"{shape} ({names})"),
        _line("Dtype", image.data.dtype),
        "Calibration:",
        *_calibration_lines(image),
        _line("Beam energy", energy),
        _line("Values", _statistics(image.data) if values is None else values),
        *_metadata_lines(image.metadata),
    ]
    lines += [_line("Note", note) for note in info.get("notes", [])]
    return "\n".join(lines)
