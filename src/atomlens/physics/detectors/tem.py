"""Camera (TEM) distortions of paper 001 and the ``realistic_tem`` preset.

A scintillator-coupled camera: electrons arrive
(:class:`~atomlens.physics.detectors.base.ShotNoise`), their light spreads (:class:`MTFBlur`), is
converted to counts (:class:`Gain`), the sensor adds a dark signal (:class:`DarkCurrent`) and
read-out noise
(:class:`~atomlens.physics.detectors.base.ReadoutNoise`), X-rays hit it (:class:`XraySpikes`), some
pixels are broken (:class:`DeadPixels`, :class:`HotPixels`), and the ADC rounds and saturates
(:class:`Quantise`). A Ronchigram camera is the short chain :func:`ronchigram_camera`: shot noise
at a dose per image, a Gaussian point-spread function (:class:`GaussianPSF`), gain, dark offset
and read-out noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.fft
from scipy import ndimage

from atomlens.core.validation import check_optional, check_parameter
from atomlens.physics.detectors.base import (
    Compose,
    Distortion,
    ReadoutNoise,
    ShotNoise,
    check_dose_range,
    check_non_negative,
    check_positive,
    check_probability,
    check_range,
    check_step,
    is_on,
    log_uniform,
)
from atomlens.physics.detectors.sampling import poisson_counts, random_pixels

__all__ = [
    "DarkCurrent",
    "DeadPixels",
    "Gain",
    "GaussianPSF",
    "HotPixels",
    "MTFBlur",
    "Quantise",
    "XraySpikes",
    "realistic_tem",
    "ronchigram_camera",
]


@dataclass(frozen=True)
class Gain(Distortion):
    """Conversion of electrons to detector counts.

    Parameters
    ----------
    gain : float
        [counts / e-], in ``PARAMETERS["gain"]``.

    Notes
    -----
    Record: ``{}``.
    """

    gain: float = 1.0

    _UNITS: ClassVar[dict[str, str]] = {"gain": "counts_per_e"}

    def __post_init__(self) -> None:
        check_range(self, "gain", "gain")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        image *= self.gain
        return image, {}


@dataclass(frozen=True)
class MTFBlur(Distortion):
    """Camera blur by its modulation transfer function.

    ``MTF(q) = (1 - floor) / (1 + (q / q0)^2) + floor``, q the spatial frequency [cycles / px]:
    the common form for a scintillator camera, a Lorentzian roll-off above ``q0`` onto a plateau
    ``floor``. MTF(0) = 1, so the mean is kept. The filter is applied in Fourier space (periodic
    boundaries). The noise already in the image is blurred too, as on a real camera.

    Parameters
    ----------
    q0 : float
        Roll-off frequency [cycles / px]; Nyquist is 0.5.
    floor : float
        High-frequency plateau of the MTF [1], in [0, 1]; 1 means no blur.

    Notes
    -----
    Record: ``mtf_nyquist``, the MTF at 0.5 cycles / px.

    Examples
    --------
    >>> round(float(MTFBlur(q0=0.25, floor=0.1).mtf(0.25)), 3)
    0.55
    """

    q0: float = 0.25
    floor: float = 0.0

    _UNITS: ClassVar[dict[str, str]] = {"q0": "cycles_per_px"}

    def __post_init__(self) -> None:
        check_positive(self, "q0")
        check_probability(self, "floor")

    def mtf(self, q: np.ndarray | float) -> np.ndarray:
        """The MTF at spatial frequency ``q`` [cycles / px]."""
        q = np.asarray(q, dtype=np.float64)
        return (1.0 - self.floor) / (1.0 + (q / self.q0) ** 2) + self.floor

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        record = {"mtf_nyquist": float(self.mtf(0.5))}
        if self.floor == 1:
            return image, record
        height, width = image.shape
        qy = scipy.fft.fftfreq(height)[:, None]
        qx = scipy.fft.rfftfreq(width)[None, :]
        transfer = self.mtf(np.sqrt(qy * qy + qx * qx))
        spectrum = scipy.fft.rfft2(image, workers=1)
        return scipy.fft.irfft2(spectrum * transfer, s=image.shape, workers=1), record


@dataclass(frozen=True)
class GaussianPSF(Distortion):
    """Camera point-spread function: a Gaussian blur of the electron signal.

    Each electron's light spreads over neighbouring pixels; the blur keeps the total (reflecting
    edges), so it correlates the shot noise without changing the mean.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian [px]; 0 is no blur. In ``PARAMETERS["psf_sigma"]``.

    Notes
    -----
    Record: ``{}``.

    Examples
    --------
    >>> image = np.zeros((7, 7)); image[3, 3] = 1.0
    >>> blurred, _ = GaussianPSF(sigma=1.0).apply(image, np.random.default_rng(0))
    >>> round(float(blurred.sum()), 5), bool(blurred[3, 3] < 0.2)
    (1.0, True)
    """

    sigma: float = 1.0

    _UNITS: ClassVar[dict[str, str]] = {"sigma": "px"}

    def __post_init__(self) -> None:
        check_range(self, "sigma", "psf_sigma")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        if self.sigma > 0:
            image = ndimage.gaussian_filter(image, self.sigma, mode="reflect")
        return image, {}


@dataclass(frozen=True)
class DarkCurrent(Distortion):
    """Thermal dark signal: Poisson counts of mean ``rate * exposure`` added to every pixel.

    Parameters
    ----------
    rate : float
        Dark current [counts / px / s].
    exposure : float
        Exposure time [s].

    Notes
    -----
    Record: ``mean`` [counts / px].
    """

    rate: float = 1.0
    exposure: float = 1.0

    _UNITS: ClassVar[dict[str, str]] = {"rate": "counts_per_px_per_s", "exposure": "s"}

    def __post_init__(self) -> None:
        check_non_negative(self, "rate", "exposure")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        mean = self.rate * self.exposure
        if mean == 0:
            return image, {"mean": 0.0}
        image += poisson_counts(mean, rng, shape=image.shape)
        return image, {"mean": mean}


@dataclass(frozen=True)
class XraySpikes(Distortion):
    """X-ray hits: saturated clusters of a few pixels at random places.

    The number of hits is Poisson with mean ``mean_count``; each hit is a random walk of 1 to
    ``max_size`` steps between 4-neighbours (a compact worm, as a stray X-ray leaves in the
    sensor), and every pixel it touches is set to ``level``.

    Parameters
    ----------
    mean_count : float
        Expected number of hits per image [1 / image].
    max_size : int
        Largest number of steps of a hit [px].
    level : float
        Value of a hit pixel, the saturation level [counts].

    Notes
    -----
    Record: ``centres`` (K, 2) int, the (row, col) where each hit starts; ``coords`` (M, 2) int,
    every pixel set to ``level``, in raster order.
    """

    mean_count: float = 2.0
    max_size: int = 4
    level: float = 65535.0

    _UNITS: ClassVar[dict[str, str]] = {
        "mean_count": "per_image",
        "max_size": "px",
        "level": "counts",
    }

    def __post_init__(self) -> None:
        check_non_negative(self, "mean_count")
        check_positive(self, "level")
        ok = isinstance(self.max_size, int | np.integer) and self.max_size >= 1
        check_step(self, "max_size", ok, "a whole number >= 1")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        count = int(rng.poisson(self.mean_count)) if self.mean_count > 0 else 0
        centres = np.column_stack(
            [rng.integers(0, image.shape[0], count), rng.integers(0, image.shape[1], count)]
        ).astype(np.intp)
        coords = _random_walks(centres, int(self.max_size), image.shape, rng)
        image[coords[:, 0], coords[:, 1]] = self.level
        return image, {"centres": centres, "coords": coords}


_STEPS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]])


def _random_walks(
    starts: np.ndarray, max_size: int, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Unique pixels of random walks of 1..max_size points from ``starts``, clipped to the image."""
    count = len(starts)
    sizes = rng.integers(1, max_size + 1, count)
    moves = _STEPS[rng.integers(0, 4, (count, max_size - 1))]
    path = starts[:, None, :] + np.concatenate(
        [np.zeros((count, 1, 2), int), np.cumsum(moves, axis=1)], axis=1
    )
    keep = np.arange(max_size)[None, :] < sizes[:, None]
    pixels = path[keep]
    pixels = np.clip(pixels, 0, np.array(shape) - 1)
    flat = np.unique(np.ravel_multi_index((pixels[:, 0], pixels[:, 1]), shape))
    return np.stack(np.unravel_index(flat, shape), axis=1).astype(np.intp)


