"""One validation layer for every verb: parameter ranges with units, array checks, size limits.

The library checks its inputs here, at its boundary (constructors and public functions), so a
script gets the same refusal as the command line. Every error is a :class:`ValueError` subclass
whose message names the keyword argument (``energy=...``), the value, the unit and the valid
range; the CLI translates ``energy=...`` into ``--energy``. docs/errors.md lists the table.

Examples
--------
>>> check_parameter("energy", 200e3)
200000.0
>>> check_parameter("energy", float("nan"))
Traceback (most recent call last):
...
atomlens.core.validation.ParameterError: energy=... (beam energy) must be a finite number of eV, \
got nan.
>>> check_parameter("semiangle", 1e4)
Traceback (most recent call last):
...
atomlens.core.validation.ParameterError: semiangle=... (convergence semi-angle) must lie in \
(0, 500] mrad, got 10000 mrad.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ParameterError(ValueError):
    """A parameter outside its documented valid range (or not a number at all)."""


class SizeLimitError(ValueError):
    """A requested array larger than atomlens allows (``ATOMLENS_MAX_ARRAY_GB``)."""


class ModelNotFoundError(LookupError):
    """No model folder of that name in ``ATOMLENS_MODELS`` or the package (``atomlens.zoo``
    raises it; defined here so that catching it imports no torch)."""


class InputError(ValueError):
    """Input data that atomlens cannot use (wrong shape, dtype, NaN, complex values...)."""


@dataclass(frozen=True)
class Range:
    """The valid interval of one physical parameter.

    Parameters
    ----------
    low, high : float
        Bounds in ``unit``.
    unit : str
        The unit the parameter is given in ("" for a plain number).
    meaning : str
        What the parameter is, for messages.
    low_open : bool
        Exclude ``low`` itself (a strictly positive parameter).
    integer : bool
        Only whole numbers are valid.
    """

    low: float
    high: float
    unit: str
    meaning: str
    low_open: bool = False
    integer: bool = False

    def text(self) -> str:
        """The interval as written in messages and docs, e.g. ``(0, 500] mrad``."""
        bracket = "(" if self.low_open else "["
        unit = f" {self.unit}" if self.unit else ""
        return f"{bracket}{_number(self.low)}, {_number(self.high)}]{unit}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` (a finite number) lies in the interval."""
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high


# The documented valid range of every physical parameter a user can set. The bounds are generous
# physical limits, not the training range of a model (those produce notes or refusals in the verbs
# themselves); they keep the arithmetic finite and the arrays allocatable.
PARAMETERS: dict[str, Range] = {
    "energy": Range(1e3, 1e7, "eV", "beam energy"),
    "semiangle": Range(0, 500, "mrad", "convergence semi-angle", low_open=True),
    "angular_sampling": Range(1e-3, 100, "mrad/px", "detector pixel size in scattering angle"),
    "pixel_size": Range(1e-3, 100, "Å/px", "image pixel size"),
    "edge_width": Range(0, 100, "mrad", "aperture edge width"),
    "source_size": Range(0, 100, "Å", "source size σ"),
    "tilt": Range(-500, 500, "mrad", "beam tilt"),
    "aberration": Range(-1e8, 1e8, "Å", "aberration coefficient"),
    "aberration_angle": Range(-1e3, 1e3, "rad", "aberration angle"),
    "thickness": Range(0, 1e4, "Å", "specimen thickness", low_open=True),
    "slice_thickness": Range(0, 1e4, "Å", "multislice step", low_open=True),
    "density": Range(0, 1, "atoms/Å^3", "number density", low_open=True),
    "phase_std": Range(0, 100, "rad", "phase standard deviation"),
    "correlation_length": Range(0, 1e3, "Å", "correlation length", low_open=True),
    "objective_aperture": Range(0, 1e3, "mrad", "objective aperture semi-angle", low_open=True),
    "focal_spread": Range(0, 1e4, "Å", "focal spread σ"),
    "divergence": Range(0, 100, "mrad", "illumination divergence σ"),
    "thermal_sigma": Range(0, 5, "Å", "thermal displacement σ"),
    "min_distance": Range(0, 10, "Å", "hard-core distance between atoms"),
    "atom_width": Range(0, 5, "Å", "atom width σ", low_open=True),
    "rotation": Range(-3600, 3600, "deg", "in-plane rotation"),
    "dose_per_pixel": Range(0, 1e12, "e/px", "electron dose per pixel", low_open=True),
    "dose_per_image": Range(0, 1e15, "e", "electron dose per image", low_open=True),
    "gain": Range(0, 1e6, "counts/e", "detector gain", low_open=True),
    "psf_sigma": Range(0, 1e3, "px", "detector blur σ"),
    "dark_offset": Range(-1e9, 1e9, "counts", "dark offset"),
    "readout_noise": Range(0, 1e9, "counts", "readout noise σ"),
    "drift": Range(-100, 100, "Å/frame", "sample drift"),
    "frame_time": Range(0, 1e6, "s", "time between frames", low_open=True),
    "size": Range(8, 16384, "px", "image size", integer=True),
    "unit_cells": Range(1, 1000, "", "number of unit cells", integer=True),
    "count": Range(1, 10**7, "", "number of items", integer=True),
    "frames": Range(1, 10**5, "", "number of frames", integer=True),
    "batch_size": Range(1, 4096, "", "batch size", integer=True),
    "oversampling": Range(1, 63, "", "oversampling factor", integer=True),
}

