"""Classical restoration baselines whose every parameter comes from the image itself.

Each baseline is ``f(image) -> ndarray``: a 2D image in counts (any offset and scale) in, the
restored image in the same units out (float32, same shape). Each first replaces outlier pixels
(:func:`remove_outliers`: zingers, hot, dead, black and saturated pixels); none of
them removes scan distortions (jitter, fly-back, lag).

- :func:`estimate_noise`: the Poisson-Gaussian noise model ``var = gain * (mean - offset) +
  read_sigma**2``, fitted to local means and variances of the image.
- :func:`gaussian`: a Gaussian filter whose width minimises Stein's unbiased risk estimate.
- :func:`wiener`: an empirical Wiener filter on the image's (cosine) spectrum.
- :func:`pilot_wiener`: the same with the signal power taken from a first estimate (the
  network's output in ``restore(method="net")``).
- :func:`nl_means`: non-local means (scikit-image) on the variance-stabilised image.
- :func:`bm3d`: BM3D (the ``bm3d`` package, non-commercial licence, optional) on the
  variance-stabilised image.
- :func:`anscombe` / :func:`inverse_anscombe`: the generalised Anscombe transform and its exact
  unbiased inverse (closed-form approximation).

Notes
-----
**Noise model.** A detector that records ``z = gain * p + offset + n`` with ``p`` Poisson of
mean ``y`` [e-] and ``n`` Gaussian of standard deviation ``read_sigma`` [counts] has mean
``m = gain * y + offset`` and variance ``gain * (m - offset) + read_sigma**2``: a straight line
in the mean, slope ``gain`` [counts/e-], intercept ``read_sigma**2 - gain * offset``
[counts^2]. A photomultiplier's pulse-height spread raises the slope by ``1 + cv**2``: the
fitted gain is the effective one. One image determines the slope and the intercept, not how the
intercept splits into ``offset`` and ``read_sigma``; the transforms below depend only on the
slope and intercept, so the split does not change any result (see :func:`estimate_noise`).

**Generalised Anscombe transform** (Starck, Murtagh and Bijaoui 1998; Makitalo and Foi 2013).
With ``x = (z - offset) / gain`` (electrons) and ``s = read_sigma / gain`` [e-]::

    f(x) = 2 * sqrt(x + 3/8 + s**2)      (0 where the root is negative)

has variance close to 1 for every mean. Its exact unbiased inverse (the ``y`` whose expected
transform is ``D``) has the closed-form approximation (Makitalo and Foi 2011, 2013)::

    y(D) = D**2/4 + sqrt(3/2)/4 / D - 11/8 / D**2 + 5 sqrt(3/2)/8 / D**3 - 1/8 - s**2

with ``D`` clipped below at ``2 sqrt(3/8)``, where the pure-Poisson inverse is 0. It removes the
bias that the algebraic inverse ``D**2/4 - 3/8 - s**2`` leaves at low counts. A pure-Gaussian
image (fitted gain 0) is only shifted and scaled: ``f(z) = (z - offset) / read_sigma``.

References
----------
Makitalo, M. and Foi, A. (2011), IEEE Trans. Image Process. 20(9), 2697-2698.
Makitalo, M. and Foi, A. (2013), IEEE Trans. Image Process. 22(1), 91-103.
Foi, A. et al. (2008), IEEE Trans. Image Process. 17(10), 1737-1754 (noise fitting).
Dabov, K. et al. (2007), IEEE Trans. Image Process. 16(8), 2080-2095 (BM3D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from atomlens.core.validation import check_image

__all__ = [
    "CLASSICAL",
    "NoiseModel",
    "anscombe",
    "bm3d",
    "estimate_noise",
    "feature_period",
    "gaussian",
    "inverse_anscombe",
    "nl_means",
    "pilot_wiener",
    "remove_outliers",
    "sure_sigma",
    "wiener",
]

#: Residual kernel of the noise estimate: the product of second differences along rows and
#: columns. It cancels any signal that is locally a sum of a function of y and one of x, or a
#: quadratic, and the sum of its squared weights is 36 (Immerkaer 1996).
_RESIDUAL = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0])
_RESIDUAL_GAIN = 36.0
#: Weights of the level that the residual's variance follows: var(r) = 36 * (gain * level +
#: intercept) with level = sum(w**2 * mean) / 36 over the 3 x 3 pixels.
_LEVEL = _RESIDUAL**2 / _RESIDUAL_GAIN
#: Squared residuals above this quantile of their bin are dropped (atomic columns leak through);
#: the mean of the rest is divided by the kept share of a chi-square(1) mean, 0.92476.
_TRIM = 0.99
_TRIM_BIAS = 0.9247559
_SQRT_3_2 = math.sqrt(1.5)
_D_MIN = 2.0 * math.sqrt(3.0 / 8.0)


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian noise: ``variance = gain * (mean - offset) + read_sigma**2`` [counts^2].

    Attributes
    ----------
    gain : float
        Counts per detected electron, effective (a PMT's pulse-height spread included)
        [counts/e-]; 0 for pure Gaussian noise.
    offset : float
        Counts of zero electrons (dark level) [counts].
    read_sigma : float
        Standard deviation of the signal-independent noise [counts].
    """

    gain: float
    offset: float
    read_sigma: float

    @property
    def intercept(self) -> float:
        """``read_sigma**2 - gain * offset``: the variance line at mean 0 [counts^2]."""
        return self.read_sigma**2 - self.gain * self.offset

    def variance(self, mean: np.ndarray | float) -> np.ndarray:
        """Noise variance at an expected level [counts^2], never below 0."""
        mean = np.asarray(mean, dtype=np.float64)
        return np.maximum(self.gain * (mean - self.offset) + self.read_sigma**2, 0.0)

    @property
    def is_zero(self) -> bool:
        """No noise at all (a constant or noise-free image)."""
        return self.gain <= 0 and self.read_sigma <= 0


