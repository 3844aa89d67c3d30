"""The result of an aberration estimate: coefficients with uncertainties, and their conversions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.physics.optics.aberrations import CEOS_NAMES, Aberrations

#: The polar terms: (name, index of the a component or the round value, m).
_TERMS: tuple[tuple[str, int, int], ...] = (
    ("C10", 0, 0),
    ("C12", 1, 2),
    ("C21", 3, 1),
    ("C23", 5, 3),
    ("C30", 7, 0),
)
#: Display unit per term: (name, Å per unit).
_DISPLAY = {"C10": ("nm", 10.0), "C12": ("nm", 10.0), "C21": ("nm", 10.0), "C23": ("nm", 10.0),
            "C30": ("µm", 1e4)}  # fmt: skip


@dataclass(frozen=True)
class AberrationEstimate:
    """Estimated probe aberrations with one-sigma uncertainties.

    Attributes
    ----------
    values, sigma : ndarray of shape (8,)
        Cartesian coefficients and their standard deviations [Å], ordered as
        :data:`~atomlens.calibrate.symmetry.COEFFICIENTS` (C10, C12a, C12b, C21a, C21b, C23a,
        C23b, C30), with ``C_nm a = C_nm cos(m phi_nm)``, ``b = C_nm sin(m phi_nm)``.
    sign_probability : float
        Probability that the overall sign of chi is right (0.5 to 1). One Ronchigram fixes chi
        only up to chi -> -chi unless the specimen contrast or C30 breaks the tie.
    sign_resolved : bool
        Whether ``sign_probability`` reached the threshold asked for; if not, ``alternative``
        (the estimate with the other overall sign) is as plausible and both should be reported.
    alternative : ndarray of shape (8,) or None
        The other-sign solution [Å] when the sign is not resolved.
    source : str
        The file(s) or "array".
    model : str
        The estimator's name.
    notes : tuple of str
        Warnings about the input (calibration mismatch, ambiguous sign...).
    """

    values: np.ndarray
    sigma: np.ndarray
    sign_probability: float
    sign_resolved: bool
    alternative: np.ndarray | None = None
    source: str = "array"
    model: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def cartesian(self, *, alternative: bool = False) -> dict[str, float]:
        """Cartesian coefficients [Å] (or those of the other-sign solution)."""
        values = self.alternative if alternative else self.values
        if values is None:
            raise ValueError("This estimate has no alternative: its sign is resolved.")
        return {name: float(v) for name, v in zip(COEFFICIENTS, values, strict=True)}

    def aberrations(self, *, alternative: bool = False) -> Aberrations:
        """The estimate as :class:`~atomlens.physics.optics.aberrations.Aberrations`."""
        return Aberrations.from_cartesian(self.cartesian(alternative=alternative))

    def polar(self) -> dict[str, tuple[float, float]]:
        """abTEM's polar terms as (value, sigma): magnitudes [Å] and angles phi_nm [rad].

        The sigma of a magnitude and of an angle come from first-order error propagation of the
        Cartesian sigmas (the angle's is capped at pi / m, its whole range).
        """
        out: dict[str, tuple[float, float]] = {}
        for name, index, m in _TERMS:
            if m == 0:
                out[name] = (float(self.values[index]), float(self.sigma[index]))
                continue
            a, b = self.values[index], self.values[index + 1]
            sa, sb = self.sigma[index], self.sigma[index + 1]
            magnitude = math.hypot(a, b)
            if magnitude > 0:
                magnitude_sigma = math.hypot(a * sa, b * sb) / magnitude
                angle_sigma = min(math.hypot(b * sa, a * sb) / magnitude**2 / m, math.pi / m)
            else:
                magnitude_sigma, angle_sigma = math.hypot(sa, sb), math.pi / m
            angle = (math.atan2(b, a) / m) % (2 * math.pi / m)
            out[name] = (magnitude, magnitude_sigma)
            out[f"phi{name[1:]}"] = (angle, angle_sigma)
        return out

    def to_abtem(self, *, std: bool = True) -> dict[str, float]:
        """abTEM keyword arguments [Å, rad] (``abtem.Probe(**estimate.to_abtem(std=False))``).

        With ``std`` each key also has a ``<key>_std`` entry.
        """
        out: dict[str, float] = {}
        for key, (value, sigma) in self.polar().items():
            out[key] = value
            if std:
                out[f"{key}_std"] = sigma
        return out

    def to_ceos(self) -> dict[str, float | complex]:
        """CEOS names (C1, A1, B2, A2, C3) [Å]; see :meth:`Aberrations.to_ceos`."""
        terms = self.aberrations().to_ceos()
        return {k: terms[k] for k in ("C1", "A1", "B2", "A2", "C3")}

    def to_dict(self) -> dict:
        """JSON-ready: abTEM keys [Å, rad] with ``_std``, the sign verdict, source and model."""
        out = {
            "source": self.source,
            "model": self.model,
            **self.to_abtem(std=True),
            "sign_probability": self.sign_probability,
            "sign_resolved": self.sign_resolved,
            "notes": list(self.notes),
        }
        if self.alternative is not None:
            out["alternative"] = AberrationEstimate(
                self.alternative, self.sigma, 0.5, False
            ).to_abtem(std=False)
        return out

    def to_table(self, truth: Aberrations | None = None):
        """A pandas DataFrame: one row per polar term, value and sigma in display units (nm, um).

        With ``truth`` (e.g. of a simulated Ronchigram) a ``truth`` column is added.
        """
        import pandas as pd

        rows = []
        polar = self.polar()
        for name, _, m in _TERMS:
            unit, per_unit = _DISPLAY[name]
            value, sigma = polar[name]
            row = {"term": name, "ceos": _ceos_name(name), "value": value / per_unit,
                   "sigma": sigma / per_unit, "unit": unit}  # fmt: skip
            if truth is not None:
                row["truth"] = truth[name] / per_unit
            if m:
                angle, angle_sigma = polar[f"phi{name[1:]}"]
                row |= {
                    "angle_deg": math.degrees(angle),
                    "angle_sigma_deg": math.degrees(angle_sigma),
                }
                if truth is not None:
                    row["truth_angle_deg"] = math.degrees(truth[f"phi{name[1:]}"]) % (360 / m)
            rows.append(row)
        return pd.DataFrame(rows)

    def describe(self, truth: Aberrations | None = None) -> str:
        """A human-readable table (nm, um, degrees), with the truth beside it when given."""
        lines = [f"Aberrations from {self.source} ({self.model})"]
        header = f"  {'term':>9} {'estimate':>10}   {'sigma':>6}"
        header += f" {'truth':>9}" if truth is not None else ""
        lines.append(header + "        angle [deg]" + ("   (truth)" if truth is not None else ""))
        for row in self.to_table(truth).to_dict("records"):
            text = f"  {row['term']:>4} ({row['ceos']}) {row['value']:10.2f} ± {row['sigma']:6.2f}"
            if truth is not None:
                text += f" {row['truth']:9.2f}"
            text += f" {row['unit']:<3}"
            if "angle_deg" in row and not math.isnan(row["angle_deg"]):
                text += f"  {row['angle_deg']:6.1f} ± {row['angle_sigma_deg']:5.1f}"
                if truth is not None:
                    text += f"  ({row['truth_angle_deg']:5.1f})"
            lines.append(text)
        verdict = "resolved" if self.sign_resolved else "NOT resolved (both signs plausible)"
        lines.append(f"  overall sign {verdict}: p = {self.sign_probability:.2f}")
        if self.alternative is not None:
            other = AberrationEstimate(self.alternative, self.sigma, 0.5, False).polar()
            lines.append(
                f"  other solution: C10 {other['C10'][0] / 10:.2f} nm, "
                f"C12 {other['C12'][0] / 10:.2f} nm, C30 {other['C30'][0] / 1e4:.2f} um"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def _ceos_name(name: str) -> str:
    return next(ceos for ceos, (krivanek, _) in CEOS_NAMES.items() if krivanek == name)