DEFAULT_MAX_ARRAY_GB = 8.0

#: The most atoms one simulated specimen may hold (about 1 GB of positions and work arrays).
MAX_ATOMS = 20_000_000


def check_parameter(name: str, value: object, *, kind: str | None = None) -> float:
    """``value`` as a float (an int for integer parameters), or :class:`ParameterError`.

    Parameters
    ----------
    name : str
        The keyword argument the user set; named in the message.
    value : object
        The value given.
    kind : str, optional
        The entry of :data:`PARAMETERS` to check against when it differs from ``name``
        (``kind="aberration"`` for ``C10``).

    Returns
    -------
    float or int
    """
    valid = PARAMETERS[kind or name]
    what = f"{name}=... ({valid.meaning})"
    unit = f" {valid.unit}" if valid.unit else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.generic):
        noun = f"a number of {valid.unit}" if valid.unit else "a number"
        raise ParameterError(f"{what} must be {noun}, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        noun = f"a finite number of {valid.unit}" if valid.unit else "a finite number"
        raise ParameterError(f"{what} must be {noun}, got {_number(number)}.")
    if valid.integer and number != int(number):
        raise ParameterError(f"{what} must be a whole number, got {value!r}.")
    if not valid.contains(number):
        shown = str(int(number)) if valid.integer else _number(number)
        raise ParameterError(f"{what} must lie in {valid.text()}, got {shown}{unit}.")
    return int(number) if valid.integer else number


def check_optional(name: str, value: object, *, kind: str | None = None) -> float | None:
    """:func:`check_parameter`, letting None (not set) through."""
    return None if value is None else check_parameter(name, value, kind=kind)


def check_pair(name: str, value: Sequence[object], *, kind: str | None = None) -> tuple[float, ...]:
    """A (y, x) pair whose two entries each pass :func:`check_parameter`."""
    values = tuple(np.ravel(np.asarray(value, dtype=object)))
    if len(values) != 2:
        raise ParameterError(f"{name}=... must be a (y, x) pair, got {value!r}.")
    return tuple(check_parameter(name, v, kind=kind) for v in values)


def max_array_bytes() -> int:
    """The largest array atomlens allocates [bytes]: ``ATOMLENS_MAX_ARRAY_GB`` (default 8) GiB."""
    text = os.environ.get("ATOMLENS_MAX_ARRAY_GB", "")
    try:
        gib = float(text) if text else DEFAULT_MAX_ARRAY_GB
    except ValueError:
        raise ValueError(f"ATOMLENS_MAX_ARRAY_GB must be a number of GiB, got {text!r}.") from None
    if not gib > 0 or not math.isfinite(gib):
        raise ValueError(f"ATOMLENS_MAX_ARRAY_GB must be a positive number of GiB, got {text!r}.")
    return int(gib * 2**30)


def check_size(what: str, shape: Sequence[int], itemsize: int = 4) -> int:
    """Refuse, before allocating, an array of ``shape`` larger than :func:`max_array_bytes`.

    Parameters
    ----------
    what : str
        The array, named for the message ("the Ronchigram stack", "dataset 'data' of x.h5").
    shape : sequence of int
        Its shape.
    itemsize : int
        Bytes per element.

    Returns
    -------
    int
        The array's size [bytes].

    Examples
    --------
    >>> check_size("the image", (1024, 1024))
    4194304
    """
    nbytes = math.prod(int(n) for n in shape) * int(itemsize)
    limit = max_array_bytes()
    if nbytes > limit:
        raise SizeLimitError(
            f"{what} would take {_gib(nbytes)} (shape {tuple(int(n) for n in shape)}), more than "
            f"the limit of {_gib(limit)}; reduce the size, or raise ATOMLENS_MAX_ARRAY_GB if the "
            "machine has the memory."
        )
    return nbytes


def check_free_space(path: str | os.PathLike, nbytes: int, what: str) -> None:
    """Refuse, before any work, an output of ``nbytes`` that would not fit on its disk.

    Parameters
    ----------
    path : path-like
        The output file; the free space of the folder it goes in is checked.
    nbytes : int
        Bytes the output will take (an estimate is enough).
    what : str
        The output, for the message.
    """
    folder = Path(path).expanduser().resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise SizeLimitError(
            f"{what} would take {_gib(nbytes)}, more than the {_gib(free)} free on the disk "
            f"of {folder}; write fewer or smaller images, or to another disk."
        )


def check_atoms(count: float, where: str, remedy: str) -> None:
    """Refuse, before building it, a specimen of more than :data:`MAX_ATOMS` atoms.

    Parameters
    ----------
    count : float
        Atoms the specimen would hold (the expected number is enough).
    where : str
        The specimen, for the message ("a 2.5e4 x 2.5e4 Å field of 100 Å").
    remedy : str
        What to change, naming keyword arguments.
    """
    if count > MAX_ATOMS:
        raise SizeLimitError(
            f"The specimen ({where}) would hold about {count:.3g} atoms, more than the "
            f"{MAX_ATOMS:.0e} atomlens simulates; {remedy}."
        )


def check_device(device: object) -> str | None:
    """A torch device name that exists on this machine, or :class:`ParameterError`.

    Parameters
    ----------
    device : str or None
        ``None`` (the caller's default, the CPU), ``"auto"`` (a GPU when there is one), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``.

    Returns
    -------
    str or None
        The device to use; ``"auto"`` resolved.
    """
    if device is None:
        return None
    import torch  # only here: importing the validation layer must stay cheap

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            f"device=... must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device=... {device!r} was asked for, but this machine has no CUDA GPU "
                "(or torch was built without CUDA); use 'cpu' or 'auto'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ParameterError(
                f"device=... {device!r} was asked for, but this machine has only "
                f"{torch.cuda.device_count()} GPU(s)."
            )
    elif parsed.type not in ("cpu", "mps"):
        raise ParameterError(
            f"device=... must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}."
        )
    return str(parsed)


