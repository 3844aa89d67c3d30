"""Unit normalisation for image axes: lengths to Å, reciprocal lengths to 1/Å, angles to mrad.

The one table of unit spellings that :func:`atomlens.io.read` understands lives here. Microscope
software writes the same unit many ways ('nm', 'nanometer', '1 / nm', 'nm^-1', 'µm', 'μm', 'um',
'micron', 'Å', 'A', ...); everything is mapped onto atomlens' internal units before it reaches
an :class:`~atomlens.io.ImageData`.
"""

import math
import re

__all__ = [
    "ANGLE",
    "LENGTH",
    "OTHER",
    "RECIPROCAL",
    "UNDEFINED",
    "classify_units",
]

LENGTH = "length"
RECIPROCAL = "reciprocal"
ANGLE = "angle"
UNDEFINED = "undefined"
OTHER = "other"

# factor that turns a value in the key unit into Å
_LENGTH_TO_ANGSTROM = {
    "m": 1e10,
    "meter": 1e10,
    "meters": 1e10,
    "metre": 1e10,
    "metres": 1e10,
    "cm": 1e8,
    "mm": 1e7,
    "µm": 1e4,
    "um": 1e4,
    "micron": 1e4,
    "microns": 1e4,
    "micrometer": 1e4,
    "micrometre": 1e4,
    "nm": 10.0,
    "nanometer": 10.0,
    "nanometers": 10.0,
    "nanometre": 10.0,
    "å": 1.0,
    "a": 1.0,
    "ang": 1.0,
    "angstrom": 1.0,
    "angstroms": 1.0,
    "pm": 0.01,
    "picometer": 0.01,
    "picometre": 0.01,
}

# factor that turns a value in the key unit into mrad
_ANGLE_TO_MRAD = {
    "mrad": 1.0,
    "rad": 1e3,
    "radian": 1e3,
    "radians": 1e3,
    "µrad": 1e-3,
    "urad": 1e-3,
    "deg": math.pi / 180 * 1e3,
    "degree": math.pi / 180 * 1e3,
    "degrees": math.pi / 180 * 1e3,
    "°": math.pi / 180 * 1e3,
}

_UNDEFINED_UNITS = {
    "",
    "none",
    "px",
    "pix",
    "pixel",
    "pixels",
    "<undefined>",
    "undefined",
    "_undefined_",
    "a.u.",
    "au",
    "arb.units",
    "arbitraryunits",
}

_RECIPROCAL_PATTERNS = (
    re.compile(r"^1/(?P<base>.+)$"),
    re.compile(r"^(?P<base>.+?)(\^-1|\*\*-1|-1|⁻¹)$"),
)


def _canonical(units: object) -> str:
    """Lower-case, space-free spelling of a unit string, with the µ and Å variants unified."""
    text = "" if units is None else str(units)
    text = text.replace("\u03bc", "\u00b5")  # Greek mu -> micro sign
    text = text.replace("\u212b", "\u00c5")  # Angstrom sign -> A with ring
    return "".join(text.split()).lower()


def classify_units(units: object) -> tuple[str, float | None]:
    """Say what kind of quantity a unit string measures, and how to convert it.

    Parameters
    ----------
    units : str or None
        Unit as written by the microscope software, e.g. ``'nm'``, ``'1 / nm'``, ``'µm'``,
        ``'mrad'``, ``'<undefined>'``.

    Returns
    -------
    quantity : str
        One of ``'length'``, ``'reciprocal'``, ``'angle'``, ``'undefined'`` (no physical
        unit: pixels, empty, ``None``) or ``'other'`` (a physical unit that is not a length or
        an angle, such as ``'s'`` or ``'eV'``).
    factor : float or None
        Multiply a value in ``units`` by ``factor`` to get Å (length), 1/Å (reciprocal)
        or mrad (angle); ``None`` for the other quantities.

    Examples
    --------
    >>> classify_units("nm")
    ('length', 10.0)
    >>> classify_units("1 / nm")
    ('reciprocal', 0.1)
    >>> classify_units("<undefined>")
    ('undefined', None)
    """
    key = _canonical(units)
    if key in _UNDEFINED_UNITS:
        return UNDEFINED, None
    if key in _LENGTH_TO_ANGSTROM:
        return LENGTH, _LENGTH_TO_ANGSTROM[key]
    if key in _ANGLE_TO_MRAD:
        return ANGLE, _ANGLE_TO_MRAD[key]
    for pattern in _RECIPROCAL_PATTERNS:
        match = pattern.match(key)
        if match and match.group("base") in _LENGTH_TO_ANGSTROM:
            return RECIPROCAL, 1.0 / _LENGTH_TO_ANGSTROM[match.group("base")]
    return OTHER, None
