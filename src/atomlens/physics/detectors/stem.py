"""Scan and detector (STEM) distortions of paper 001 and the ``realistic_stem`` preset.

The probe visits the pixels row by row (fast scan along x, left to right; slow scan along y).
Its position errors come first and are applied to the clean image: slow :class:`Drift`,
per-row :class:`ScanJitter`, :class:`FlyBack` at line starts and a non-uniform
:class:`ScanSpeed` (consecutive ones are resampled once by
:class:`~atomlens.physics.detectors.base.Compose`). Then the detector: shot noise
(:class:`~atomlens.physics.detectors.base.ShotNoise`), photomultiplier gain noise
(:class:`PMTGain`), its lag along the fast scan (:class:`DetectorLag`), line-to-line gain jumps
(:class:`LineJumps`), read-out noise (:class:`~atomlens.physics.detectors.base.ReadoutNoise`), and
single-pixel dropouts and spikes (:class:`BlackPixels`, :class:`Zingers`).

Scan records give shifts of the image content [px]: see
:mod:`atomlens.physics.detectors.base`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import ndimage

from atomlens.physics.detectors.base import (
    Compose,
    Distortion,
    ReadoutNoise,
    ScanDistortion,
    ShotNoise,
    check_dose_range,
    check_non_negative,
    check_positive,
    check_probability,
    check_range,
    check_step,
    is_finite_number,
    is_on,
    log_uniform,
)
from atomlens.physics.detectors.sampling import random_pixels, standard_gamma

__all__ = [
    "BlackPixels",
    "DetectorLag",
    "Drift",
    "FlyBack",
    "LineJumps",
    "PMTGain",
    "ScanJitter",
    "ScanSpeed",
    "Zingers",
    "realistic_stem",
]

# --------------------------------------------------------------------------------------------
# Scan geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift(ScanDistortion):
    """Slow specimen drift: a displacement growing linearly with the row (scan time).

    Row ``r`` shows the specimen moved by ``(velocity_y * r, velocity_x * r)``: an x-drift
    shears the image, a y-drift stretches or compresses it. The drift within one line (at most
    ``|velocity|`` px) is neglected.

    Parameters
    ----------
    velocity_y, velocity_x : float
        Drift velocity [px / row], along the slow (y) and fast (x) scan.

    Notes
    -----
    Record: ``shifts_y`` and ``shifts_x``, (H,) content shift of each row [px].
    """

    velocity_y: float = 0.0
    velocity_x: float = 0.0

    _UNITS: ClassVar[dict[str, str]] = {"velocity_y": "px_per_row", "velocity_x": "px_per_row"}

    def __post_init__(self) -> None:
        for name in ("velocity_y", "velocity_x"):
            check_step(self, name, is_finite_number(getattr(self, name)), "a finite number")

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> dict:
        rows = np.arange(shape[0], dtype=np.float64)
        return {"shifts_y": self.velocity_y * rows, "shifts_x": self.velocity_x * rows}

    def sampling_offsets(self, record: dict, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return -record["shifts_y"], -record["shifts_x"][:, None]


@dataclass(frozen=True)
class ScanJitter(ScanDistortion):
    """Per-row scan jitter: every row shifted by its own random amount along x and along y.

    The shifts are Gaussian with standard deviations ``sigma_x``, ``sigma_y``, correlated from row
    to row as a first-order autoregressive process (coefficient ``correlation``; 0 is white).
    A y-shift resamples the whole row at ``y = r - shifts_y[r]`` (linear interpolation between
    rows): the slow-scan coil holds still during a line.

    Parameters
    ----------
    sigma_x, sigma_y : float
        Standard deviation of the row shifts [px].
    correlation : float
        Row-to-row correlation of the shifts [1], in [0, 1).

    Notes
    -----
    Record: ``shifts_x`` and ``shifts_y``, (H,) content shift of each row [px].
    """

    sigma_x: float = 0.2
    sigma_y: float = 0.0
    correlation: float = 0.0

    _UNITS: ClassVar[dict[str, str]] = {"sigma_x": "px", "sigma_y": "px"}

    def __post_init__(self) -> None:
        check_non_negative(self, "sigma_x", "sigma_y")
        ok = is_finite_number(self.correlation) and 0 <= self.correlation < 1
        check_step(self, "correlation", ok, "in [0, 1)")

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> dict:
        return {
            "shifts_x": _autoregressive(shape[0], self.sigma_x, self.correlation, rng),
            "shifts_y": _autoregressive(shape[0], self.sigma_y, self.correlation, rng),
        }

    def sampling_offsets(self, record: dict, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return -record["shifts_y"], -record["shifts_x"][:, None]


def _autoregressive(
    count: int, sigma: float, correlation: float, rng: np.random.Generator
) -> np.ndarray:
    """A stationary AR(1) series of standard deviation ``sigma`` (zeros if sigma is 0)."""
    if sigma == 0:
        return np.zeros(count)
    white = rng.standard_normal(count)
    if correlation == 0:
        return sigma * white
    gain = math.sqrt(1.0 - correlation**2)
    from scipy.signal import lfilter  # scipy.signal costs ~1 s to import: only when used

    # Start in the stationary state: the first value is white[0].
    series, _ = lfilter([gain], [1.0, -correlation], white, zi=[(1.0 - gain) * white[0]])
    return sigma * series


@dataclass(frozen=True)
class FlyBack(ScanDistortion):
    """Fly-back distortion: the probe settles after returning to the start of each line.

    The content shift along a line is ``amplitude * exp(-x / decay)``, x the distance from the
    line start [px]: largest on the first pixels, which are stretched (or compressed), and gone
    after a few decay lengths. It is the same on every line.

    Parameters
    ----------
    amplitude : float
        Content shift at the line start [px]; its sign sets the direction. Smaller in size than
        ``decay``, so that the probe keeps moving forwards.
    decay : float
        Decay length along the line [px].

    Notes
    -----
    Record: ``shifts_x``, (W,) content shift at each pixel centre [px].
    """

    amplitude: float = 1.0
    decay: float = 10.0

    _UNITS: ClassVar[dict[str, str]] = {"amplitude": "px", "decay": "px"}

    def __post_init__(self) -> None:
        check_positive(self, "decay")
        ok = is_finite_number(self.amplitude) and abs(self.amplitude) < self.decay
        check_step(self, "amplitude", ok, f"finite and smaller in size than decay={self.decay}")

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> dict:
        centres = np.arange(shape[1]) + 0.5
        return {"shifts_x": self.amplitude * np.exp(-centres / self.decay)}

    def sampling_offsets(self, record: dict, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        edges = np.arange(shape[1] + 1, dtype=np.float64)
        return np.zeros(1), -self.amplitude * np.exp(-edges / self.decay)[None, :]


@dataclass(frozen=True)
class ScanSpeed(ScanDistortion):
    """Non-uniform scan speed along the line: a smooth x-displacement and a matching blur.

    The probe speed is ``1 + amplitude * g(x)`` nominal pixels per dwell time, g a smooth random
    profile (Gaussian-filtered white noise of correlation length ``length``, zero mean, unit
    standard deviation), clipped at 0.2 and normalised so that the line keeps its length. The
    probe position is the integral of the speed; each pixel averages the signal over the path
    swept during its dwell, which blurs where the probe is fast. The same profile applies to
    every line (a property of the scan coils).

    Parameters
    ----------
    amplitude : float
        Relative standard deviation of the speed [1], in [0, 0.5].
    length : float
        Correlation length of the speed profile [px].

    Notes
    -----
    Record: ``speed``, (W,) probe speed during each pixel [px / dwell]; ``shifts_x``, (W,)
    content shift at each pixel centre [px].
    """

    amplitude: float = 0.05
    length: float = 32.0

    _UNITS: ClassVar[dict[str, str]] = {"length": "px"}

    def __post_init__(self) -> None:
        ok = is_finite_number(self.amplitude) and 0 <= self.amplitude <= 0.5
        check_step(self, "amplitude", ok, "in [0, 0.5]")
        check_positive(self, "length")

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> dict:
        width = shape[1]
        if self.amplitude == 0:
            return {"speed": np.ones(width), "shifts_x": np.zeros(width)}
        profile = ndimage.gaussian_filter1d(rng.standard_normal(width), self.length)
        profile -= profile.mean()
        spread = profile.std()
        if spread > 0:
            profile /= spread
        speed = np.maximum(1.0 + self.amplitude * profile, 0.2)
        speed /= speed.mean()
        offsets = _edge_offsets(speed)
        return {"speed": speed, "shifts_x": -0.5 * (offsets[:-1] + offsets[1:])}

    def sampling_offsets(self, record: dict, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return np.zeros(1), _edge_offsets(record["speed"])[None, :]


def _edge_offsets(speed: np.ndarray) -> np.ndarray:
    """Probe offsets at the W + 1 pixel edges for a speed profile [px / dwell]."""
    return np.concatenate([[0.0], np.cumsum(speed - 1.0)])


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PMTGain(Distortion):
    """Photomultiplier gain noise: each detected electron gives a random pulse height.

    The pulse height of one electron is Gamma-distributed with mean ``gain`` and coefficient of
    variation ``cv`` (``cv = 1`` is an exponential, a typical scintillator-PMT). The sum over
    ``n`` electrons is Gamma(n / cv^2, gain cv^2). With Poisson ``n`` of mean ``m`` the output
    has mean ``m gain`` and variance ``m gain^2 (1 + cv^2)``: above Poisson by ``1 + cv^2``.
    Sums of shape >= 10 are drawn with the Wilson-Hilferty cube-of-normal (see
    :func:`~atomlens.physics.detectors.sampling.standard_gamma`), smaller ones exactly.

    Parameters
    ----------
    gain : float
        Mean output per detected electron [counts / e-], in ``PARAMETERS["gain"]``.
    cv : float
        Relative standard deviation of one electron's pulse height [1].

    Notes
    -----
    Record: ``{}``.
    """

    gain: float = 10.0
    cv: float = 0.5

    _UNITS: ClassVar[dict[str, str]] = {"gain": "counts_per_e"}
    _NON_NEGATIVE: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_range(self, "gain", "gain")
        check_non_negative(self, "cv")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        if self.cv == 0:
            image *= self.gain
            return image, {}
        variance = self.cv * self.cv
        image /= variance
        out = standard_gamma(image, rng)
        out *= self.gain * variance
        return out, {}


@dataclass(frozen=True)
class DetectorLag(Distortion):
    """Detector lag: a causal exponential filter along the fast scan (blur and streaks).

    ``out[x] = a out[x - 1] + (1 - a) in[x]`` with ``a = exp(-1 / tau)``: the exact response of a
    first-order detector with time constant ``tau`` dwell times to a signal that is constant
    during each dwell. A step reaches 63 % after ``tau`` pixels. Each line starts settled at its
    first pixel's value.

    Parameters
    ----------
    tau : float
        Time constant [px] (in pixel dwell times); 0 for no lag.

    Notes
    -----
    Record: ``{}``.
    """

    tau: float = 1.0

    _UNITS: ClassVar[dict[str, str]] = {"tau": "px"}

    def __post_init__(self) -> None:
        check_non_negative(self, "tau")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        if self.tau == 0:
            return image, {}
        a = math.exp(-1.0 / self.tau)
        from scipy.signal import lfilter

        out, _ = lfilter([1.0 - a], [1.0, -a], image, axis=1, zi=a * image[:, :1])
        return out, {}


@dataclass(frozen=True)
class LineJumps(Distortion):
    """Line-to-line intensity jumps: some rows multiplied by a random gain.

    Each row jumps with probability ``probability``; its factor is ``1 + sigma z`` (z standard
    normal, clipped at 0); other rows keep a factor of 1.

    Parameters
    ----------
    probability : float
        Probability that a row jumps [1].
    sigma : float
        Relative standard deviation of a jump [1].

    Notes
    -----
    Record: ``factors``, (H,) the factor of each row.
    """

    probability: float = 0.05
    sigma: float = 0.1

    def __post_init__(self) -> None:
        check_probability(self, "probability")
        check_non_negative(self, "sigma")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        height = image.shape[0]
        if self.probability == 0 or self.sigma == 0:
            return image, {"factors": np.ones(height)}
        jumps = rng.random(height) < self.probability
        factors = np.where(jumps, np.maximum(1.0 + self.sigma * rng.standard_normal(height), 0), 1)
        image *= factors[:, None]
        return image, {"factors": factors}


@dataclass(frozen=True)
class BlackPixels(Distortion):
    """Black pixels: random single pixels that read zero (dropped samples).

    Parameters
    ----------
    fraction : float
        Probability that a pixel is black [1].

    Notes
    -----
    Record: ``coords``, (N, 2) int, the (row, col) of every black pixel, in raster order.
    """

    fraction: float = 1e-4

    def __post_init__(self) -> None:
        check_probability(self, "fraction")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        coords = random_pixels(image.shape, self.fraction, rng)
        image[coords[:, 0], coords[:, 1]] = 0.0
        return image, {"coords": coords}


@dataclass(frozen=True)
class Zingers(Distortion):
    """Zingers: random single pixels far brighter than the image.

    Parameters
    ----------
    fraction : float
        Probability that a pixel is a zinger [1].
    brightness : float
        Zinger value as a multiple of the image maximum [1].

    Notes
    -----
    Record: ``coords``, (N, 2) int, the (row, col) of every zinger, in raster order; ``value``,
    their value.
    """

    fraction: float = 1e-4
    brightness: float = 3.0

    def __post_init__(self) -> None:
        check_probability(self, "fraction")
        check_positive(self, "brightness")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        coords = random_pixels(image.shape, self.fraction, rng)
        value = self.brightness * max(float(image.max()), 0.0)
        image[coords[:, 0], coords[:, 1]] = value
        return image, {"coords": coords, "value": value}


# --------------------------------------------------------------------------------------------
# Preset
# --------------------------------------------------------------------------------------------


def realistic_stem(
    rng: np.random.Generator, *, dose_per_pixel_range: tuple[float, float] = (2.0, 1000.0)
) -> Compose:
    """A random, realistic STEM chain for training: every STEM distortion with drawn strengths.

    Apply the result to a clean relative-intensity image; its steps and ranges:

    ============  ==============  ==============================  =============  =====
    step          parameter       range                           law            off
    ============  ==============  ==============================  =============  =====
    Drift         velocity_y, _x  -0.02 - 0.02 [px/row] each      uniform        0.3
    ScanJitter    sigma_x         0 - 0.5 [px]                    uniform        0.2
    \\             sigma_y         0 - 0.25 [px]                   uniform
    \\             correlation     0 - 0.9                         uniform
    FlyBack       decay           3 - 30 [px]                     log-uniform    0.3
    \\             amplitude       +-(0.2 - min(3, decay/2)) [px]  uniform, sign
    ScanSpeed     amplitude       0.01 - 0.1                      uniform        0.3
    \\             length          8 - 64 [px]                     log-uniform
    ShotNoise     dose_per_pixel  ``dose_per_pixel_range``        log-uniform    never
    PMTGain       gain            1 - 100 [counts/e-]             log-uniform    never
    \\             cv              0.3 - 1                         uniform
    DetectorLag   tau             0.2 - 3 [px]                    log-uniform    0.3
    LineJumps     probability     0.005 - 0.1                     log-uniform    0.5
    \\             sigma           0.02 - 0.2                      uniform
    ReadoutNoise  sigma           0 - 1 gain [counts]             uniform        never
    BlackPixels   fraction        1e-5 - 1e-3                     log-uniform    0.5
    Zingers       fraction        1e-5 - 1e-3                     log-uniform    0.5
    \\             brightness      1.5 - 5 [x image max]           uniform
    ============  ==============  ==============================  =============  =====

    A step drawn "off" stays in the chain with zero strength, so every record is there.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the parameters here; pass the same generator to ``apply`` for the noise.
    dose_per_pixel_range : (float, float)
        Range of the mean detected dose [e-/px].

    Returns
    -------
    Compose

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image, records = realistic_stem(rng).apply(np.ones((32, 32)), rng)
    >>> image.dtype, len(records)
    (dtype('float32'), 11)
    """
    low, high = check_dose_range(dose_per_pixel_range)
    gain = log_uniform(rng, 1.0, 100.0)
    return Compose(
        (
            _drift(rng),
            _jitter(rng),
            _fly_back(rng),
            _speed(rng),
            ShotNoise(dose_per_pixel=log_uniform(rng, low, high)),
            PMTGain(gain=gain, cv=float(rng.uniform(0.3, 1.0))),
            DetectorLag(tau=log_uniform(rng, 0.2, 3.0) if is_on(rng, 0.3) else 0.0),
            _jumps(rng),
            ReadoutNoise(sigma=float(rng.uniform(0.0, 1.0)) * gain),
            BlackPixels(fraction=_sparse_fraction(rng)),
            Zingers(fraction=_sparse_fraction(rng), brightness=float(rng.uniform(1.5, 5.0))),
        )
    )


def _drift(rng: np.random.Generator) -> Drift:
    vy, vx = (float(v) for v in rng.uniform(-0.02, 0.02, 2))
    return Drift(vy, vx) if is_on(rng, 0.3) else Drift(0.0, 0.0)


def _jitter(rng: np.random.Generator) -> ScanJitter:
    sx, sy, corr = (float(rng.uniform(0, high)) for high in (0.5, 0.25, 0.9))
    return ScanJitter(sx, sy, corr) if is_on(rng, 0.2) else ScanJitter(0.0, 0.0, corr)


def _fly_back(rng: np.random.Generator) -> FlyBack:
    decay = log_uniform(rng, 3.0, 30.0)
    amplitude = float(rng.uniform(0.2, min(3.0, decay / 2))) * float(rng.choice([-1.0, 1.0]))
    return FlyBack(amplitude if is_on(rng, 0.3) else 0.0, decay)


def _speed(rng: np.random.Generator) -> ScanSpeed:
    amplitude, length = float(rng.uniform(0.01, 0.1)), log_uniform(rng, 8.0, 64.0)
    return ScanSpeed(amplitude if is_on(rng, 0.3) else 0.0, length)


def _jumps(rng: np.random.Generator) -> LineJumps:
    probability, sigma = log_uniform(rng, 0.005, 0.1), float(rng.uniform(0.02, 0.2))
    return LineJumps(probability if is_on(rng, 0.5) else 0.0, sigma)


def _sparse_fraction(rng: np.random.Generator) -> float:
    fraction = log_uniform(rng, 1e-5, 1e-3)
    return fraction if is_on(rng, 0.5) else 0.0
