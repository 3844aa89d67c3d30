"""Random draws for the distortion steps: Poisson counts, normal and Gamma variates, pixel sets.

Poisson counts (exact for small means, Cornish-Fisher above), standard normal (Box-Muller, float32)
and Gamma (exact, Wilson-Hilferty above) draws, each faster than numpy's own sampler, and random
pixel sets. Every draw comes from the ``numpy.random.Generator`` passed in. Re-exported (except
``standard_gamma``) by :mod:`atomlens.physics.detectors.base`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["poisson_counts", "random_pixels", "standard_gamma", "standard_normal"]


def poisson_counts(
    mean: np.ndarray | float,
    rng: np.random.Generator,
    *,
    exact_below: float = 20.0,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Poisson counts, exact for small means and a Cornish-Fisher normal for large ones.

    Means below ``exact_below`` are drawn exactly, by chop-down inversion of the cumulative
    distribution, vectorised in float32 (exact up to 1e-7 in the cumulative probabilities and
    2 - 3 times faster than numpy's sampler). Above it the count is
    ``round(m + sqrt(m - 5/36) z + (z^2 - 1) / 6)`` with ``z`` standard normal: the second-order
    Cornish-Fisher expansion of the Poisson distribution, which matches its mean, variance and
    skewness; at ``m = 20`` its total-variation distance from Poisson is about 0.001. It is four
    times faster than numpy's exact sampler.

    Parameters
    ----------
    mean : ndarray or float
        Expected counts, >= 0.
    rng : numpy.random.Generator
    exact_below : float
        Means below this are drawn exactly; ``math.inf`` for exact draws everywhere.
    shape : tuple of int, optional
        Output shape for a scalar ``mean``.

    Returns
    -------
    ndarray, float64
        Non-negative integer counts.
    """
    if np.ndim(mean) == 0:
        return _poisson_scalar(float(mean), rng, exact_below, shape or ())
    return poisson_in_place(np.array(mean, dtype=np.float64), rng, exact_below)


def poisson_in_place(mean: np.ndarray, rng: np.random.Generator, exact_below: float) -> np.ndarray:
    """Poisson counts of ``mean``, written over ``mean`` (the array :func:`poisson_counts` uses).

    Parameters
    ----------
    mean : ndarray, float64
        Expected counts [electrons or counts per pixel], >= 0; overwritten with the draws.
    rng : numpy.random.Generator
    exact_below : float
        Means below this are drawn exactly, the others by the Cornish-Fisher approximation.

    Returns
    -------
    ndarray
        ``mean`` itself, now holding non-negative integer counts.
    """
    large = mean >= exact_below
    if not large.any():
        np.copyto(mean, _inverted_poisson(mean, rng))
    elif large.all():
        _cornish_fisher_poisson(mean, rng)
    else:
        small = ~large
        mean[small] = _inverted_poisson(mean[small], rng)
        mean[large] = _cornish_fisher_poisson(mean[large], rng)
    return mean


def _inverted_poisson(
    mean: np.ndarray | float, rng: np.random.Generator, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Exact Poisson draws for small means: u minus P(0), P(1), ... until it drops below 0."""
    lam = np.asarray(mean, dtype=np.float32)
    residual = rng.random(lam.shape if shape is None else shape, dtype=np.float32)
    term = np.exp(-lam)
    residual -= term
    counts = np.zeros(residual.shape, dtype=np.float32)
    top = float(lam.max()) if lam.size else 0.0
    for k in range(1, int(top + 12.0 * math.sqrt(top) + 30.0)):  # float32 rounding stop
        active = residual > 0
        if k % 4 == 1 and not active.any():
            break
        counts += active
        term *= lam  # in place for arrays; rebinds for a scalar mean
        term *= 1.0 / k
        residual -= term
    return counts


def standard_normal(shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard normal float32 draws by the Box-Muller transform.

    Exact in distribution up to float32 resolution (the tails stop at 5.8 sigma, a probability
    of 7e-9 per draw), and about 2.5 times faster than numpy's float32 ziggurat because the
    logarithm, sine and cosine are vectorised.

    Returns
    -------
    ndarray of ``shape``, float32
    """
    size = int(np.prod(shape))
    half = (size + 1) // 2
    uniform = rng.random(2 * half, dtype=np.float32)
    radius, angle = uniform[:half], uniform[half:]
    np.subtract(1.0, radius, out=radius)  # in (0, 1]
    np.log(radius, out=radius)
    radius *= -2.0
    np.sqrt(radius, out=radius)
    angle *= 2.0 * np.pi
    out = np.empty(2 * half, dtype=np.float32)
    np.cos(angle, out=out[:half])
    np.sin(angle, out=out[half:])
    out[:half] *= radius
    out[half:] *= radius
    return out[:size].reshape(shape)


def _cornish_fisher_poisson(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts ``round(m + sqrt(m - 5/36) z + (z^2 - 1) / 6)``, written over ``mean``."""
    z = standard_normal(mean.shape, rng)
    spread = np.subtract(mean, 5.0 / 36.0)
    np.maximum(spread, 0.0, out=spread)
    np.sqrt(spread, out=spread)
    spread *= z
    mean += spread
    z *= z
    z -= 1.0
    z *= 1.0 / 6.0
    mean += z
    mean += 0.5
    np.floor(mean, out=mean)
    return np.maximum(mean, 0.0, out=mean)


def _poisson_scalar(
    mean: float, rng: np.random.Generator, exact_below: float, shape: tuple[int, ...]
) -> np.ndarray:
    if mean <= 0:
        return np.zeros(shape)
    if mean >= exact_below:
        return _cornish_fisher_poisson(np.full(shape, mean, dtype=np.float64), rng)
    return _inverted_poisson(mean, rng, shape).astype(np.float64)


def random_pixels(shape: tuple[int, int], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Distinct random pixels, each pixel chosen with probability ``fraction``.

    Returns
    -------
    ndarray of shape (N, 2), int
        (row, col) coordinates in raster order.
    """
    size = shape[0] * shape[1]
    count = int(rng.binomial(size, fraction)) if fraction > 0 else 0
    flat = np.sort(rng.choice(size, size=count, replace=False)) if count else np.zeros(0, int)
    return np.stack(np.unravel_index(flat, shape), axis=1).astype(np.intp)


def standard_gamma(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma(shape, 1) draws: exact below shape 10, Wilson-Hilferty above; 0 where shape is 0.

    The Wilson-Hilferty cube of a normal, ``a (1 - 1/(9a) + z / sqrt(9a))^3``, is within a
    Kolmogorov-Smirnov distance of 0.001 of the Gamma distribution for shapes >= 10 and four
    times faster than numpy's exact sampler. ``shape`` (float64, >= 0) is overwritten with the
    draws.
    """
    large = shape >= 10.0
    if large.all():
        return _wilson_hilferty(shape, rng)
    exact = shape > 0
    exact &= ~large
    shape[exact] = rng.standard_gamma(shape[exact])
    if large.any():
        shape[large] = _wilson_hilferty(shape[large], rng)
    return shape


def _wilson_hilferty(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """alpha (1 - 1/(9 alpha) + z / sqrt(9 alpha))^3, z standard normal; overwrites alpha."""
    root = np.multiply(alpha, 9.0)
    np.sqrt(root, out=root)
    np.reciprocal(root, out=root)
    cube = np.multiply(standard_normal(alpha.shape, rng), root, dtype=np.float64)
    root *= root
    cube -= root
    cube += 1.0
    alpha *= cube
    alpha *= cube
    alpha *= cube
    return alpha
