"""What the locate verb does to an image before it looks for columns.

- :func:`estimate_spacing`: the nearest-neighbour column distance [px] from the image's
  autocorrelation, for images without a pixel size (and as a check of a given one).
- :func:`subtract_background`: a smooth background (thickness gradient, support film, probe
  tails) estimated below the columns and removed, so that columns on a thick particle and on
  thin support stand out by the same criterion.
- :func:`columns_are_dark`: whether columns are darker than their surroundings (ABF always,
  HRTEM depending on focus and thickness, decided from the image).

Images are (rows, cols) arrays in any units; lengths are in pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, ndimage, optimize

from atomlens.locate.threads import gaussian_reach, in_bands

__all__ = ["columns_are_dark", "estimate_cell", "estimate_spacing", "subtract_background"]

#: The smallest column spacing :func:`estimate_spacing` reports [px]: closer columns cannot be
#: resolved as separate maxima.
MIN_SPACING_PX = 2.5


def _broad_gaussian(image: np.ndarray, sigma: float, step: int | None = None) -> np.ndarray:
    """A Gaussian smoothing of ``sigma`` px computed on block means ``step`` px wide (default
    ``sigma / 8``; at most ``sigma / 4``), interpolated back (the same to a fraction of the
    noise, and far faster for wide ``sigma``)."""
    step = max(1, min(int(sigma // 8) if step is None else step, int(sigma // 4)))
    if step == 1:
        return ndimage.gaussian_filter(image, sigma, mode="reflect")
    coarse = ndimage.gaussian_filter(_block_means(image, step), sigma / step, mode="reflect")
    return _interpolated(coarse, image.shape, step)


def _block_means(image: np.ndarray, step: int) -> np.ndarray:
    """Means of ``step`` x ``step`` px blocks (the image mirrored at its far edges to whole
    blocks)."""
    rows, cols = image.shape
    padded = np.pad(image, ((0, -rows % step), (0, -cols % step)), mode="reflect")
    blocks = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step)
    return blocks.mean(axis=(1, 3))


def _interpolated(coarse: np.ndarray, shape: tuple[int, int], step: int) -> np.ndarray:
    """Block values (each at its ``step`` px block's centre, :func:`_block_means`)
    interpolated linearly back to every pixel of ``shape``."""
    # bilinear interpolation is separable: one (rows, coarse rows) and one (coarse cols, cols)
    # matrix of linear weights, two small matrix products (a tenth of map_coordinates' time)
    return (
        _linear_weights(shape[0], step, coarse.shape[0])
        @ coarse
        @ _linear_weights(shape[1], step, coarse.shape[1]).T
    )


def _linear_weights(size: int, step: int, coarse: int) -> np.ndarray:
    """(size, coarse) weights of linear interpolation from block means ``step`` px wide (each
    at its block's centre) back to every pixel; beyond the outer centres the edge value."""
    where = np.clip((np.arange(size) - (step - 1) / 2.0) / step, 0.0, coarse - 1.0)
    low = np.minimum(np.floor(where).astype(int), coarse - 1)
    high = np.minimum(low + 1, coarse - 1)
    weights = np.zeros((size, coarse))
    weights[np.arange(size), low] += 1.0 - (where - low)
    weights[np.arange(size), high] += where - low
    return weights


def _autocorrelation(image: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (centre 1 at ``shape // 2``) of the windowed, mean-free image,
    with the white-noise floor of its power spectrum removed.

    Shot noise adds a constant to the power spectrum (a spike at the autocorrelation's centre
    that dwarfs the lattice at a fraction of an electron per pixel); its level is the median
    power beyond 0.4 cycles/px, where the blurred columns leave almost nothing, and it is
    subtracted before the inverse transform. The result is divided by the zero-lag value
    before that subtraction (the image's whole variance), so that white noise's fluctuations
    keep the size :func:`_noise_floor` expects.
    """
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    values = (image - image.mean()) * window
    # scipy's FFT on all cores (numpy's uses one), zero-padded to twice the size: no wrap.
    # (Padding by half the image, enough for the lags used, took 0.07-0.09 s instead of
    # 0.16-0.2 s on a 1024 px image, but its noise floor, taken on other frequencies, moved
    # the spacing of low-dose scenes: the U-Net's on a 256 px SrTiO3 scene at 20 e-/column
    # went from 25.3 to 35.8 px, F1 0.992 -> 0.927, benchmarks/evaluate_locate.py)
    padded = (2 * rows, 2 * cols)
    power = np.abs(fft.rfft2(values, s=padded, workers=-1)) ** 2
    fy = np.abs(np.fft.fftfreq(padded[0]))[:, None]
    fx = np.fft.rfftfreq(padded[1])[None, :]
    floor = float(np.median(power[(fy > 0.4) & (fx > 0.4)]))
    total = float(power.sum())  # the centre before the floor is removed: image variance
    power = np.clip(power - floor, 0.0, None)
    lags = fft.irfft2(power, s=padded, workers=-1)  # lag 0 at [0, 0]
    rolled = np.roll(lags, (rows // 2, cols // 2), axis=(0, 1))
    # lags from -(rows // 2) at row 0: the centre at shape // 2, for odd sides too (taken
    # from a centred twice-size array before, it sat a pixel off there, and a 97 px image of
    # columns 8 px apart gave 7.06 px)
    correlation = rolled[:rows, :cols]
    centre = total / (padded[0] * padded[1])  # irfft2's normalisation of a zero-lag sum
    return correlation / centre if centre > 0 else correlation


def estimate_spacing(image: np.ndarray, *, min_spacing: float = MIN_SPACING_PX) -> float:
    """The nearest-neighbour column distance [px], from the image's autocorrelation.

    The autocorrelation of a crystal image has a maximum at every vector between two columns;
    white noise adds only to the centre. The image is high-pass filtered (a Gaussian background
    of an eighth of its size removed) and its autocorrelation computed. Each local maximum at
    least ``min_spacing`` from the centre, beyond the first minimum of the azimuthal mean (the
    central peak's edge), and within a quarter of the image gets a prominence:
    its height above the lowest autocorrelation on the way to it from the centre (wide columns
    lower the whole autocorrelation between its peaks, so heights alone would hide the shorter
    vectors of a honeycomb). The nearest maximum whose prominence is at least a sixth of the
    largest and above what white noise reaches (:func:`_noise_floor`) is taken, refined to
    sub-pixel precision by a parabola through its neighbours. No maximum more prominent than
    white noise makes gives NaN.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Any units, columns bright or dark (the autocorrelation does not care).
    min_spacing : float
        The shortest distance that counts [px].

    Returns
    -------
    float
        [px]; NaN when the image shows no periodic structure (amorphous film, vacuum).

    Examples
    --------
    >>> y, x = np.mgrid[:96, :96]
    >>> lattice = np.cos(np.pi * y / 8) ** 8 * np.cos(np.pi * x / 8) ** 8
    >>> round(estimate_spacing(lattice), 1)  # columns every 8 px
    8.0
    """
    return estimate_cell(image, min_spacing=min_spacing)[0]


def estimate_cell(
    image: np.ndarray, *, min_spacing: float = MIN_SPACING_PX
) -> tuple[float, np.ndarray]:
    """:func:`estimate_spacing`'s spacing [px] and two cell vectors (2, 2) (dy, dx) [px] from
    the same autocorrelation (:func:`atomlens.locate.motif.cell_vectors`, refined on the power
    spectrum's reflections: :func:`_bragg_refined`; an empty array when it shows no two
    independent strong peaks)."""
    from skimage.feature import peak_local_max

    from atomlens.locate.motif import cell_vectors

    none = np.zeros((0, 2))
    values = np.asarray(image, dtype=np.float64)
    rows, cols = values.shape
    values = values - _broad_gaussian(values, max(rows, cols) / 8.0)
    correlation = _autocorrelation(values)
    centre = np.array([rows // 2, cols // 2])
    peaks = peak_local_max(correlation, min_distance=1, exclude_border=1)
    if not len(peaks):
        return math.nan, none
    distance = np.hypot(*(peaks - centre).T)
    reach = min(rows, cols) / 4.0
    keep = (distance >= max(min_spacing, _central_peak_radius(correlation, centre))) & (
        distance <= reach
    )
    peaks, distance = peaks[keep], distance[keep]
    if not len(peaks):
        return math.nan, none
    prominence = _prominence(correlation, centre, peaks)
    floor = _noise_floor(window_shape=(rows, cols))
    if prominence.max() <= floor:
        return math.nan, none
    strong = (prominence >= prominence.max() / 6.0) & (prominence > floor)
    nearest = peaks[strong][np.argmin(distance[strong])]
    spacing = float(np.hypot(*(nearest + _parabola_offset(correlation, nearest) - centre)))
    vectors = cell_vectors(correlation, peaks, prominence)
    return spacing, _bragg_refined(values, vectors) if len(vectors) == 2 else vectors


#: Largest side [px] of the central crop whose power spectrum refines the cell vectors.
BRAGG_CROP = 512
#: Reflections (h, k) with |h|, |k| up to this order are summed.
BRAGG_ORDER = 3
#: A refinement that changes a vector by more than this fraction of its length is refused
#: (a start too far off for the reflections to guide it).
BRAGG_REACH = 0.1


def _bragg_refined(image: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cell vectors (2, 2) (dy, dx) [px] refined on the image's power spectrum.

    The reciprocal lattice of ``vectors`` is placed on the power spectrum (Hann-windowed,
    zero-padded to twice the size, cubic-spline interpolated) and the four components are
    moved (Nelder-Mead) to maximise the summed power at the reflections up to order
    :data:`BRAGG_ORDER`. Every reflection of every cell in view pulls at once, so a few tens
    of cells give the vectors to a few tenths of a percent where the autocorrelation's peaks
    (integer lags, the farthest multiple at which a low-dose image still shows one) left
    errors of several percent: 30.0 and 31.4 px for a GaN lattice of 31.9 px at 50 e-/column
    in 256 px (now 31.75), which blurred the average over its cells into no columns. Returns
    ``vectors`` unchanged when the refinement moves one by more than :data:`BRAGG_REACH`.
    """
    rows, cols = image.shape
    top, left = max(0, (rows - BRAGG_CROP) // 2), max(0, (cols - BRAGG_CROP) // 2)
    crop = image[top : top + BRAGG_CROP, left : left + BRAGG_CROP]
    rows, cols = crop.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    power = np.abs(fft.fft2((crop - crop.mean()) * window, s=(2 * rows, 2 * cols), workers=-1))
    power = ndimage.spline_filter(np.fft.fftshift(power**2), order=3)
    size = np.array(power.shape, dtype=float)
    centre = size // 2
    orders = range(-BRAGG_ORDER, BRAGG_ORDER + 1)
    reflections = np.array([(h, k) for h in orders for k in orders if k > 0 or (k == 0 and h > 0)],
                           dtype=float)  # fmt: skip

    def cost(flat: np.ndarray) -> float:
        try:
            reciprocal = np.linalg.inv(flat.reshape(2, 2)).T  # rows: cycles/px (dy, dx)
        except np.linalg.LinAlgError:
            return 0.0
        where = centre[:, None] + (reflections @ reciprocal * size).T
        return -float(ndimage.map_coordinates(power, where, order=3, prefilter=False).sum())

    result = optimize.minimize(cost, vectors.ravel(), method="Nelder-Mead",
                               options={"xatol": 0.01, "fatol": 1e-12, "maxiter": 800})  # fmt: skip
    refined = result.x.reshape(2, 2)
    moved = np.hypot(*(refined - vectors).T) / np.hypot(*vectors.T)
    return refined if np.all(moved <= BRAGG_REACH) and np.isfinite(refined).all() else vectors


def _central_peak_radius(surface: np.ndarray, centre: np.ndarray) -> float:
    """Where the azimuthal mean of the autocorrelation stops falling from its centre [px].

    Every column-to-column vector lies beyond this first minimum; maxima inside it are noise
    riding on the central peak (shot noise at a fraction of an electron per pixel makes many).
    """
    rows, cols = surface.shape
    reach = min(rows, cols) // 4
    # only the square around the centre that holds the disc of radius ``reach`` (its pixels
    # in the same order, so the same sums)
    top, left = max(0, centre[0] - reach), max(0, centre[1] - reach)
    surface = surface[top : centre[0] + reach + 1, left : centre[1] + reach + 1]
    y, x = np.indices(surface.shape)
    radius = np.hypot(y + top - centre[0], x + left - centre[1]).astype(int)
    inner = radius <= reach
    profile = np.bincount(radius[inner], surface[inner]) / np.bincount(radius[inner])
    rising = np.flatnonzero(np.diff(profile) > 0)
    return float(rising[0]) if len(rising) else 0.0


def _noise_floor(window_shape: tuple[int, int]) -> float:
    """The prominence white noise alone reaches in the normalised autocorrelation [1].

    Off the centre, the autocorrelation of white noise fluctuates with standard deviation
    ``1 / sqrt(N_eff)``, ``N_eff = (sum w**2)**2 / sum w**4`` the Hann window's effective number
    of pixels; the largest of its local maxima over its neighbourhood stays below 8 of these.
    """
    rows, cols = np.hanning(window_shape[0]), np.hanning(window_shape[1])
    # the window is the outer product of two Hann windows: its sums of powers are products
    effective = (np.sum(rows**2) * np.sum(cols**2)) ** 2 / (np.sum(rows**4) * np.sum(cols**4))
    return max(0.05, 8.0 / math.sqrt(effective))


def _prominence(surface: np.ndarray, centre: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Each peak's height above the lowest value on the straight way to it from ``centre``."""
    fractions = np.linspace(0.2, 0.9, 15)
    way = centre[None, None, :] + fractions[None, :, None] * (peaks - centre)[:, None, :]
    lowest = ndimage.map_coordinates(surface, way.reshape(-1, 2).T, order=1).reshape(
        len(peaks), len(fractions)
    )
    return surface[peaks[:, 0], peaks[:, 1]] - lowest.min(axis=1)


def _parabola_offset(surface: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Sub-pixel (dy, dx) of a maximum from parabolas through it and its 4 neighbours."""
    y, x = peak
    offsets = []
    for before, at, after in (
        (surface[y - 1, x], surface[y, x], surface[y + 1, x]),
        (surface[y, x - 1], surface[y, x], surface[y, x + 1]),
    ):
        curvature = before - 2 * at + after
        offsets.append(0.5 * (before - after) / curvature if curvature < 0 else 0.0)
    return np.clip(np.array(offsets), -0.5, 0.5)


def subtract_background(image: np.ndarray, spacing: float) -> np.ndarray:
    """The image minus a smooth background that runs below the columns [image units].

    The background is the grey opening (a minimum then a maximum filter) of the lightly smoothed
    image over a square of 1.5 column spacings, which removes every column and keeps what
    varies more slowly, smoothed again by a Gaussian of half a spacing, that one on block means
    an eighth of a spacing wide, interpolated back (:func:`_broad_gaussian`: up to 0.13 s less
    on a 1024 px image, the same to about 1e-3 of the pixel noise). A copy is returned.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Columns bright.
    spacing : float
        Nearest-neighbour column distance [px].
    """
    values = np.asarray(image, dtype=np.float64)
    size = max(3, math.ceil(1.5 * spacing) | 1)
    sigma = max(spacing / 8.0, 0.5)

    def floor_of(part: np.ndarray) -> np.ndarray:
        smooth = ndimage.gaussian_filter(part, sigma, mode="reflect")
        return ndimage.grey_opening(smooth, size=(size, size), mode="reflect")

    # on bands in threads (about 0.15 -> 0.12 s with the rest on 1024 x 1024 px, 2 cores; the
    # same to the bit):
    # a pixel of the opening sees the smoothing's inputs up to both filters' reach away
    floor = in_bands(floor_of, values, gaussian_reach(sigma) + 2 * (size // 2))
    return values - _broad_gaussian(floor, spacing / 2.0, step=int(spacing // 8))


def columns_are_dark(image: np.ndarray, spacing: float) -> bool:
    """Whether the columns are darker than their surroundings, from the image itself.

    Columns are small compared with the space between them, so the band-passed image (details
    of the column size kept, noise and background removed) is skewed towards the columns'
    side: negative skewness means dark columns.

    Parameters
    ----------
    image : ndarray (rows, cols)
    spacing : float
        Nearest-neighbour column distance [px].
    """
    values = np.asarray(image, dtype=np.float64)
    fine = ndimage.gaussian_filter(values, max(spacing / 8.0, 0.7), mode="reflect")
    band = fine - ndimage.gaussian_filter(values, 1.5 * spacing, mode="reflect")
    band = band - band.mean()
    spread = band.std()
    return bool(spread > 0 and np.mean(band**3) / spread**3 < 0)
