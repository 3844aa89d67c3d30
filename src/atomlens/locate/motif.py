"""The crystal's averaged unit cell, and the column spacing it shows.

The autocorrelation's nearest strong peak is the lattice constant of a honeycomb (graphene,
hBN, MoS2 and WSe2 seen down [001]) whenever the probe blurs the shorter column-to-column
vectors into the autocorrelation's central peak: at low dose, light columns 1.4 Å apart
leave no peak of their own there. Every unit cell holds the same columns, though, so the
image averaged over all cells (the motif) shows them with the noise divided by the square
root of the number of cells (about 50 on a 128 x 128 image): two maxima per cell where a
trial detection on the noisy image finds noise, or nothing, in between.

:func:`cell_vectors` takes the lattice from the autocorrelation's peaks, refined on the
farthest multiples the autocorrelation still shows; :func:`motif` averages the image over
its cells (:func:`stacked_motif`: over several frames of a drifting specimen);
:func:`motif_columns` keeps the motif's significant maxima as the cell's columns (a
:class:`Cell`), and :func:`column_spacing` gives the shortest distance between them (periodic
images included); :func:`motif_spacing` does all of it for one image.

Lengths are in pixels; vectors are (dy, dx).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage, optimize

from atomlens.locate.preprocess import _parabola_offset
from atomlens.locate.threads import sampled_in_chunks

__all__ = [
    "Cell",
    "cell_vectors",
    "column_spacing",
    "fitted_columns",
    "fitted_motif_columns",
    "motif",
    "motif_columns",
    "motif_maxima",
    "motif_spacing",
    "stacked_motif",
]


class Cell(NamedTuple):
    """A crystal's unit cell as the image shows it."""

    #: (2, 2) two cell vectors (dy, dx) [px].
    vectors: np.ndarray
    #: (m, 2) the columns of the cell, (dy, dx) [px] from the strongest (the first, at 0).
    columns: np.ndarray
    #: The Gaussian width of its narrowest column [px] (:func:`fitted_columns`); NaN when
    #: not fitted.
    width: float = math.nan


#: A lattice translation's autocorrelation peak is at least this fraction of the highest one.
TRANSLATION_HEIGHT = 0.75
#: Sampling of the motif along each cell vector [px].
STEP_PX = 0.5
#: Most cells averaged: the central ones (enough to average the noise down by 20; a wider
#: region only blurs the motif with the scan distortions across it).
MOST_CELLS = 400
#: A motif maximum counts as a column when it is this fraction of the strongest one's
#: prominence (B beside N in hBN: 0.06, the probe's blur keeps the saddle between them high)...
RELATIVE_PROMINENCE = 0.02
#: ... and this many standard errors of the motif above the lowest point on its way to the
#: strongest maximum...
SIGNIFICANCE = 6.0
#: ... and this fraction of the strongest's height above the motif's minimum. Real noise is
#: not white, so significance alone lets through columns real but too faint to find cell by
#: cell: O beside Sr in the real ADF image of SrTiO3 stands at 0.09 of Sr (92 standard errors),
#: and as the spacing it scattered false columns over the dark between the rows. S2 beside Mo
#: stands at 0.42 in the real MoS2 image, B beside N at 0.65 in a simulated hBN series.
RELATIVE_HEIGHT = 0.15
#: Half-side of the neighbourhood a motif maximum is refined on [shortest cell vectors].
REFINE_REACH = 0.05


