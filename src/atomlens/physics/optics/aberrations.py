"""Probe-forming aberrations in Krivanek notation, with conversions to other conventions.

Coefficients follow abTEM's names and units: ``C{n}{m}`` [Å] is the magnitude of the aberration of
radial order n + 1 and m-fold symmetry, ``phi{n}{m}`` [rad] its azimuthal orientation, so that

    chi(alpha, phi) = (2 pi / lambda) * sum_{n,m} C_nm alpha^(n+1) / (n+1) cos(m (phi - phi_nm))

with alpha the scattering angle [rad] and phi = atan2(k_y, k_x) the azimuth, measured from the
+x axis (image columns) towards +y (image rows). ``C10`` is abTEM's C10: ``defocus = -C10``, and a
negative C10 is an underfocused (convergent-beam) probe. See ``docs/conventions.md`` for the mapping
to CEOS and Nion names.

Examples
--------
>>> ab = Aberrations(C10=-200.0, C12=50.0, phi12=0.3)
>>> ab["defocus"]
200.0
>>> round(abs(ab.to_ceos()["A1"]), 6)
50.0
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np

from atomlens.core.validation import check_parameter

#: (n, m) orders of every supported coefficient, up to fifth order.
ORDERS: tuple[tuple[int, int], ...] = (
    (1, 0), (1, 2),
    (2, 1), (2, 3),
    (3, 0), (3, 2), (3, 4),
    (4, 1), (4, 3), (4, 5),
    (5, 0), (5, 2), (5, 4), (5, 6),
)  # fmt: skip

MAGNITUDE_NAMES: tuple[str, ...] = tuple(f"C{n}{m}" for n, m in ORDERS)
ANGLE_NAMES: tuple[str, ...] = tuple(f"phi{n}{m}" for n, m in ORDERS if m > 0)
NAMES: tuple[str, ...] = MAGNITUDE_NAMES + ANGLE_NAMES

#: abTEM's aliases; ``defocus`` is special-cased because defocus = -C10.
ALIASES: dict[str, str] = {
    "Cs": "C30",
    "C5": "C50",
    "astigmatism": "C12",
    "astigmatism_angle": "phi12",
    "coma": "C21",
    "coma_angle": "phi21",
    "trefoil": "C23",
    "trefoil_angle": "phi23",
    "astigmatism3": "C32",
    "astigmatism3_angle": "phi32",
    "quadrafoil": "C34",
    "quadrafoil_angle": "phi34",
}

#: CEOS name -> (Krivanek name, divisor): the CEOS magnitude is C_nm / divisor.
CEOS_NAMES: dict[str, tuple[str, float]] = {
    "C1": ("C10", 1.0),
    "A1": ("C12", 1.0),
    "B2": ("C21", 3.0),
    "A2": ("C23", 1.0),
    "C3": ("C30", 1.0),
    "S3": ("C32", 4.0),
    "A3": ("C34", 1.0),
    "B4": ("C41", 4.0),
    "D4": ("C43", 4.0),
    "A4": ("C45", 1.0),
    "C5": ("C50", 1.0),
    "S5": ("C52", 6.0),
    "R5": ("C54", 6.0),
    "A5": ("C56", 1.0),
}


def _order_of(name: str) -> tuple[int, int]:
    return int(name[-2]), int(name[-1])


def _suggest(name: str) -> str:
    close = [known for known in NAMES + tuple(ALIASES) if known.lower() == name.lower()]
    return f" Did you mean {close[0]!r}?" if close else ""


class Aberrations(Mapping[str, float]):
    """An immutable set of aberration coefficients in Krivanek polar notation.

    Parameters
    ----------
    coefficients : mapping, optional
        Names to values; magnitudes ``C{n}{m}`` [Å], angles ``phi{n}{m}`` [rad].
    **kwargs
        More coefficients, also by abTEM alias (``defocus`` [Å] = -C10, ``Cs``, ``astigmatism``...).

    Raises
    ------
    ValueError
        For an unknown name or a value that is not a finite number.

    Notes
    -----
    Missing coefficients are zero. Indexing accepts the aliases, so ``ab["defocus"] == -ab["C10"]``.
    A negative magnitude is allowed for the round terms (C10, C30, C50) only; for the others it is
    folded into the angle (C -> |C|, phi -> phi + pi / m).
    """

    __slots__ = ("_values",)

    def __init__(self, coefficients: Mapping[str, float] | None = None, **kwargs: float):
        values = dict.fromkeys(NAMES, 0.0)
        for name, value in {**(coefficients or {}), **kwargs}.items():
            canonical, value = self._canonical(name, value)
            values[canonical] = value
        for n, m in ORDERS:
            magnitude = f"C{n}{m}"
            if m > 0 and values[magnitude] < 0:
                values[magnitude] = -values[magnitude]
                values[f"phi{n}{m}"] += math.pi / m
            if m > 0:
                values[f"phi{n}{m}"] = math.remainder(values[f"phi{n}{m}"], 2 * math.pi / m)
        self._values = values

    @staticmethod
    def _canonical(name: str, value: float) -> tuple[str, float]:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Aberration {name} must be a number, got {value!r}.") from None
        if not math.isfinite(value):
            raise ValueError(f"Aberration {name} must be finite, got {value}.")
        kind = "aberration_angle" if name.startswith("phi") else "aberration"
        check_parameter(name, value, kind=kind)
        if name == "defocus":
            return "C10", -value
        name = ALIASES.get(name, name)
        if name not in NAMES:
            raise ValueError(
                f"Unknown aberration {name!r}.{_suggest(name)} Known names: "
                f"{', '.join(MAGNITUDE_NAMES)} [Å] and {', '.join(ANGLE_NAMES)} [rad]."
            )
        return name, value

    # Mapping interface -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> float:
        if name == "defocus":
            return -self._values["C10"]
        return self._values[ALIASES.get(name, name)]

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def __repr__(self) -> str:
        nonzero = ", ".join(f"{k}={v:.6g}" for k, v in self.nonzero().items())
        return f"Aberrations({nonzero})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aberrations):
            return NotImplemented
        return self.to_cartesian() == other.to_cartesian()

    def __hash__(self) -> int:
        return hash(tuple(self.to_cartesian().items()))

    def nonzero(self) -> dict[str, float]:
        """The coefficients whose magnitude is not zero, with their angles [Å, rad]."""
        out: dict[str, float] = {}
        for n, m in ORDERS:
            magnitude = self._values[f"C{n}{m}"]
            if magnitude != 0:
                out[f"C{n}{m}"] = magnitude
                if m > 0:
                    out[f"phi{n}{m}"] = self._values[f"phi{n}{m}"]
        return out

    def replace(self, **kwargs: float) -> Aberrations:
        """A copy with some coefficients changed (names as in the constructor)."""
        return Aberrations({**self._values, **kwargs})

    # Conversions -------------------------------------------------------------------------------
    def to_abtem(self) -> dict[str, float]:
        """The non-zero coefficients as keyword arguments for ``abtem.Probe`` or ``abtem.CTF``.

        Returns
        -------
        dict
            ``{"C10": ..., "C12": ..., "phi12": ...}`` [Å, rad].
        """
        return self.nonzero()

    def to_cartesian(self) -> dict[str, float]:
        """Cartesian components ``C{n}{m}a = C cos(m phi)``, ``C{n}{m}b = C sin(m phi)`` [Å].

        Round terms (m = 0) keep their plain name.
        """
        out: dict[str, float] = {}
        for n, m in ORDERS:
            magnitude = self._values[f"C{n}{m}"]
            if m == 0:
                out[f"C{n}{m}"] = magnitude
            else:
                angle = m * self._values[f"phi{n}{m}"]
                out[f"C{n}{m}a"] = magnitude * math.cos(angle)
                out[f"C{n}{m}b"] = magnitude * math.sin(angle)
        return out

    @classmethod
    def from_cartesian(cls, components: Mapping[str, float]) -> Aberrations:
        """Build from Cartesian components (inverse of :meth:`to_cartesian`) [Å]."""
        values: dict[str, float] = {}
        pairs: dict[tuple[int, int], list[float]] = {}
        for name, value in components.items():
            if name in MAGNITUDE_NAMES and _order_of(name)[1] == 0:
                values[name] = float(value)
            elif len(name) == 4 and name[:3] in MAGNITUDE_NAMES and name[3] in "ab":
                order = _order_of(name[:3])
                pairs.setdefault(order, [0.0, 0.0])["ab".index(name[3])] = float(value)
            else:
                raise ValueError(
                    f"Unknown Cartesian aberration {name!r}; expected C10, C12a, C12b, C21a, ..."
                )
        for (n, m), (a, b) in pairs.items():
            values[f"C{n}{m}"] = math.hypot(a, b)
            values[f"phi{n}{m}"] = math.atan2(b, a) / m
        return cls(values)

    def to_ceos(self) -> dict[str, float | complex]:
        """CEOS names: round terms as real numbers, the others as complex numbers [Å].

        A CEOS term X of a coefficient with m-fold symmetry is ``C_nm / d * exp(i m phi_nm)``,
        with d = 3 for B2, 4 for S3, B4 and D4, 6 for S5 and R5, else 1. Its magnitude is what a
        CEOS corrector displays; ``arg(X) / m`` is the orientation phi_nm [rad].
        """
        out: dict[str, float | complex] = {}
        for ceos, (name, divisor) in CEOS_NAMES.items():
            n, m = _order_of(name)
            magnitude = self._values[name] / divisor
            out[ceos] = (
                magnitude
                if m == 0
                else complex(magnitude * np.exp(1j * m * self._values[f"phi{n}{m}"]))
            )
        return out

    @classmethod
    def from_ceos(cls, terms: Mapping[str, float | complex]) -> Aberrations:
        """Build from CEOS terms (inverse of :meth:`to_ceos`) [Å]."""
        values: dict[str, float] = {}
        for ceos, value in terms.items():
            if ceos not in CEOS_NAMES:
                raise ValueError(
                    f"Unknown CEOS aberration {ceos!r}; known: {', '.join(CEOS_NAMES)}."
                )
            name, divisor = CEOS_NAMES[ceos]
            n, m = _order_of(name)
            if m == 0:
                if isinstance(value, complex) and value.imag != 0:
                    raise ValueError(f"CEOS {ceos} is a round aberration and must be real.")
                values[name] = float(np.real(value)) * divisor
            else:
                z = complex(value)
                values[name] = abs(z) * divisor
                values[f"phi{n}{m}"] = math.atan2(z.imag, z.real) / m
        return cls(values)

    def to_nion(self) -> dict[str, float]:
        """Nion Swift names: ``C10``, ``C12.a``, ``C12.b``, ... in metres (Cartesian)."""
        out: dict[str, float] = {}
        for name, value in self.to_cartesian().items():
            key = name if len(name) == 3 else f"{name[:3]}.{name[3]}"
            out[key] = value * 1e-10
        return out

    @classmethod
    def from_nion(cls, terms: Mapping[str, float]) -> Aberrations:
        """Build from Nion Swift names in metres (inverse of :meth:`to_nion`)."""
        return cls.from_cartesian(
            {name.replace(".", ""): float(value) * 1e10 for name, value in terms.items()}
        )


def random_aberrations(
    count: int,
    ranges: Mapping[str, tuple[float, float]],
    rng: np.random.Generator,
    *,
    fixed: Aberrations | None = None,
) -> list[Aberrations]:
    """Draw aberration sets uniformly within ranges, for training and test datasets.

    Parameters
    ----------
    count : int
        Number of sets.
    ranges : mapping of name to (low, high)
        Uniform range of each drawn coefficient [Å or rad]. A non-round magnitude (C12, C21...)
        drawn here without a range for its angle gets a uniform angle over its full period
        [0, 2 pi / m). A magnitude range may include negative values only for round terms.
    rng : numpy.random.Generator
    fixed : Aberrations, optional
        Values of the coefficients that are not drawn.

    Returns
    -------
    list of Aberrations

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sets = random_aberrations(3, {"C10": (-500, 500), "C12": (0, 200)}, rng)
    >>> len(sets), all(-500 <= s["C10"] <= 500 for s in sets)
    (3, True)
    """
    base = dict(fixed or Aberrations())
    draws: dict[str, np.ndarray] = {}
    for name, bounds in ranges.items():
        canonical, _ = Aberrations._canonical(name, 0.0)
        low, high = (float(b) for b in bounds)
        if name == "defocus":
            low, high = -high, -low
        if canonical in draws:
            raise ValueError(f"{canonical} is given twice in the ranges (once by an alias).")
        if not (math.isfinite(low) and math.isfinite(high)) or high < low:
            raise ValueError(f"Range of {name} must be finite with low <= high, got {bounds}.")
        if canonical.startswith("C") and _order_of(canonical)[1] > 0 and low < 0:
            raise ValueError(f"{canonical} is a magnitude; give its range as 0 <= low <= high.")
        draws[canonical] = rng.uniform(low, high, count)
    for name in list(draws):
        n, m = _order_of(name)
        if name.startswith("C") and m > 0 and f"phi{n}{m}" not in draws:
            draws[f"phi{n}{m}"] = rng.uniform(0, 2 * math.pi / m, count)
    return [Aberrations({**base, **{k: v[i] for k, v in draws.items()}}) for i in range(count)]