def check_image(
    name: str,
    image: object,
    *,
    ndim: int | tuple[int, ...] = 2,
    min_size: int = 1,
    non_negative: bool = False,
) -> np.ndarray:
    """A real, finite float32 array of the given dimensionality, or :class:`InputError`.

    Parameters
    ----------
    name : str
        The input, named in the message (a file name or a keyword argument).
    image : array_like
    ndim : int or tuple of int
        Accepted numbers of dimensions.
    min_size : int
        Smallest accepted length of each axis [px].
    non_negative : bool
        Refuse negative values (counts, intensities).

    Returns
    -------
    ndarray of float32
        A new array when a conversion was needed; the input is never modified.
    """
    array = np.asarray(image)
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if array.dtype.kind == "c":
        raise InputError(
            f"{name} holds complex values; atomlens reads real intensities: pass the modulus "
            "(np.abs) or the real part explicitly."
        )
    if array.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold numbers, got dtype {array.dtype}.")
    if array.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise InputError(f"{name} must be a {wanted} array, got shape {array.shape}.")
    if array.ndim and min(array.shape) < min_size:
        raise InputError(
            f"{name} must be at least {min_size} px along each axis, got shape {array.shape}."
        )
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise InputError(f"{name} holds {bad} NaN or infinite value(s); mask or fill them first.")
    largest = float(np.abs(array).max()) if array.size and array.dtype.kind == "f" else 0.0
    if largest > float(np.finfo(np.float32).max):
        raise InputError(
            f"{name} has values beyond the float32 range atomlens computes in (largest "
            f"magnitude {largest:.3g}); rescale the data."
        )
    array = array.astype(np.float32, copy=False)
    if non_negative and array.size and float(array.min()) < 0:
        raise InputError(
            f"{name} has negative values (min {float(array.min()):.4g}); it must hold counts or "
            "intensities >= 0."
        )
    return array


def check_frames(
    name: str, image: object, *, min_size: int, purpose: str, dtype: type = np.float32
) -> np.ndarray:
    """An image (rows, cols) or stack (frames, rows, cols) a verb can work on, or a clear error.

    The rules every image verb shares (restore, locate): :func:`check_image` (real, finite, 2-D
    or 3-D), the array size limit checked before any copy, sides of at least ``min_size`` px,
    and no constant image or frame.

    Parameters
    ----------
    name : str
        The input, named in the message.
    image : array_like
        Never modified.
    min_size : int
        Smallest accepted side [px].
    purpose : str
        What the verb does to it, for the messages ("restore", "locate columns in").
    dtype : numpy dtype
        Of the returned array: float32, or float64 where a large offset must keep its precision.

    Returns
    -------
    ndarray
        A new array when a conversion was needed.
    """
    raw = np.asarray(image)
    if raw.ndim in (2, 3):
        check_size(name, raw.shape, itemsize=np.dtype(dtype).itemsize)
    checked = check_image(name, raw, ndim=(2, 3), min_size=1)
    array = checked if np.dtype(dtype) == np.float32 else np.asarray(raw, dtype=dtype)
    if min(array.shape[-2:]) < min_size:
        raise InputError(
            f"{name} must be at least {min_size} x {min_size} px to {purpose}, got shape "
            f"{array.shape}."
        )
    frames = array.reshape(-1, *array.shape[-2:])
    for index, frame in enumerate(frames):
        if np.ptp(frame) == 0:
            where = f"frame {index} of {name}" if array.ndim == 3 else name
            raise InputError(
                f"{where} is constant ({float(frame.flat[0]):.4g} everywhere): there is nothing "
                f"to {purpose}."
            )
    return array


def _number(value: float) -> str:
    return f"{value:.6g}"


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.3g} GiB"