def cell_vectors(correlation: np.ndarray, peaks: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Two cell vectors (2, 2) [px] from an autocorrelation's peaks, or an empty array.

    Of the strong peaks (``strength`` at least a third of the largest) that are also high
    (at least :data:`TRANSLATION_HEIGHT` of the highest: every column pairs with another at a
    lattice translation, only some at a vector between two sublattices, which a resolved
    honeycomb shows at half the height), the shortest is the first vector; the shortest at 30°
    to 150° from it is the second. Each is refined on the farthest integer multiple of it at
    which the autocorrelation still has a peak at least half as high (up to 4 px from its
    edge), which divides its error by that multiple.

    Parameters
    ----------
    correlation : ndarray (rows, cols)
        Autocorrelation with zero lag at ``shape // 2``.
    peaks : ndarray (n, 2)
        Its maxima (row, col), off the centre [px].
    strength : ndarray (n,)
        Their prominences.
    """
    centre = np.array(correlation.shape) // 2
    strong = strength >= strength.max() / 3.0 if len(strength) else np.zeros(0, bool)
    vectors = (peaks[strong] - centre).astype(float)
    if len(vectors) < 2:
        return np.zeros((0, 2))
    heights = correlation[tuple(peaks[strong].T)]
    vectors = vectors[heights >= TRANSLATION_HEIGHT * heights.max()]
    # shortest first; ties (v and -v are equally high up to rounding, and a hexagonal lattice
    # has six of one length) go to a fixed choice, else rounding picks the basis and the cell
    # is averaged in another shape (two ways of one MoS2 image gave spacings 3 % apart)
    downward = (vectors[:, 0] > 0) | ((vectors[:, 0] == 0) & (vectors[:, 1] > 0))
    angle = np.arctan2(vectors[:, 0], vectors[:, 1])
    vectors = vectors[np.lexsort((angle, ~downward, np.hypot(*vectors.T)))]
    if len(vectors) < 2:
        return np.zeros((0, 2))
    first = vectors[0]
    second = next((v for v in vectors[1:] if _sine(first, v) >= 0.5), None)
    if second is None:
        return np.zeros((0, 2))
    raw = np.array([first, second])
    refined = np.array([_refined(correlation, centre, v) for v in raw])
    # a refinement that wandered to another peak (more than 1.5 px) keeps the raw vector
    moved = np.hypot(*(refined - raw).T) > 1.5
    refined[moved] = raw[moved]
    return refined


def _sine(a: np.ndarray, b: np.ndarray) -> float:
    return abs(a[0] * b[1] - a[1] * b[0]) / (np.hypot(*a) * np.hypot(*b))


def _refined(correlation: np.ndarray, centre: np.ndarray, vector: np.ndarray) -> np.ndarray:
    reach = min(correlation.shape) / 2.0 - 4.0
    best, height = _peak_at(correlation, centre + vector)
    best = best - centre
    if np.hypot(*best) < 1.0:  # the box reached the central peak
        return vector
    for multiple in range(2, int(reach / np.hypot(*best)) + 1):
        position, value = _peak_at(correlation, centre + multiple * best)
        if value < 0.5 * height:
            break
        best = (position - centre) / multiple
    return best


def _peak_at(correlation: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, float]:
    """The sub-pixel maximum of ``correlation`` in the 5 x 5 box around ``where``, and its
    value (``-inf`` off the array)."""
    y, x = np.round(where).astype(int)
    rows, cols = correlation.shape
    if not (3 <= y < rows - 3 and 3 <= x < cols - 3):
        return where, -math.inf
    box = correlation[y - 2 : y + 3, x - 2 : x + 3]
    dy, dx = np.unravel_index(int(np.argmax(box)), box.shape)
    top = np.array([y + dy - 2, x + dx - 2])
    return top + _parabola_offset(correlation, top), float(correlation[tuple(top)])


def motif(image: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, int]:
    """The image averaged over its unit cells, sampled every :data:`STEP_PX` along each cell
    vector, and the number of cells averaged.

    ``motif[i, j]`` is the mean of the image at ``origin + (i / n0 + k) a0 + (j / n1 + l) a1``
    over the cells (k, l) that lie wholly inside the image (at most :data:`MOST_CELLS`,
    the nearest to its centre), bilinearly interpolated. The result is periodic in both
    indices.
    """
    rows, cols = image.shape
    lengths = np.hypot(*vectors.T)
    area = abs(float(np.linalg.det(vectors)))
    if area < 0.25 * lengths.prod() or lengths.min() < 1.0:  # collinear, or shorter than a pixel
        return np.zeros((4, 4)), 0
    samples = np.maximum(4, np.ceil(lengths / STEP_PX).astype(int))
    inverse = np.linalg.inv(vectors.T)  # pixel offset -> cell coordinates
    centre = np.array([rows, cols]) / 2.0
    corners = np.array([[0, 0], [0, cols - 1], [rows - 1, 0], [rows - 1, cols - 1]]) - centre
    extent = np.abs(corners @ inverse.T).max(axis=0)
    steps = np.meshgrid(
        *(np.arange(-math.ceil(e), math.ceil(e) + 1) for e in extent), indexing="ij"
    )
    starts = centre + np.stack([k.ravel() for k in steps], -1) @ vectors
    # a cell is inside when all four of its corners are (with a pixel to spare)
    cell_corners = starts[:, None, :] + np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ vectors
    inside = np.all((cell_corners >= 1) & (cell_corners <= [rows - 2, cols - 2]), axis=(1, 2))
    starts = starts[inside]
    if not len(starts):
        return np.zeros(samples), 0
    starts = starts[np.argsort(np.hypot(*(starts - centre).T))[:MOST_CELLS]]
    u, v = np.meshgrid(*(np.arange(n) / n for n in samples), indexing="ij")
    offsets = np.stack([u.ravel(), v.ravel()], -1) @ vectors
    where = (starts[:, None, :] + offsets[None, :, :]).reshape(-1, 2).T
    values = sampled_in_chunks(image, where, order=1)
    return values.reshape(len(starts), *samples).mean(axis=0), len(starts)


def stacked_motif(frames: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`motif` of several frames of one crystal, each shifted (by whole samples, periodic
    cross-correlation) onto the first's before they are averaged, and the cells averaged in
    all. A drifting specimen blurs the mean frame; the motifs drift only as a whole."""
    first, cells = motif(frames[0], vectors)
    total = first.copy()
    reference = np.conj(np.fft.fft2(first - first.mean()))
    for frame in frames[1:]:
        average, count = motif(frame, vectors)
        if not count:
            continue
        match = np.fft.ifft2(np.fft.fft2(average - average.mean()) * reference).real
        shift = np.unravel_index(int(np.argmax(match)), match.shape)
        total += np.roll(average, [-int(k) for k in shift], axis=(0, 1))
        cells += count
    return total / len(frames), cells


def motif_columns(average: np.ndarray, cells: int, vectors: np.ndarray, noise: float) -> np.ndarray:
    """The columns of an averaged unit cell: (m, 2) (dy, dx) [px] from its strongest column,
    the shortest way round (the strongest first, at (0, 0)).

    The maxima of the motif (:func:`motif_maxima`) whose prominence is at least
    :data:`RELATIVE_PROMINENCE` of the strongest's and :data:`SIGNIFICANCE` standard errors
    (``noise`` [image units per pixel] over the square root of ``cells``), and whose height is
    at least :data:`RELATIVE_HEIGHT` of the strongest's; of two closer than a quarter of the
    shortest cell vector (a flat top), the stronger. Empty when ``cells`` is 0.
    """
    return _from_first(_cell_maxima(average, cells, vectors, noise), vectors)


def fitted_motif_columns(
    average: np.ndarray, cells: int, vectors: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`motif_columns` (at the motif's maxima), the same columns placed by
    :func:`fitted_columns` (a Gaussian each, fitted to the whole motif), both (m, 2) [px], and
    their Gaussian widths (m,) [px] (NaN where the fit failed and the maxima are returned).
    The maxima are found once for both."""
    maxima = _cell_maxima(average, cells, vectors, noise)
    if not len(maxima):
        return maxima, maxima, np.zeros(0)
    centres, widths = fitted_columns(average, vectors, maxima)
    return _from_first(maxima, vectors), _from_first(centres, vectors), widths


def _from_first(positions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``positions`` (m, 2) [px] from the first, the shortest way round."""
    return np.array([_shortest(p - positions[0], vectors) for p in positions]).reshape(-1, 2)


def _cell_maxima(average: np.ndarray, cells: int, vectors: np.ndarray, noise: float) -> np.ndarray:
    """The motif's columns (:func:`motif_columns`) at its maxima, (m, 2) [px from the motif's
    origin], the strongest first."""
    if not cells:
        return np.zeros((0, 2))
    tops, prominence = motif_maxima(average)
    if not len(tops):
        return np.zeros((1, 2))
    error = noise / math.sqrt(cells)
    height = average[tuple(tops.T)] - average.min()
    keep = (prominence >= RELATIVE_PROMINENCE * prominence[0]) & (
        prominence >= SIGNIFICANCE * error
    )
    keep &= height >= RELATIVE_HEIGHT * height[0]
    keep[0] = True
    samples = np.array(average.shape)
    shortest = float(np.hypot(*vectors.T).min())
    # the quadratic's reach: a twentieth of the shortest cell vector (a column is about a
    # sixth of the spacing wide), at least one sample
    m = max(1, round(REFINE_REACH * shortest / float(np.max(np.hypot(*vectors.T) / samples))))
    wrapped = np.pad(average, m, mode="wrap")  # sub-sample maxima across the cell's edges
    refined = np.array([top + _quadratic_offset(wrapped[top[0] : top[0] + 2 * m + 1,
                                                        top[1] : top[1] + 2 * m + 1])
                        for top in tops[keep]])  # fmt: skip
    positions = refined / samples @ vectors
    kept: list[int] = []
    for i, position in enumerate(positions):
        if all(np.hypot(*_shortest(position - positions[j], vectors)) >= shortest / 4
               for j in kept):  # fmt: skip
            kept.append(i)
    return positions[kept]


#: Most columns a cell may hold for :func:`fitted_columns` to fit them (more: the maxima).
MOST_FITTED = 8
#: A fitted centre stays within this fraction of the nearest distance between the maxima.
FIT_REACH = 0.3


def fitted_columns(
    average: np.ndarray, vectors: np.ndarray, maxima: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The centres (m, 2) [px from the motif's origin] and Gaussian widths (m,) [px] of the
    columns of a periodic motif: a round Gaussian each (its own amplitude and width) and a
    constant, fitted by least squares to the whole motif from its maxima ``maxima`` (m, 2) [px
    from the origin]; the maxima and NaN widths when the fit fails (a negative amplitude, a
    width over the nearest distance, a centre moved more than :data:`FIT_REACH` of it) or the
    cell holds over :data:`MOST_FITTED`.

    The maxima of two overlapping columns lie closer together than the columns: a blurred
    Si [110] dumbbell's by 0.34 instead of 0.41 of the lattice spacing in a real image (and
    12 % too close in a simulated one at 0.1 Å/px), and the spacing taken from them was as
    short; a fit of both columns at once puts each where its own peak is.
    """
    m = len(maxima)
    nearest = column_spacing(maxima, vectors)
    failed = maxima, np.full(m, math.nan)
    if m > MOST_FITTED or not math.isfinite(nearest):
        return failed
    rows, cols = average.shape
    step = 2  # every other sample: 2 per pixel at STEP_PX, plenty for columns 4+ px wide
    u, v = np.meshgrid(np.arange(0, rows, step) / rows, np.arange(0, cols, step) / cols,
                       indexing="ij")  # fmt: skip
    points = np.stack([u.ravel(), v.ravel()], -1) @ vectors
    values = average[::step, ::step].ravel()
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)], float) @ vectors

    def parts(params: np.ndarray) -> tuple[np.ndarray, ...]:
        amplitude, centre, width = params[1::4], params[1:].reshape(m, 4)[:, 1:3], params[4::4]
        offset = points[:, None, None, :] - centre[None, :, None, :] - shifts[None, None]
        squared = (offset**2).sum(-1)  # (n, m, 9)
        gauss = np.exp(-0.5 * squared / width[None, :, None] ** 2)
        return amplitude, offset, width, squared, gauss

    def residual(params: np.ndarray) -> np.ndarray:
        amplitude, _, _, _, gauss = parts(params)
        return params[0] + gauss.sum(-1) @ amplitude - values

    def jacobian(params: np.ndarray) -> np.ndarray:
        amplitude, offset, width, squared, gauss = parts(params)
        scaled = amplitude[None, :, None] * gauss / width[None, :, None] ** 2
        columns = np.stack([gauss.sum(-1),
                            (scaled * offset[..., 0]).sum(-1),
                            (scaled * offset[..., 1]).sum(-1),
                            (scaled * squared).sum(-1) / width[None]], -1)  # fmt: skip
        return np.hstack([np.ones((len(points), 1)), columns.reshape(len(points), 4 * m)])

    heights = ndimage.map_coordinates(
        average,
        (np.linalg.solve(vectors.T, maxima.T) % 1.0) * np.array([[rows], [cols]]),
        order=1,
        mode="grid-wrap",
    )
    low = float(values.min())
    start = np.r_[low, np.column_stack([heights - low, maxima, np.full(m, nearest / 4)]).ravel()]
    try:
        result = optimize.least_squares(residual, start, jac=jacobian, method="lm",
                                        max_nfev=200)  # fmt: skip
    except (ValueError, np.linalg.LinAlgError):
        return failed
    amplitude, centres = result.x[1::4], result.x[1:].reshape(m, 4)[:, 1:3]
    width = np.abs(result.x[4::4])
    moved = np.hypot(*(centres - maxima).T)
    if (not np.all(np.isfinite(result.x)) or (amplitude <= 0).any()
            or (width > nearest).any() or (moved > FIT_REACH * nearest).any()):  # fmt: skip
        return failed
    return centres, width


def motif_spacing(image: np.ndarray, vectors: np.ndarray, noise: float) -> tuple[float, int]:
    """The shortest distance between the columns of the averaged unit cell [px], and how many
    columns the cell holds (:func:`motif`, :func:`motif_columns`).

    One column per cell gives the shortest lattice vector.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Columns bright, background removed.
    vectors : ndarray (2, 2)
        The cell vectors [px] (:func:`cell_vectors`).
    noise : float
        The standard deviation of the image's pixel noise [image units].

    Returns
    -------
    (float, int)
        The spacing [px] and the number of columns per cell; (NaN, 0) when no cell fits in
        the image.

    Examples
    --------
    >>> y, x = np.mgrid[:96, :96].astype(float)
    >>> # columns every 12 px along x, and every 12 px along y between them: 6 px apart
    >>> columns = [(r, c) for r in range(0, 96, 6) for c in range(6 * (r // 6 % 2), 96, 12)]
    >>> image = sum(np.exp(-((y - r) ** 2 + (x - c) ** 2) / 4) for r, c in columns)
    >>> spacing, count = motif_spacing(image, np.array([[0.0, 12.0], [12.0, 0.0]]), 0.01)
    >>> count, round(spacing, 1)
    (2, 8.5)
    """
    offsets = motif_columns(*motif(image, vectors), vectors, noise)
    if not len(offsets):
        return math.nan, 0
    return column_spacing(offsets, vectors), len(offsets)


def column_spacing(offsets: np.ndarray, vectors: np.ndarray) -> float:
    """The shortest distance [px] between columns at ``offsets`` (m, 2) [px] in a cell of
    ``vectors`` (2, 2) [px], periodic images included."""
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ vectors
    differences = offsets[:, None, None, :] - offsets[None, :, None, :] + shifts
    distances = np.hypot(differences[..., 0], differences[..., 1])
    distances[distances < 1e-6] = np.inf  # a column and itself
    return float(distances.min())


def motif_maxima(average: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The maxima (n, 2) of a periodic motif, strongest first [samples], and their prominences:
    the height above the lowest point on the straight (periodic) way to the strongest, or above
    the motif's minimum for the strongest."""
    samples = np.array(average.shape)
    tops = average == ndimage.maximum_filter(average, size=3, mode="wrap")
    found = np.argwhere(tops & (average > average.min()))
    found = found[np.argsort(-average[tuple(found.T)], kind="stable")]
    if not len(found):
        return found, np.zeros(0)
    strongest = found[0]
    prominence = np.empty(len(found))
    prominence[0] = average[tuple(strongest)] - average.min()
    fractions = np.linspace(0.05, 0.95, 19)
    for i, top in enumerate(found[1:], start=1):
        step = (strongest - top + samples / 2) % samples - samples / 2  # the short way round
        way = (top[None, :] + fractions[:, None] * step[None, :]).T
        lowest = ndimage.map_coordinates(average, way, order=1, mode="grid-wrap").min()
        prominence[i] = average[tuple(top)] - min(lowest, average[tuple(top)])
    return found, prominence


def _quadratic_offset(box: np.ndarray) -> np.ndarray:
    """Sub-sample (di, dj) of the maximum at the centre of a square ``box`` of odd side
    ``2 m + 1``: the stationary point of the quadratic surface fitted to it by least squares,
    within +-m (0 where the surface has no maximum).

    Unlike a parabola through 3 samples along each axis this keeps the cross term (the
    motif's axes are the cell vectors, 60 or 120 degrees apart in a hexagonal cell, where a
    round column is an ellipse tilted to them) and averages over more than the noise of 3
    samples, which the curvature of a column 6 samples wide barely exceeds.
    """
    m = box.shape[0] // 2
    i, j = (g.ravel() for g in np.mgrid[-m : m + 1, -m : m + 1].astype(float))
    design = np.stack([np.ones_like(i), i, j, i * i, i * j, j * j], 1)
    _, c1, c2, c3, c4, c5 = np.linalg.lstsq(design, box.ravel(), rcond=None)[0]
    hessian = np.array([[2.0 * c3, c4], [c4, 2.0 * c5]])
    if not (hessian[0, 0] < 0 and np.linalg.det(hessian) > 0):
        return np.zeros(2)
    return np.clip(np.linalg.solve(hessian, [-c1, -c2]), -m, m)


def _shortest(offset: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``offset`` (dy, dx) [px] moved by whole cell vectors to its shortest form."""
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ vectors
    candidates = offset + shifts
    return candidates[int(np.argmin(np.hypot(*candidates.T)))]