def _local_statistics(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interior pixels' sort key (5 x 5 ring mean), level [counts], squared residual / 36."""
    box5 = ndimage.uniform_filter(image, size=5, mode="reflect") * 25.0
    box3 = ndimage.uniform_filter(image, size=3, mode="reflect") * 9.0
    key = (box5 - box3) / 16.0
    level = ndimage.correlate(image, _LEVEL, mode="reflect")
    residual = ndimage.correlate(image, _RESIDUAL, mode="reflect")
    inner = (slice(2, -2), slice(2, -2))
    square = residual[inner].ravel() ** 2 / _RESIDUAL_GAIN
    return key[inner].ravel(), level[inner].ravel(), square


def _binned_variance(
    key: np.ndarray, level: np.ndarray, square: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rank bin of ``key``: mean level, trimmed-mean noise variance, pixel count.

    The bins sort by the mean of the 16 pixels around each 3 x 3 block, whose noise is
    independent of the block's: sorting by the block's own level would select its noise and
    flatten the fitted line (regression dilution).
    """
    # Equal-count bins by rank; keys rounded to 1e-9 of their range first, so that ties (counts
    # are integers) split by pixel index alone and a scaled or shifted image bins identically.
    spread = float(np.ptp(key))
    rounded = np.round((key - key.min()) / (spread * 1e-9)) if spread > 0 else np.zeros_like(key)
    order = np.argsort(rounded, kind="stable")
    levels, variances, counts = [], [], []
    for members in np.array_split(order, bins):
        if len(members) < 16:
            continue
        values = square[members]
        kept = values[values <= np.quantile(values, _TRIM)]
        levels.append(float(level[members].mean()))
        variances.append(float(kept.mean()) / _TRIM_BIAS)
        counts.append(len(members))
    return np.array(levels), np.array(variances), np.array(counts, dtype=float)


def _fit_line(levels: np.ndarray, variances: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Slope >= 0 and intercept of variance against level, weighted by sqrt(count) / variance.

    A slope that is not at least three standard errors above 0 (a flat image, whose levels span
    too little to tell) gives the Gaussian model: slope 0, intercept the mean variance.
    """
    flat = 0.0, float(np.average(variances, weights=counts)) if len(levels) else 0.0
    if len(levels) < 3 or np.ptp(levels) <= 0:
        return flat
    floor = max(float(variances.max()) * 1e-6, 1e-300)
    weights = np.sqrt(counts) / np.maximum(variances, floor)
    design = np.stack([levels, np.ones_like(levels)], axis=1) * weights[:, None]
    target = variances * weights
    (slope, intercept), *_ = np.linalg.lstsq(design, target, rcond=None)
    scatter = np.sum((target - design @ [slope, intercept]) ** 2) / (len(levels) - 2)
    try:
        slope_error = math.sqrt(scatter * np.linalg.inv(design.T @ design)[0, 0])
    except np.linalg.LinAlgError:
        return flat
    if not slope > 3.0 * slope_error:
        return flat
    return float(slope), float(intercept)


def estimate_noise(image: np.ndarray, *, offset: float | None = None, bins: int = 24) -> NoiseModel:
    """The Poisson-Gaussian noise model of one image, fitted from its local statistics.

    Every interior pixel gives a residual that cancels smooth signal (the 3 x 3 product of second
    differences, :data:`_RESIDUAL`, whose variance is 36 times the noise variance at the level
    ``sum(w**2 * z) / 36`` of its pixels). Pixels are grouped in ``bins`` equal-count bins of the
    mean of the ring of 16 pixels around each 3 x 3 block (noise independent of the block's);
    each bin's noise variance is the 1 %-trimmed mean squared residual (trimmed for the atomic
    columns that leak through, corrected for the trim), and a line ``variance = gain * level +
    intercept`` is fitted to the bins by weighted least squares; a slope within three standard
    errors of 0 gives the Gaussian model (gain 0).
    White noise is assumed: noise correlated by a detector blur or lag is underestimated, and
    columns narrower than about 1.5 px leak into the residual and raise the gain.

    The intercept is ``read_sigma**2 - gain * offset``. With ``offset`` given (the dark level of
    the detector, [counts]) the read noise follows from it; otherwise the smallest offset >= 0
    that makes the read variance non-negative is taken (``offset = 0`` when the intercept is
    positive). The transforms of this module depend only on gain and intercept.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Counts, at least 8 x 8 px [counts].
    offset : float, optional
        The known dark level [counts].
    bins : int
        Number of signal-level bins.

    Returns
    -------
    NoiseModel

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> level = np.repeat(np.linspace(0, 100, 256), 256).reshape(256, 256)  # [e-]
    >>> counts = 2.0 * rng.poisson(level) + rng.normal(0, 3.0, level.shape)
    >>> model = estimate_noise(counts)
    >>> round(model.gain, 1), round(model.read_sigma, 1)
    (2.0, 3.1)
    """
    values = check_image("image", image, min_size=8).astype(np.float64)
    levels, variances, counts = _binned_variance(*_local_statistics(values), bins)
    gain, intercept = _fit_line(levels, variances, counts)
    if offset is not None:
        read_var = max(intercept + gain * float(offset), 0.0)
        return NoiseModel(gain, float(offset), math.sqrt(read_var))
    if intercept >= 0 or gain <= 0:
        return NoiseModel(gain, 0.0, math.sqrt(max(intercept, 0.0)))
    return NoiseModel(gain, -intercept / gain, 0.0)


# --------------------------------------------------------------------------------------------
# Variance-stabilising transform
# --------------------------------------------------------------------------------------------


def anscombe(image: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """The generalised Anscombe transform: noise of unit variance at every level.

    ``f = 2 sqrt((z - offset) / gain + 3/8 + (read_sigma / gain)**2)`` (0 where the root is
    negative), or ``(z - offset) / read_sigma`` when ``gain`` is 0.

    Parameters
    ----------
    image : ndarray
        Counts [counts].
    noise : NoiseModel

    Returns
    -------
    ndarray of float64
        Stabilised values [noise standard deviations].

    Examples
    --------
    >>> anscombe(np.array([0.0, 10.0]), NoiseModel(1.0, 0.0, 0.0)).round(3)
    array([1.225, 6.442])
    """
    z = np.asarray(image, dtype=np.float64)
    if noise.gain <= 0:
        return (z - noise.offset) / max(noise.read_sigma, 1e-300)
    inside = (z - noise.offset) / noise.gain + 0.375 + (noise.read_sigma / noise.gain) ** 2
    return 2.0 * np.sqrt(np.maximum(inside, 0.0))


def inverse_anscombe(stabilised: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """The exact unbiased inverse of :func:`anscombe`, closed-form approximation [counts].

    ``D`` is an estimate of the expected transform (a denoised image); the result is the expected
    count whose transform has that expectation (see the module notes for the formula).

    Examples
    --------
    >>> noise = NoiseModel(1.0, 0.0, 0.0)
    >>> bool(abs(inverse_anscombe(np.array(2 * np.sqrt(3 / 8)), noise)) < 1e-12)  # dark level
    True
    """
    d = np.asarray(stabilised, dtype=np.float64)
    if noise.gain <= 0:
        return d * noise.read_sigma + noise.offset
    d = np.maximum(d, _D_MIN)
    electrons = (
        0.25 * d**2
        + 0.25 * _SQRT_3_2 / d
        - 1.375 / d**2
        + 0.625 * _SQRT_3_2 / d**3
        - 0.125
        - (noise.read_sigma / noise.gain) ** 2
    )
    return electrons * noise.gain + noise.offset


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def remove_outliers(
    image: np.ndarray, noise: NoiseModel | None = None, *, k: float = 6.0
) -> np.ndarray:
    """Zingers, hot, dead and saturated pixels replaced by the 5 x 5 median.

    - A spike (zinger, hot pixel) exceeds the largest of its 8 neighbours by ``k`` stabilised
      noise units (:func:`anscombe`) and by 85 % of its height above the 5 x 5 minimum: its
      neighbours stay near the background. A column of width sigma >= 0.55 px keeps its nearest
      neighbours above 15 % of its height, so no column is taken for a spike.
    - A dead or black pixel mirrors this below the smallest of its neighbours.
    - Saturated pixels (X-ray spikes and hot pixels clipped by the converter) hold the image's
      maximum, shared by two or more pixels and above the 99th percentile by more than the
      1st-99th percentile range.

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts].
    noise : NoiseModel, optional
        The image's noise; None fits it (:func:`estimate_noise`) only when some pixel has the
        shape of a spike or dead pixel (most images have none: the fit is the costly part).
    k : float
        Least excess [stabilised noise standard deviations].

    Returns
    -------
    ndarray (rows, cols), float64
        A copy with the outliers replaced [counts].
    """
    values = np.asarray(image, dtype=np.float64)
    if noise is not None and noise.is_zero:
        return values.copy()
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    above = values - ndimage.minimum_filter(values, size=5, mode="reflect")
    below = ndimage.maximum_filter(values, size=5, mode="reflect") - values
    most = ndimage.maximum_filter(values, footprint=ring, mode="reflect")
    least = ndimage.minimum_filter(values, footprint=ring, mode="reflect")
    spike = values - most > 0.85 * above
    dead = least - values > 0.85 * below
    if spike.any() or dead.any():
        noise = estimate_noise(values) if noise is None else noise
        if noise.is_zero:
            return values.copy()
        stabilised = anscombe(values, noise)
        spike &= stabilised - anscombe(most, noise) > k
        dead &= anscombe(least, noise) - stabilised > k
    low, high = np.percentile(values, [1.0, 99.0])
    top = float(values.max())
    saturated = values >= top
    if saturated.sum() < 2 or top - high <= high - low:
        saturated[:] = False
    flagged = spike | dead | saturated
    out = values.copy()
    if flagged.any():
        out[flagged] = ndimage.median_filter(values, size=5, mode="reflect")[flagged]
    return out


def _prepare(image: np.ndarray) -> tuple[np.ndarray, NoiseModel]:
    """The image as float64 without outliers, and its noise model (fitted again after)."""
    values = check_image("image", image, min_size=8).astype(np.float64)
    cleaned = remove_outliers(values, estimate_noise(values))
    return cleaned, estimate_noise(cleaned)


def _centre_weight(sigma: float) -> float:
    """Weight of the centre pixel of scipy's 2D Gaussian kernel of this width [px]."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return float((kernel[radius] / kernel.sum()) ** 2)


def sure_sigma(
    image: np.ndarray, noise: NoiseModel, sigmas: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """The Gaussian filter width that minimises Stein's unbiased risk estimate [px].

    For a linear filter ``H`` and noise of per-pixel variance ``v_i``,
    ``SURE = ||H z - z||^2 - sum(v) + 2 sum(H_ii v_i)`` estimates ``||H z - truth||^2`` without
    the truth (exact for Gaussian noise). ``v_i`` comes from the noise model at the smoothed
    level; ``H_ii`` is the centre weight of the kernel (reflecting borders ignored).

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts].
    noise : NoiseModel
    sigmas : ndarray, optional
        Candidate widths [px]; 24 log-spaced values from 0.3 to 8 px by default.

    Returns
    -------
    sigma : float
        The best width [px].
    risk : ndarray
        SURE of every candidate [counts^2].
    """
    sigmas = np.geomspace(0.3, 8.0, 24) if sigmas is None else np.asarray(sigmas, dtype=float)
    z = np.asarray(image, dtype=np.float64)
    variance = noise.variance(ndimage.gaussian_filter(z, 1.5, mode="reflect"))
    total = float(variance.sum())
    risk = np.array(
        [
            float(np.sum((ndimage.gaussian_filter(z, s, mode="reflect") - z) ** 2))
            - total
            + 2.0 * _centre_weight(s) * total
            for s in sigmas
        ]
    )
    return float(sigmas[int(np.argmin(risk))]), risk


def gaussian(image: np.ndarray) -> np.ndarray:
    """Gaussian filter of the width that minimises SURE (see :func:`sure_sigma`).

    The filter runs on the counts themselves (a normalised linear filter keeps every local mean
    unbiased); the noise model only sets the risk.

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts], any offset and scale.

    Returns
    -------
    ndarray (rows, cols), float32
        [counts].
    """
    values, noise = _prepare(image)
    if noise.is_zero:
        return values.astype(np.float32)
    sigma, _ = sure_sigma(values, noise)
    return ndimage.gaussian_filter(values, sigma, mode="reflect").astype(np.float32)


def wiener(image: np.ndarray, *, smoothing: float = 1.0, over: float = 3.0) -> np.ndarray:
    """Empirical Wiener filter on the image's cosine spectrum.

    The orthonormal DCT (the Fourier transform of the mirrored image, so no edge cross) keeps
    white noise white at the level ``N0 = mean noise variance`` (the noise model at the image
    mean, [counts^2] per coefficient). The signal power ``S`` is the periodogram smoothed by a
    Gaussian of ``smoothing`` coefficients, minus ``over * N0`` (at least 0); each coefficient is
    multiplied by ``S / (S + N0)``, and the mean (DC) is kept.

    A DCT coefficient of noise alone has a chi-square(1) power, so even smoothed over the about
    ``4 pi smoothing**2`` coefficients of the kernel its spread is about 0.4 ``N0``: subtracting
    ``N0`` alone passes noise wherever it fluctuates up. ``over = 3`` sets the bar five such
    spreads above the floor (the best of 1-4, with smoothing 1-3, on simulated HAADF, ABF and
    HRTEM images of 10-10000 e- per column; 1 left visible noise at low dose).

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts], any offset and scale.
    smoothing : float
        Width of the periodogram smoothing [coefficients].
    over : float
        Over-subtraction of the noise floor [1].

    Returns
    -------
    ndarray (rows, cols), float32
        [counts].
    """
    values, noise = _prepare(image)
    floor = float(noise.variance(values.mean()))
    if floor <= 0:
        return values.astype(np.float32)
    coefficients = fft.dctn(values, norm="ortho", workers=1)
    power = ndimage.gaussian_filter(coefficients**2, smoothing, mode="mirror")
    signal = np.maximum(power - over * floor, 0.0)
    gain = signal / (signal + floor)
    gain[0, 0] = 1.0
    return fft.idctn(coefficients * gain, norm="ortho", workers=1).astype(np.float32)


#: Power of an image coefficient over the pilot's signal plus the noise [1] above which
#: :func:`pilot_wiener` keeps the pilot's coefficient: noise alone exceeds 100 in about one
#: coefficient in 10^23.
PILOT_EXCESS = 100.0


def pilot_wiener(
    image: np.ndarray, pilot: np.ndarray, noise: NoiseModel | None = None
) -> np.ndarray:
    """Empirical Wiener filter of ``image`` whose signal power is a first estimate's spectrum.

    The second step of BM3D (Dabov et al. 2007, "Wiener filtering with a basic estimate" as
    the pilot), here on the whole image's orthonormal cosine spectrum: every coefficient ``Z``
    of the image is multiplied by ``P**2 / (P**2 + N0)``, with ``P`` the pilot's coefficient
    and ``N0`` the mean noise variance (the noise model at the image mean, [counts^2] per
    coefficient, as in :func:`wiener`); the mean (DC) is kept.

    A network's errors are structured (it rounds the contrast, misses faint detail), and where
    its output says signal dominates a coefficient, the image's own coefficient is the better
    value. One exception: a coefficient whose power exceeds :data:`PILOT_EXCESS` times the
    pilot's plus the noise holds what the pilot removed on purpose (a periodic interference,
    a scan artefact; on the real SrTiO3 images of ../shared/data/real, a 4-5 px pattern the
    network had lowered 2.5-4 decades), and there the pilot's coefficient is kept. No
    coefficient gains power. It selects, though: a pilot that shows a lattice the
    image lacks passes the image's noise at that lattice's frequencies and removes the rest,
    which looks like a lattice. Trust it no more than its pilot (``restore`` checks the
    network's output, the pilot, for invented peaks). It also keeps what the image has that the
    network had removed: scan distortions come back in part (on simulated HAADF with fly-back
    alone at 50,000 e- per column, 0.6 dB lower PSNR than the network's own output; tuning
    scenes, docs/restore.md).

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts], any offset and scale.
    pilot : ndarray (rows, cols)
        A first estimate of the undistorted image in the same units.
    noise : NoiseModel, optional
        ``image``'s noise when already known, and then ``image`` is taken as it is (outliers
        already replaced); None replaces the outliers and fits the noise here.

    Returns
    -------
    ndarray (rows, cols), float32
        [counts].

    Raises
    ------
    ValueError
        ``pilot`` of another shape than ``image``, or not finite.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:64, :64]
    >>> lattice = 50 + 40 * np.cos(np.pi * y / 8) ** 2 * np.cos(np.pi * x / 8) ** 2
    >>> noisy = rng.poisson(lattice).astype(float)
    >>> rough = gaussian(noisy)  # a first estimate
    >>> error = lambda a: float(np.sqrt(np.mean((a - lattice) ** 2)))
    >>> bool(error(pilot_wiener(noisy, rough)) < error(rough) < error(noisy))
    True
    """
    if noise is None:
        values, noise = _prepare(image)
    else:
        values = check_image("image", image, min_size=8).astype(np.float64)
    estimate = check_image("pilot", pilot, min_size=8).astype(np.float64)
    if estimate.shape != values.shape:
        raise ValueError(
            f"pilot=... must have the image's shape {values.shape}; got {estimate.shape}."
        )
    floor = float(noise.variance(values.mean()))
    if floor <= 0:
        return values.astype(np.float32)
    coefficients = fft.dctn(values, norm="ortho", workers=1)
    guide = fft.dctn(estimate, norm="ortho", workers=1)
    signal = guide**2
    gain = signal / (signal + floor)
    gain[0, 0] = 1.0
    filtered = coefficients * gain
    # far more power than the pilot's signal and the noise explain: what the pilot removed on
    # purpose (a periodic interference, a scan artefact), which the filter would pass again
    removed = coefficients**2 > PILOT_EXCESS * (signal + floor)
    removed[0, 0] = False
    filtered[removed] = guide[removed]
    return fft.idctn(filtered, norm="ortho", workers=1).astype(np.float32)


def feature_period(image: np.ndarray, *, shortest: float = 3.0) -> float:
    """The strongest spatial period of an image above ``shortest`` px [px].

    The peak of the radially averaged power spectrum of the mean-free image, at periods between
    ``shortest`` and a quarter of the image size (the column spacing of a lattice image); the
    longest candidate period when the spectrum is flat.
    """
    values = np.asarray(image, dtype=np.float64)
    rows, cols = values.shape
    power = np.abs(np.fft.rfft2(values - values.mean())) ** 2
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    k = np.hypot(ky, kx)
    radius = np.rint(k * min(rows, cols)).astype(int)
    radial = np.bincount(radius.ravel(), power.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    shells = np.arange(len(radial))
    usable = (shells >= 4) & (shells <= min(rows, cols) / shortest)
    if not usable.any():
        return float(min(rows, cols) / 4)
    best = shells[usable][int(np.argmax(radial[usable]))]
    return float(min(rows, cols) / best)


def nl_means(image: np.ndarray) -> np.ndarray:
    """Non-local means (scikit-image) on the variance-stabilised image.

    After :func:`anscombe` the noise has unit standard deviation, so ``sigma = 1``, and the filter
    strength is ``h = 0.6`` (scikit-image's advice with ``sigma`` given; the best of 0.6 - 1.2 on
    Poisson lattices of 2 - 200 counts per pixel). The patch side is about 0.8 of the image's
    :func:`feature_period` (odd, 3 to 9 px) and the search radius 1.25 periods (5 to 12 px), so
    every patch finds its lattice neighbours (a radius under one period lost half the gain). The
    exact unbiased inverse brings the result back to counts.

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts], any offset and scale.

    Returns
    -------
    ndarray (rows, cols), float32
        [counts].
    """
    from skimage.restoration import denoise_nl_means

    values, noise = _prepare(image)
    if noise.is_zero:
        return values.astype(np.float32)
    stabilised = anscombe(values, noise)
    period = feature_period(stabilised)
    patch = int(np.clip(2 * round(0.4 * period) + 1, 3, 9))
    distance = int(np.clip(math.ceil(1.25 * period), 5, 12))
    denoised = denoise_nl_means(
        stabilised,
        patch_size=patch,
        patch_distance=distance,
        h=0.6,
        sigma=1.0,
        fast_mode=True,
        preserve_range=True,
    )
    return inverse_anscombe(denoised, noise).astype(np.float32)


def bm3d(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BM3D (the ``bm3d`` package) on the variance-stabilised image.

    ``bm3d`` is licensed for non-commercial use only (Tampere University), so it is an optional
    dependency: ``pip install bm3d``.

    Parameters
    ----------
    image : ndarray (rows, cols)
        [counts], any offset and scale.
    sigma : float, optional
        The noise standard deviation BM3D assumes, in units of the stabilised noise (1 when the
        noise model is right, the default). A benchmark may pass the best value found against
        the ground truth, an upper bound of what BM3D can do.

    Returns
    -------
    ndarray (rows, cols), float32
        [counts].

    Raises
    ------
    ImportError
        When the ``bm3d`` package is not installed.
    """
    try:
        import bm3d as bm3d_package
    except ImportError as error:
        raise ImportError(
            "method 'bm3d' needs the bm3d package: pip install bm3d; licensed for "
            "non-commercial use (Tampere University)."
        ) from error
    values, noise = _prepare(image)
    if noise.is_zero:
        return values.astype(np.float32)
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma=... must be a positive number of noise units, got {sigma}.")
    stabilised = anscombe(values, noise)
    denoised = bm3d_package.bm3d(stabilised, 1.0 if sigma is None else float(sigma))
    return inverse_anscombe(np.asarray(denoised), noise).astype(np.float32)


#: The classical baselines by method name.
CLASSICAL: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gaussian": gaussian,
    "wiener": wiener,
    "nlm": nl_means,
    "bm3d": bm3d,
}
