"""The valid ranges of the training settings, checked as :mod:`atomlens.core.validation` does.

The bounds are generous limits that keep a run finite and its memory allocatable, not
recommendations: a 1e6-minute budget (about two years) or a learning rate of 1 are accepted.
Messages name the keyword argument (``minutes=...``), the unit and the range, as
:func:`atomlens.core.validation.check_parameter` does for the physical parameters; the command
line says ``--minutes``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from atomlens.core.validation import ParameterError, Range

__all__ = ["SETTINGS", "check_setting"]

#: Largest seed [-]: numpy and torch both take seeds below 2^63.
MAX_SEED = 2**63 - 1

SETTINGS: dict[str, Range] = {
    "minutes": Range(0, 1e6, "min", "wall-clock budget", low_open=True),
    "steps": Range(1, 1e9, "", "step budget", integer=True),
    "lr": Range(0, 1, "", "peak learning rate", low_open=True),
    "weight_decay": Range(0, 1, "", "AdamW weight decay"),
    "seed": Range(0, MAX_SEED, "", "random seed", integer=True),
    "every": Range(1, 1e9, "steps", "interval", integer=True),
    "validation_examples": Range(1, 1e7, "", "number of validation examples", integer=True),
    "width": Range(1, 256, "", "network base width", integer=True),
}


def check_setting(name: str, value: object, *, kind: str | None = None) -> float:
    """``value`` as a float (an int for whole-number settings), or :class:`ParameterError`.

    Parameters
    ----------
    name : str
        The keyword argument; named in the message.
    value : object
        The value given.
    kind : str, optional
        The entry of :data:`SETTINGS` when it differs from ``name`` (``"every"`` for
        ``log_every``).

    Returns
    -------
    float or int

    Examples
    --------
    >>> check_setting("minutes", 60)
    60.0
    >>> check_setting("steps", 0)
    Traceback (most recent call last):
    ...
    atomlens.core.validation.ParameterError: steps=... (step budget) must lie in [1, 1e+09], got 0.
    """
    valid = SETTINGS[kind or name]
    what = f"{name}=... ({valid.meaning})"
    unit = f" {valid.unit}" if valid.unit else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.generic):
        raise ParameterError(f"{what} must be a number{unit and ' of' + unit}, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(f"{what} must be a finite number, got {number:.6g}.")
    if valid.integer and number != int(number):
        raise ParameterError(f"{what} must be a whole number, got {value!r}.")
    exact = int(value) if valid.integer else number  # a whole number compared exactly
    if not valid.contains(exact):
        shown = str(exact) if valid.integer else f"{number:.6g}"
        raise ParameterError(f"{what} must lie in {valid.text()}, got {shown}{unit}.")
    return exact