@dataclass(frozen=True)
class DeadPixels(Distortion):
    """Dead pixels: read zero.

    Parameters
    ----------
    fraction : float
        Probability that a pixel is dead [1].
    map_seed : int or None
        Seed of a fixed defect map (the same camera for every image of a series); ``None`` draws
        the map from the ``rng`` of each call.

    Notes
    -----
    Record: ``coords`` (N, 2) int, the (row, col) of every dead pixel, in raster order.
    """

    fraction: float = 1e-4
    map_seed: int | None = None

    def __post_init__(self) -> None:
        check_probability(self, "fraction")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        return _set_pixels(image, self.fraction, 0.0, self.map_seed, rng)


@dataclass(frozen=True)
class HotPixels(Distortion):
    """Hot pixels: read saturated.

    Parameters
    ----------
    fraction : float
        Probability that a pixel is hot [1].
    level : float
        Their value, the saturation level [counts].
    map_seed : int or None
        Seed of a fixed defect map, as for :class:`DeadPixels`.

    Notes
    -----
    Record: ``coords`` (N, 2) int, the (row, col) of every hot pixel, in raster order.
    """

    fraction: float = 1e-4
    level: float = 65535.0
    map_seed: int | None = None

    _UNITS: ClassVar[dict[str, str]] = {"level": "counts"}

    def __post_init__(self) -> None:
        check_probability(self, "fraction")
        check_positive(self, "level")

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        return _set_pixels(image, self.fraction, self.level, self.map_seed, rng)


