"""Detector and scan distortions of paper 001 (Lobato, Friedrich & Van Aert): the base and Compose.

Every distortion is a frozen dataclass of physical parameters with one method,
``apply(image, rng) -> (image, record)``: it takes a float (H, W) image and a
:class:`numpy.random.Generator`, and returns the distorted float32 image and a ``record`` dict of
what it drew (per-row shifts, pixel coordinates, ...), so that tests and ground truth can use it.
:class:`Compose` chains steps; ``realistic_tem`` and ``realistic_stem`` draw a whole chain from
physically sensible ranges for training.

Conventions
-----------
Units
    A clean image is a relative intensity: :class:`ShotNoise` scales it to a mean of ``dose``
    electrons per pixel and draws the electron counts, so the steps before it (the scan
    distortions of STEM) are unit-free and the steps after it work in electrons, then in
    detector counts after a gain step.
Order
    The presets follow the signal: scan geometry (which point of the specimen a pixel sees), shot
    noise, detector response and gain, read-out noise, then pixel defects and quantisation.
Shifts
    Scan records give the shift of the image content in pixels, row/column order: a feature at
    column ``x`` of a row whose record says ``shifts_x = s`` appears at ``x + s``. The probe was off
    by ``-s``; :meth:`ScanDistortion.sampling_offsets` returns that probe-side field.

Step modules: :mod:`atomlens.physics.detectors.tem` (camera) and
:mod:`atomlens.physics.detectors.stem` (scan and photomultiplier); the subpackage
:mod:`atomlens.physics.detectors` exports their names with these. Helpers:
:mod:`atomlens.physics.detectors.scan` (``resample_scan``) and
:mod:`atomlens.physics.detectors.sampling` (``poisson_counts``, ``standard_normal``, ...).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from atomlens.core.validation import ParameterError
from atomlens.core.validation import check_parameter as check_documented
from atomlens.physics.detectors.sampling import poisson_counts as poisson_counts
from atomlens.physics.detectors.sampling import poisson_in_place, standard_normal
from atomlens.physics.detectors.sampling import random_pixels as random_pixels
from atomlens.physics.detectors.scan import resample_scan

__all__ = [
    "Compose",
    "Distortion",
    "ReadoutNoise",
    "ScanDistortion",
    "ShotNoise",
    "resample_scan",
    "validate_image",
]

# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_image(image: Any, owner: str, *, non_negative: bool = False) -> np.ndarray:
    """Check that ``image`` is one finite (H, W) image and return a float64 copy of it.

    Parameters
    ----------
    image : array_like
        The image.
    owner : str
        Name of the caller, for the message.
    non_negative : bool
        Also require every pixel >= 0 (expected electrons, counts).

    Raises
    ------
    ValueError
        If the image is not 2D, not finite, or (with ``non_negative``) has a negative pixel.
    """
    array = np.array(image, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{owner} takes one non-empty (H, W) image, got shape {array.shape}; "
            "apply it to each image of a series in turn."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{owner}: the image must be finite, it has NaN or inf pixels.")
    if non_negative:
        _check_non_negative_image(array, owner)
    return array


def _check_non_negative_image(array: np.ndarray, owner: str) -> None:
    low = float(array.min())
    if low < 0:
        raise ValueError(
            f"{owner} takes a non-negative image (expected electrons or counts), got a minimum "
            f"of {low:g}; apply it before read-out noise or clip the image at 0."
        )


def _unit(obj: Distortion, name: str) -> str:
    unit = obj._UNITS.get(name, "")
    return f" [{unit.replace('_per_', '/').replace('_', ' ')}]" if unit else ""


def check_step(obj: Distortion, name: str, ok: bool, requirement: str) -> None:
    """Raise ValueError naming ``obj.name``, its unit (from ``_UNITS``) and ``requirement``
    unless ``ok``."""
    value = getattr(obj, name)
    if not ok:
        raise ValueError(
            f"{type(obj).__name__}.{name} must be {requirement}{_unit(obj, name)}, got {value!r}."
        )


def check_range(obj: Distortion, name: str, kind: str) -> None:
    """Raise :class:`~atomlens.core.validation.ParameterError` unless ``obj.name`` lies in the
    documented range ``PARAMETERS[kind]`` (the message names the step, the unit and the range).

    Parameters
    ----------
    obj : Distortion
        The step whose parameter is checked.
    name : str
        The parameter (a field of ``obj``).
    kind : str
        Its entry in :data:`atomlens.core.validation.PARAMETERS`, e.g. ``"psf_sigma"``.
    """
    try:
        check_documented(name, getattr(obj, name), kind=kind)
    except ParameterError as error:
        raise ParameterError(f"{type(obj).__name__}: {error}") from None


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is one finite real number (a Python or numpy int or float, not an
    array or a string)."""
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def check_non_negative(obj: Distortion, *names: str) -> None:
    """Raise ValueError unless every named parameter is a finite number >= 0."""
    for name in names:
        value = getattr(obj, name)
        check_step(obj, name, is_finite_number(value) and value >= 0, "a finite number >= 0")


