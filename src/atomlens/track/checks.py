"""The track verb's input rules: what is not a series of detections (or images) is refused early.

A table needs ``frame``, ``y`` and ``x`` [px] with finite values, whole frame numbers and at
least two frames; a stack is a 3-D array (or a sequence of 2-D frames of one size) that passes
the image rules every image verb shares (:func:`atomlens.core.validation.check_frames`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from atomlens.core.validation import InputError, ParameterError, check_frames, check_optional

__all__ = [
    "MIN_SIZE",
    "REQUIRED",
    "check_distance",
    "check_memory",
    "check_stack",
    "check_table",
    "check_times",
]

#: The columns a table of detections must have.
REQUIRED = ("frame", "y", "x")
#: Smallest frame side the verb accepts in a stack [px] (locate's limit).
MIN_SIZE = 16
#: The longest gap ``memory`` may bridge [frames].
MAX_MEMORY = 1000


def check_table(table: pd.DataFrame, name: str = "frames") -> pd.DataFrame:
    """A copy of a table of detections with integer frames, or :class:`InputError`.

    Raises
    ------
    InputError
        A column of :data:`REQUIRED` missing; an empty table; a non-numeric, NaN or infinite
        ``frame``, ``y`` or ``x``; a frame number that is not a whole number; fewer than two
        distinct frames (nothing to link).
    """
    missing = [column for column in REQUIRED if column not in table.columns]
    if missing:
        raise InputError(
            f"{name} must have the columns frame, y, x [px] (as atomlens.locate returns for a "
            f"stack); missing: {', '.join(missing)}."
        )
    if table.empty:
        raise InputError(f"{name} is an empty table: there are no detections to link.")
    for column in REQUIRED:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{name} has {int(bad.sum())} row(s) whose {column} is not a finite number "
                f"(the first is row {first}: {table[column].iloc[first]!r}); drop or fix them."
            )
    frame = table["frame"].to_numpy(dtype=np.float64)
    if np.any(frame != np.round(frame)) or np.any(np.abs(frame) > 2**53):
        raise InputError(f"{name}'s frame column must hold whole frame numbers.")
    if len(np.unique(frame)) < 2:
        raise InputError(
            f"{name} holds one frame only (frame {int(frame[0])}): tracking needs at least two."
        )
    result = table.copy()
    result["frame"] = frame.astype(np.int64)
    result["y"] = result["y"].astype(np.float64)
    result["x"] = result["x"].astype(np.float64)
    return result


def check_stack(stack: object, name: str = "frames") -> np.ndarray:
    """A stack (frames, rows, cols) of at least two frames, or :class:`InputError`.

    A list or tuple of 2-D frames is stacked when they have one size.

    Raises
    ------
    InputError
        Frames of different sizes; a single 2-D image or a single frame; and whatever
        :func:`~atomlens.core.validation.check_frames` refuses (NaN, complex values, a side
        under :data:`MIN_SIZE` px, a constant frame).
    SizeLimitError
        Larger than the array size limit.
    """
    if isinstance(stack, str | bytes | os.PathLike):
        raise InputError(
            f"{name} must be a table of detections or a 3-D stack of images, got "
            f"{type(stack).__name__} {stack!r}; read a file first (atomlens.io.read)."
        )
    if isinstance(stack, Sequence):
        shapes = {np.shape(frame) for frame in stack}
        if len(shapes) > 1:
            listed = ", ".join(str(s) for s in sorted(shapes, key=str))
            raise InputError(
                f"{name} holds frames of different sizes ({listed}); a series needs frames of "
                "one size: crop or resample them first."
            )
    array = np.asarray(stack) if not isinstance(stack, np.ndarray) else stack
    if array.dtype == object:
        raise InputError(f"{name} must be a table of detections or a 3-D stack of images.")
    if array.ndim == 2:
        raise InputError(
            f"{name} is one 2-D image (shape {array.shape}): tracking needs a stack "
            "(frames, rows, cols) of at least two frames, or a table of detections."
        )
    checked = check_frames(name, array, min_size=MIN_SIZE, purpose="track atoms in")
    if checked.ndim != 3:
        raise InputError(f"{name} must be a 3-D stack (frames, rows, cols), got {checked.shape}.")
    if checked.shape[0] < 2:
        raise InputError(f"{name} holds one frame only: tracking needs at least two.")
    return checked


def check_times(pixel_size: object, frame_time: object) -> tuple[float | None, float | None]:
    """``pixel_size`` [Å/px] and ``frame_time`` [s] checked against the parameter table."""
    return check_optional("pixel_size", pixel_size), check_optional("frame_time", frame_time)


def check_distance(name: str, value: object) -> float | None:
    """A positive, finite distance [px] (or None), or :class:`ParameterError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}=... must be a distance in px, got {value!r}.")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ParameterError(f"{name}=... must be a positive, finite distance in px, got {value}.")
    return number


def check_memory(memory: object) -> int:
    """The longest gap closed [frames]: a whole number in [0, :data:`MAX_MEMORY`]."""
    if isinstance(memory, bool) or not isinstance(memory, numbers.Integral):
        raise ParameterError(f"memory=... must be a whole number of frames, got {memory!r}.")
    if not 0 <= int(memory) <= MAX_MEMORY:
        raise ParameterError(f"memory=... must lie in [0, {MAX_MEMORY}] frames, got {memory}.")
    return int(memory)