def _set_pixels(
    image: np.ndarray,
    fraction: float,
    value: float,
    map_seed: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    source = rng if map_seed is None else np.random.default_rng(map_seed)
    coords = random_pixels(image.shape, fraction, source)
    image[coords[:, 0], coords[:, 1]] = value
    return image, {"coords": coords}


@dataclass(frozen=True)
class Quantise(Distortion):
    """The analogue-to-digital converter: round to integers and clip to [0, 2^bits - 1].

    Parameters
    ----------
    bits : int
        ADC bit depth [bit]; the saturation level is ``2**bits - 1`` counts.

    Notes
    -----
    Record: ``saturation`` [counts]; ``n_saturated`` and ``n_clipped_low``, the pixels clipped
    at the top and at 0.
    """

    bits: int = 16

    _UNITS: ClassVar[dict[str, str]] = {"bits": "bit"}

    def __post_init__(self) -> None:
        if not (isinstance(self.bits, int | np.integer) and 1 <= self.bits <= 32):
            raise ValueError(f"Quantise.bits must be an integer in 1..32 [bit], got {self.bits!r}.")

    @property
    def saturation(self) -> int:
        """The largest count, ``2**bits - 1``."""
        return 2 ** int(self.bits) - 1

    def _apply(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        rounded = np.rint(image, out=image)
        record = {
            "saturation": self.saturation,
            "n_saturated": int(np.count_nonzero(rounded > self.saturation)),
            "n_clipped_low": int(np.count_nonzero(rounded < 0)),
        }
        return np.clip(rounded, 0, self.saturation, out=rounded), record


# --------------------------------------------------------------------------------------------
# Preset
# --------------------------------------------------------------------------------------------


def realistic_tem(
    rng: np.random.Generator, *, dose_per_pixel_range: tuple[float, float] = (1.0, 1000.0)
) -> Compose:
    """A random, realistic camera chain for training: every TEM distortion with drawn strengths.

    Apply the result to a clean relative-intensity image; its steps and ranges:

    ============  ==============  ===============================  =============  =====
    step          parameter       range                            law            off
    ============  ==============  ===============================  =============  =====
    ShotNoise     dose_per_pixel  ``dose_per_pixel_range``         log-uniform    never
    MTFBlur       q0              0.1 - 0.5 [cycles/px]            uniform        0.2
    \\             floor           0 - 0.3                          uniform
    Gain          gain            1 - 30 [counts/e-], capped at    log-uniform    never
    \\                             saturation / (8 dose)
    DarkCurrent   rate            0 - 20 [counts/px/s]             uniform        0.3
    \\             exposure        0.1 - 2 [s]                      uniform
    ReadoutNoise  sigma           1 - 15 [counts]                  uniform        never
    \\             offset          0 - 3 sigma [counts]             uniform
    XraySpikes    mean_count      0.5 - 5 [per image]              uniform        0.3
    \\             max_size        1 - 8 [px]                       uniform int
    \\             level           saturation [counts]
    DeadPixels    fraction        1e-5 - 1e-3                      log-uniform    0.5
    HotPixels     fraction        1e-5 - 1e-3, level saturation    log-uniform    0.5
    Quantise      bits            12, 14 or 16 [bit]               uniform        never
    ============  ==============  ===============================  =============  =====

    A step drawn "off" stays in the chain with zero strength (MTF floor 1), so every record is
    there. The gain cap keeps the mean signal at most 1/8 of the ADC range, as an operator sets
    the exposure.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the parameters here; pass the same generator to ``apply`` for the noise.
    dose_per_pixel_range : (float, float)
        Range of the mean dose [e-/px].

    Returns
    -------
    Compose

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image, records = realistic_tem(rng).apply(np.ones((32, 32)), rng)
    >>> image.dtype, len(records)
    (dtype('float32'), 9)
    """
    low, high = check_dose_range(dose_per_pixel_range)
    dose = log_uniform(rng, low, high)
    bits = int(rng.choice([12, 14, 16]))
    saturation = float(2**bits - 1)
    gain = min(log_uniform(rng, 1.0, 30.0), saturation / (8.0 * dose))
    sigma = float(rng.uniform(1.0, 15.0))
    return Compose(
        (
            ShotNoise(dose_per_pixel=dose),
            _mtf(rng),
            Gain(gain=gain),
            _dark(rng),
            ReadoutNoise(sigma=sigma, offset=float(rng.uniform(0.0, 3.0 * sigma))),
            _xrays(rng, saturation),
            DeadPixels(fraction=_fraction(rng)),
            HotPixels(fraction=_fraction(rng), level=saturation),
            Quantise(bits=bits),
        )
    )


def _mtf(rng: np.random.Generator) -> MTFBlur:
    q0, floor = float(rng.uniform(0.1, 0.5)), float(rng.uniform(0.0, 0.3))
    return MTFBlur(q0=q0, floor=floor if is_on(rng, 0.2) else 1.0)


def _dark(rng: np.random.Generator) -> DarkCurrent:
    rate, exposure = float(rng.uniform(0.0, 20.0)), float(rng.uniform(0.1, 2.0))
    return DarkCurrent(rate=rate if is_on(rng, 0.3) else 0.0, exposure=exposure)


def _xrays(rng: np.random.Generator, saturation: float) -> XraySpikes:
    count, size = float(rng.uniform(0.5, 5.0)), int(rng.integers(1, 9))
    return XraySpikes(mean_count=count if is_on(rng, 0.3) else 0.0, max_size=size, level=saturation)


def _fraction(rng: np.random.Generator) -> float:
    fraction = log_uniform(rng, 1e-5, 1e-3)
    return fraction if is_on(rng, 0.5) else 0.0


def ronchigram_camera(
    dose_per_image: float | None,
    *,
    psf_sigma: float = 0.0,
    gain: float = 1.0,
    dark_offset: float = 0.0,
    readout_noise: float = 0.0,
) -> Compose:
    """The camera of a Ronchigram: the chain ``ShotNoise``, ``GaussianPSF``, ``Gain``,
    ``ReadoutNoise``.

    Apply it to a Ronchigram's normalised intensity (the share of the beam in each pixel, as
    :func:`~atomlens.physics.imaging.ronchigram.simulate_ronchigrams` returns it); the result is in
    counts.

    Parameters
    ----------
    dose_per_image : float or None
        Electrons in the beam per image [e-]; None reads the image as expected electrons and
        adds no shot noise.
    psf_sigma : float
        Gaussian point-spread function [px].
    gain : float
        [counts / e-].
    dark_offset : float
        Mean dark signal added to every pixel [counts].
    readout_noise : float
        Standard deviation of the Gaussian read-out noise [counts].

    Each parameter must lie in its range of :data:`atomlens.core.validation.PARAMETERS`;
    :class:`~atomlens.core.validation.ParameterError` names the keyword otherwise.

    Returns
    -------
    Compose

    Examples
    --------
    >>> camera = ronchigram_camera(1e6, readout_noise=2.0)
    >>> counts, _ = camera.apply(np.full((10, 10), 1e-2), np.random.default_rng(0))
    >>> bool(abs(counts.mean() / 1e4 - 1) < 0.01)
    True
    """
    # Checked here under this function's keywords (the steps would name their own fields).
    check_optional("dose_per_image", dose_per_image)
    check_parameter("psf_sigma", psf_sigma)
    check_parameter("gain", gain)
    check_parameter("dark_offset", dark_offset)
    check_parameter("readout_noise", readout_noise)
    steps: list[Distortion] = []
    if dose_per_image is not None:
        steps.append(ShotNoise(dose_per_image=dose_per_image, exact_below=20.0))
    steps += [
        GaussianPSF(sigma=psf_sigma),
        Gain(gain=gain),
        ReadoutNoise(sigma=readout_noise, offset=dark_offset),
    ]
    return Compose(tuple(steps))