def check_positive(obj: Distortion, *names: str) -> None:
    """Raise ValueError unless every named parameter is a finite number > 0."""
    for name in names:
        value = getattr(obj, name)
        check_step(obj, name, is_finite_number(value) and value > 0, "a finite number > 0")


def check_probability(obj: Distortion, *names: str) -> None:
    """Raise ValueError unless every named parameter is a probability in [0, 1]."""
    for name in names:
        value = getattr(obj, name)
        check_step(
            obj, name, is_finite_number(value) and 0 <= value <= 1, "a probability in [0, 1]"
        )


def _check_rng(rng: Any, owner: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}.apply needs a numpy.random.Generator, got {type(rng).__name__}; "
            "use numpy.random.default_rng(seed)."
        )


# --------------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------------


class Distortion(ABC):
    """Base of every distortion step; subclasses are frozen dataclasses of physical parameters.

    A subclass implements ``_apply(image, rng) -> (image, record)``, which may overwrite its
    float64 ``image`` (the caller hands it a private copy: whole-image temporaries are costly)
    and may return it. ``_UNITS`` maps a parameter to its unit as a key suffix
    (``"e_per_px"``); ``describe`` and the error messages use it. ``_NON_NEGATIVE`` marks steps
    that take expected electrons or counts.
    """

    _UNITS: ClassVar[dict[str, str]] = {}
    _NON_NEGATIVE: ClassVar[bool] = False

    @property
    def name(self) -> str:
        """The step's name (its class name)."""
        return type(self).__name__

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Distort one image.

        Parameters
        ----------
        image : ndarray of shape (H, W)
            Float image, finite (and non-negative for shot noise and gain noise).
        rng : numpy.random.Generator
            Source of every random draw; the same seed gives the same output.

        Returns
        -------
        image : ndarray of shape (H, W), float32
            The distorted image.
        record : dict
            What was drawn; the keys are listed in each class's docstring.
        """
        _check_rng(rng, self.name)
        array = validate_image(image, self.name, non_negative=self._NON_NEGATIVE)
        out, record = self._apply(array, rng)
        return np.asarray(out, dtype=np.float32), record

    @abstractmethod
    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Distort a validated float64 image, which it may overwrite; may return float64."""

    def describe(self) -> dict:
        """The step's name and parameters, units in the keys (JSON-friendly)."""
        out: dict[str, Any] = {"name": self.name}
        for field in fields(self):  # type: ignore[arg-type]
            unit = self._UNITS.get(field.name, "")
            value = getattr(self, field.name)
            out[f"{field.name}_{unit}" if unit else field.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class ScanDistortion(Distortion):
    """Base of the STEM scan distortions: errors of the probe position, resampled once.

    A subclass draws a record (:meth:`draw`) and turns it into the probe's sampling offsets
    (:meth:`sampling_offsets`). :class:`Compose` adds the offsets of consecutive scan steps (they
    are errors of the same probe at the same instant) and resamples the image once.
    """

    @abstractmethod
    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> dict:
        """Draw the step's random quantities for an image of ``shape`` (H, W)."""

    @abstractmethod
    def sampling_offsets(self, record: dict, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        """The probe's offsets from the nominal raster [px], deterministic given the record.

        Returns
        -------
        row_offsets : ndarray broadcastable to (H,)
            The whole row ``r`` is sampled at ``y = r + row_offsets[r]``.
        edge_offsets : ndarray broadcastable to (H, W + 1)
            The pixel edge ``e`` (at ``x = e - 1/2``) of row ``r`` is at ``x + edge_offsets[r, e]``.
        """

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        record = self.draw(image.shape, rng)
        return resample_scan(image, *self.sampling_offsets(record, image.shape)), record


# --------------------------------------------------------------------------------------------
# Steps shared by TEM and STEM
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotNoise(Distortion):
    """Electron shot noise: the first step of every detector chain.

    The image becomes expected electrons per pixel in one of three ways, then each pixel's count
    is drawn from a Poisson distribution with that mean (the one Poisson sampler of atomlens,
    :func:`~atomlens.physics.detectors.sampling.poisson_counts`). Later steps work in electrons
    (or in counts after a gain step).

    - ``dose_per_pixel`` [e-/px]: the image is a relative intensity, scaled to this mean (STEM and
      HRTEM images);
    - ``dose_per_image`` [e-]: the image is the share of the beam that reaches each pixel (it sums
      to at most 1; the rest is scattered off the detector), times this dose (Ronchigrams);
    - neither: the image is in expected electrons already.

    A dark image (all zero: a HAADF image of vacuum) is valid and gives zero counts: the Poisson
    distribution of mean 0 is certainly 0, whatever the scale, so ``dose_per_pixel`` then reads
    the image as relative to 1 (``scale = dose_per_pixel``, like ``simulate_image``'s dose).

    Parameters
    ----------
    dose_per_pixel : float, optional
        Mean number of electrons per pixel [e-/px], in ``PARAMETERS["dose_per_pixel"]``.
    dose_per_image : float, optional
        Electrons in the beam per image [e-], in ``PARAMETERS["dose_per_image"]``.
    exact_below : float
        Expected counts below which the Poisson draw is exact [e-]; above, a Cornish-Fisher
        normal that matches the first three moments (see
        :func:`~atomlens.physics.detectors.sampling.poisson_counts`).
        ``math.inf`` draws exactly everywhere.

    Notes
    -----
    Record: ``scale`` [e- per unit of input]: the ground truth in electrons is
    ``scale * clean``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> counts, record = ShotNoise(dose_per_pixel=50).apply(np.ones((6, 7)), rng)
    >>> record["scale"]
    50.0
    >>> counts, record = ShotNoise(dose_per_image=420).apply(np.full((6, 7), 1 / 42), rng)
    >>> record["scale"]
    420.0
    """

    dose_per_pixel: float | None = None
    dose_per_image: float | None = None
    exact_below: float = 20.0

    _UNITS: ClassVar[dict[str, str]] = {
        "dose_per_pixel": "e_per_px",
        "dose_per_image": "e",
        "exact_below": "e",
    }
    _NON_NEGATIVE: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.dose_per_pixel is not None and self.dose_per_image is not None:
            raise ValueError(
                "ShotNoise takes dose_per_pixel [e-/px] or dose_per_image [e-], not both "
                f"(got {self.dose_per_pixel} and {self.dose_per_image})."
            )
        for name in ("dose_per_pixel", "dose_per_image"):
            if getattr(self, name) is not None:
                check_range(self, name, name)
        check_step(self, "exact_below", self.exact_below > 0, "> 0 (math.inf for exact draws)")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        scale = 1.0
        if self.dose_per_pixel is not None:
            scale = _scale_to_mean(image, float(self.dose_per_pixel))
        elif self.dose_per_image is not None:
            scale = float(self.dose_per_image)
        if math.isfinite(scale):
            image *= scale
        else:  # a mean so small that dose / mean overflows: each pixel / mean is <= H * W
            image /= float(image.mean())
            image *= float(self.dose_per_pixel)
        return poisson_in_place(image, rng, self.exact_below), {"scale": scale}


def _scale_to_mean(image: np.ndarray, dose: float) -> float:
    """Electrons per unit of ``image`` that give it a mean of ``dose`` [e-/px].

    A dark (all-zero, non-negative) image has no mean to scale: its expected counts are 0 at
    any scale, and it is read as relative to 1 (``dose`` itself).
    """
    mean = float(image.mean())
    return dose / mean if mean > 0 else dose


@dataclass(frozen=True)
class ReadoutNoise(Distortion):
    """Gaussian read-out noise on top of a bias offset.

    Parameters
    ----------
    sigma : float
        Standard deviation [counts], in ``PARAMETERS["readout_noise"]``.
    offset : float
        Constant bias added to every pixel [counts], in ``PARAMETERS["dark_offset"]``.

    Notes
    -----
    Record: ``{}`` (the noise itself is not kept).
    """

    sigma: float = 1.0
    offset: float = 0.0

    _UNITS: ClassVar[dict[str, str]] = {"sigma": "counts", "offset": "counts"}

    def __post_init__(self) -> None:
        check_range(self, "sigma", "readout_noise")
        check_range(self, "offset", "dark_offset")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        if self.sigma > 0:
            noise = standard_normal(image.shape, rng)
            noise *= self.sigma
            image += noise
        if self.offset:
            image += self.offset
        return image, {}


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compose:
    """A chain of distortion steps applied in order.

    Consecutive :class:`ScanDistortion` steps are fused: their probe offsets add (they are errors
    of the same probe position) and the image is resampled once, which is both the physics and
    faster. The random draws are the same as applying the steps one by one.

    Parameters
    ----------
    steps : sequence of Distortion
        The steps, first applied first.

    Examples
    --------
    >>> chain = Compose([ShotNoise(dose_per_pixel=20.0), ReadoutNoise(sigma=2.0)])
    >>> image, records = chain.apply(np.ones((6, 7)), np.random.default_rng(0))
    >>> [name for name, _ in records]
    ['ShotNoise', 'ReadoutNoise']
    """

    steps: tuple[Distortion, ...]

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        for step in steps:
            if not isinstance(step, Distortion):
                raise ValueError(
                    f"Compose takes Distortion steps, got {type(step).__name__}: {step!r}."
                )
        object.__setattr__(self, "steps", steps)

    def apply(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[tuple[str, dict]]]:
        """Apply every step in order.

        Returns
        -------
        image : ndarray of shape (H, W), float32
        records : list of (str, dict)
            Each step's name and record, in order.
        """
        _check_rng(rng, "Compose")
        out = validate_image(image, "Compose")
        records: list[tuple[str, dict]] = []
        index = 0
        while index < len(self.steps):
            run = _scan_run(self.steps, index)
            if run:
                out, run_records = _apply_scan_run(run, out, rng)
                records.extend(zip((s.name for s in run), run_records, strict=True))
                index += len(run)
                continue
            step = self.steps[index]
            if step._NON_NEGATIVE:
                _check_non_negative_image(out, step.name)
            out, record = step._apply(out, rng)
            records.append((step.name, record))
            index += 1
        return np.asarray(out, dtype=np.float32), records

    def describe(self) -> dict:
        """The steps' descriptions, in order (JSON-friendly)."""
        return {"name": "Compose", "steps": [step.describe() for step in self.steps]}

    def __len__(self) -> int:
        return len(self.steps)


def _scan_run(steps: Sequence[Distortion], start: int) -> list[ScanDistortion]:
    run = []
    for step in steps[start:]:
        if not isinstance(step, ScanDistortion):
            break
        run.append(step)
    return run


def _apply_scan_run(
    run: list[ScanDistortion], image: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict]]:
    records = [step.draw(image.shape, rng) for step in run]
    rows: Any = 0.0
    edges = []
    for step, record in zip(run, records, strict=True):
        step_rows, step_edges = step.sampling_offsets(record, image.shape)
        rows = rows + step_rows
        edges.append(step_edges)
    return resample_scan(image, rows, *edges), records


# --------------------------------------------------------------------------------------------
# Helpers of the presets
# --------------------------------------------------------------------------------------------


def check_dose_range(dose_per_pixel_range: tuple[float, float]) -> tuple[float, float]:
    """A dose range [e-/px] as two floats ``low <= high``, both in ``PARAMETERS["dose_per_pixel"]``.

    Raises
    ------
    ValueError
        :class:`~atomlens.core.validation.ParameterError` for a bound outside the documented
        range, ValueError for anything but a pair ``low <= high``.
    """
    bounds = tuple(np.ravel(np.asarray(dose_per_pixel_range, dtype=object)))
    if len(bounds) != 2:
        raise ValueError(
            f"dose_per_pixel_range must be a pair (low, high) [e-/px], got {dose_per_pixel_range}."
        )
    low, high = (
        float(check_documented("dose_per_pixel_range", value, kind="dose_per_pixel"))
        for value in bounds
    )
    if not low <= high:
        raise ValueError(
            f"dose_per_pixel_range must be 0 < low <= high [e-/px], got {dose_per_pixel_range}."
        )
    return low, high


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One draw, uniform in log between ``low`` and ``high`` (> 0, in the parameter's unit)."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def is_on(rng: np.random.Generator, p_off: float) -> bool:
    """True with probability ``1 - p_off``: whether a preset step is drawn on."""
    return bool(rng.random() >= p_off)
