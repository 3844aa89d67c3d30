"""What ``estimate`` refuses: images that are not Ronchigrams and calibrations they contradict.

The estimator answers confidently only on data like its training data, so the verb checks, before
the network runs, that each input can be a Ronchigram of the stated calibration. The rules and
their tolerances, with the measurements behind them, are in docs/calibrate.md ("What calibrate
refuses"):

- counts: the mean must be positive and no pixel may lie further below zero than
  :data:`NEGATIVE_RATIO` times the brightest pixel lies above it (dark subtraction leaves noise
  about zero, never a negative image);
- reach: the detector must reach :data:`MIN_REACH` semi-angles from its centre (below, the
  estimates are confidently wrong); below :data:`NOTE_REACH` a note says so;
- structure: an image whose neighbouring pixels are as uncorrelated as white noise's
  (:data:`NOISE_Q`) holds nothing to estimate from and is refused;
- the bright-field disc: its edge must be on the detector, so that the calibration and the disc
  itself can be checked: where the stated disc covers more than :data:`MAX_DISC_COVER` of the
  detector and no clear circular edge (``WELL_DEFINED_*``) is found, the image is refused. The
  edge is measured (Otsu threshold, circle fit); a clear edge more than :data:`DISC_ERROR` off
  the stated radius is refused, one more than :data:`DISC_NOTE` off is noted, and so is an
  unclear edge beyond :data:`DISC_NOTE`; an image as bright just outside the stated disc as
  inside it (:data:`EDGE_CONTRAST_LIMIT`) has no disc of that size and is refused;
- several Ronchigrams combined must not hold the same pixel data twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

from atomlens.calibrate.preprocess import RonchigramInput, bin_image
from atomlens.core.validation import InputError

#: The most negative pixel may lie at most this many times the brightest pixel below zero.
NEGATIVE_RATIO = 2.0
#: Smallest detector reach [semi-angles] from the detector centre to its nearest edge.
MIN_REACH = 0.4
#: Below this reach [semi-angles] the result carries a note.
NOTE_REACH = 1.1
#: The stated disc may cover at most this share of the detector, unless its edge is a clear
#: circle anyway: otherwise neither the calibration nor the disc can be checked, and the image is
#: refused (a lattice image or any texture would pass unnoticed).
MAX_DISC_COVER = 0.8
#: Smallest portmanteau statistic Q (the squared rank autocorrelations at lags 1-3 px along rows
#: and columns, times the pixel count): white noise of any distribution gives Q ~ chi^2 with 6
#: degrees of freedom, above 40 with a probability under 1e-6; a Ronchigram gives thousands.
NOISE_Q = 40.0
#: Relative disagreement of the measured and stated disc radius that gives a note.
DISC_NOTE = 0.15
#: Relative disagreement of the measured and stated disc radius that is refused.
DISC_ERROR = 0.25
#: Largest mean intensity at 1.1-1.3 stated radii, relative to that inside 0.9 stated radii.
EDGE_CONTRAST_LIMIT = 0.6
#: A well-defined disc edge (measured even where the stated disc covers most of the detector):
#: at least this share of the edge points within the fit's tolerance...
WELL_DEFINED_INLIERS = 0.7
#: ...covering at least this share of the circumference (in 36 sectors of 10 degrees)...
WELL_DEFINED_ARC = 0.6
#: ...with an rms distance from the circle of at most this share of its radius.
WELL_DEFINED_RMS = 0.03
#: The disc is measured on a copy binned to under twice this many pixels along its short side...
_CHECK_SIZE = 256
#: ...and to under twice this stated radius [px], which bounds the time (a few ms).
_CHECK_RADIUS = 32
_SMOOTHING = 2.0  # [px] Gaussian smoothing before the threshold, as in find_bright_field_disc


@dataclass(frozen=True)
class DiscMeasurement:
    """The bright-field disc as measured for the calibration check.

    Attributes
    ----------
    centre : (float, float)
        (row, column) of the fitted circle [px]; NaN when no edge was found.
    radius : float
        Radius of the circle fitted to the disc's edge [px]; NaN when no edge was found.
    edge_contrast : float
        Mean intensity between 1.1 and 1.3 stated radii from a centre over that within 0.9
        stated radii, both above the image's 1st percentile: near 0 for a Ronchigram, near 1
        for an image without a disc of the stated size. Taken around the fitted centre, or,
        where that exceeds :data:`EDGE_CONTRAST_LIMIT`, the lowest around it, the intensity
        centroid and the detector centre. NaN when under a quarter of that ring lies on the
        detector for every centre.
    inliers, arc, rms : float
        The edge fit's quality: share of the edge points within its tolerance, share of the
        circumference they cover (36 sectors), and their rms distance from the circle over its
        radius. NaN when no edge was found.
    """

    centre: tuple[float, float]
    radius: float
    edge_contrast: float
    inliers: float = math.nan
    arc: float = math.nan
    rms: float = math.nan

    @property
    def well_defined(self) -> bool:
        """Whether the edge is a clear circle (the ``WELL_DEFINED_*`` limits)."""
        return (
            self.inliers >= WELL_DEFINED_INLIERS
            and self.arc >= WELL_DEFINED_ARC
            and self.rms <= WELL_DEFINED_RMS
        )


def check_counts(image: np.ndarray, name: str) -> None:
    """Refuse an image that cannot be a Ronchigram of counts or intensities.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Finite, real values (after :func:`atomlens.core.validation.check_image`).
    name : str
        The input, for the message.

    Raises
    ------
    InputError
        When the mean is <= 0, or the minimum lies more than :data:`NEGATIVE_RATIO` times the
        maximum below zero.
    """
    mean = float(image.mean(dtype=np.float64))
    low, high = float(image.min()), float(image.max())
    if mean <= 0:
        raise InputError(
            f"{name} has a mean of {mean:.4g} <= 0 (min {low:.4g}, max {high:.4g}); a Ronchigram "
            "holds counts or intensities: check that the image is not inverted and that no "
            "pedestal larger than the dark level was subtracted."
        )
    if low < -NEGATIVE_RATIO * high:
        raise InputError(
            f"{name} reaches {low:.4g}, more than {NEGATIVE_RATIO:g} x its maximum ({high:.4g}) "
            "below zero; dark subtraction leaves noise about zero, not this: check the dark "
            "offset and the data type (wrapped-around integers)."
        )


def detector_reach(item: RonchigramInput) -> float:
    """Distance from the detector centre to its nearest edge [semi-angles]."""
    return min(item.image.shape) / 2 * item.angular_sampling / item.semiangle


def noise_statistic(image: np.ndarray) -> float:
    """The portmanteau statistic Q of an image: how far it is from white noise.

    Q = n sum_k (r_k^2 + c_k^2) over lags k = 1, 2, 3 px, where r_k and c_k are the
    autocorrelations of the pixel ranks along rows and columns and n the number of pixels.
    Ranks make Q the same for every distribution of the noise (a few huge pixels do not
    dominate it): for white noise it follows chi^2 with 6 degrees of freedom (mean 6). Images
    with a short side over 512 px are binned first (binned white noise is white noise).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Finite values; at least 4 px along each axis.

    Returns
    -------
    float
        Q (dimensionless); 0 for a constant image.
    """
    factor = max(1, min(image.shape) // _CHECK_SIZE)
    binned = bin_image(image, factor) if factor > 1 else np.asarray(image, dtype=np.float64)
    ranks = stats.rankdata(binned, method="average").reshape(binned.shape)
    ranks -= ranks.mean()
    power = float((ranks * ranks).sum())
    if power <= 0:
        return 0.0
    q = 0.0
    for lag in (1, 2, 3):
        rows = float((ranks[lag:] * ranks[:-lag]).sum()) / power
        cols = float((ranks[:, lag:] * ranks[:, :-lag]).sum()) / power
        q += rows**2 + cols**2
    return ranks.size * q


def check_structure(image: np.ndarray, name: str) -> None:
    """Refuse an image with no spatial structure beyond white noise (:data:`NOISE_Q`).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Finite, real values.
    name : str
        The input, for the message.

    Raises
    ------
    InputError
        When :func:`noise_statistic` is below :data:`NOISE_Q`.
    """
    q = noise_statistic(image)
    if q < NOISE_Q:
        raise InputError(
            f"{name} shows no structure beyond white noise: its neighbouring pixels are as "
            f"uncorrelated as noise's (Q = {q:.3g}; white noise stays under {NOISE_Q:g}, a "
            "Ronchigram gives thousands), so it holds no aberrations to measure; check that it "
            "is the Ronchigram and not a dark or noise frame."
        )


def check_reach(item: RonchigramInput) -> list[str]:
    """Refuse a detector that sees under :data:`MIN_REACH` semi-angles; note one under 1.1.

    Returns
    -------
    list of str
        The notes.
    """
    reach = detector_reach(item)
    if reach < MIN_REACH:
        raise InputError(
            f"{item.source}: the detector reaches only {reach:.3g} semi-angles from its centre "
            f"({min(item.image.shape)} px x {item.angular_sampling:g} mrad/px / 2, for a "
            f"{item.semiangle:g} mrad semi-angle); the estimator needs at least {MIN_REACH:g}. "
            "Check angular_sampling= and semiangle= against the microscope."
        )
    if reach < NOTE_REACH:
        return [f"the detector reaches only {reach:.2f} semi-angles from its centre"]
    return []


def stated_disc_cover(item: RonchigramInput) -> float:
    """Share of the detector inside the stated disc centred on the detector (0 to 1)."""
    radius = item.semiangle / item.angular_sampling  # [px]
    rows, cols = item.image.shape
    y = np.clip(np.arange(rows) - (rows - 1) / 2, -radius, radius)
    half_width = np.sqrt(radius**2 - y**2)  # the disc's half-chord along each row [px]
    inside = np.clip(half_width, 0, cols / 2) * 2
    inside[np.abs(np.arange(rows) - (rows - 1) / 2) > radius] = 0
    return float(inside.sum() / (rows * cols))


def measure_disc(image: np.ndarray, radius: float) -> DiscMeasurement:
    """Measure the bright-field disc's edge, and the contrast at the edge of a stated disc.

    Parameters
    ----------
    image : ndarray of shape (H, W)
    radius : float
        The stated disc radius [px].

    Returns
    -------
    DiscMeasurement
        In pixels of ``image``. Large images and discs are measured on a binned copy (under
        512 px along the short side, a stated radius under 64 px), which bounds the time.
    """
    factor = max(1, min(image.shape) // _CHECK_SIZE, int(radius // _CHECK_RADIUS))
    binned = bin_image(image, factor) if factor > 1 else np.asarray(image, dtype=np.float64)
    smooth = ndimage.gaussian_filter(binned.astype(np.float64, copy=False), _SMOOTHING)
    edge = _disc_edge(smooth)
    if edge is None:
        return DiscMeasurement((math.nan, math.nan), math.nan, math.nan)
    cy, cx, fitted = _fit_circle(*edge)
    contrast = _edge_contrast(smooth, (cy, cx), radius / factor)
    # the centre of binned pixel k is at (k + 1/2) factor - 1/2 original pixels
    centre = ((cy + 0.5) * factor - 0.5, (cx + 0.5) * factor - 0.5)
    quality = _edge_quality(*edge, (cy, cx, fitted))
    # the edge pixels are the disc's outermost ones, half a pixel inside its boundary
    return DiscMeasurement(centre, (fitted + 0.5) * factor, contrast, *quality)


def check_disc(item: RonchigramInput) -> list[str]:
    """Refuse a bright-field disc that contradicts the stated calibration; note a doubtful one.

    Returns
    -------
    list of str
        The notes (a disagreement of :data:`DISC_NOTE` to :data:`DISC_ERROR`).

    Raises
    ------
    InputError
        When the disc has no clear edge and either the stated disc covers more than
        :data:`MAX_DISC_COVER` of the detector or the ring just outside it is not on the
        detector (nothing can be checked), when a clear disc edge lies more than
        :data:`DISC_ERROR` off the stated radius, when there is no disc edge at the stated
        radius (:data:`EDGE_CONTRAST_LIMIT`), or no edge at all.
    """
    radius = item.semiangle / item.angular_sampling  # [px]
    disc = measure_disc(item.image, radius)
    cover = stated_disc_cover(item)
    stated = (
        f"the stated {item.semiangle:g} mrad ({item.semiangle:g} mrad / "
        f"{item.angular_sampling:g} mrad/px = {radius:.3g} px)"
    )
    check = "check angular_sampling= and semiangle=, and that the image is a Ronchigram"
    if not math.isfinite(disc.radius):
        raise InputError(f"{item.source}: no bright-field disc edge found for {stated}; {check}.")
    if not disc.well_defined:
        if cover > MAX_DISC_COVER:
            reason = (
                f"the disc would cover {cover:.0%} of the detector (at most "
                f"{MAX_DISC_COVER:.0%} can be checked)"
            )
        elif math.isnan(disc.edge_contrast):
            reason = "under a quarter of the ring just outside it lies on the detector"
        else:
            reason = ""
        if reason:
            raise InputError(
                f"{item.source}: no clear bright-field disc edge, and for {stated} {reason}: "
                "neither the calibration nor that the image is a Ronchigram can be checked (a "
                "lattice image would pass unnoticed). Record the Ronchigram with the whole disc "
                "on the detector (a shorter camera length), or check angular_sampling= and "
                "semiangle= against the microscope."
            )
    error = disc.radius / radius - 1
    text = (
        f"the bright-field disc measures {disc.radius * item.angular_sampling:.3g} mrad in radius"
    )
    no_edge = disc.edge_contrast > EDGE_CONTRAST_LIMIT
    contrast = (
        f"just outside the stated disc the image is {disc.edge_contrast:.0%} as bright as inside "
        f"it (a Ronchigram: under {EDGE_CONTRAST_LIMIT:.0%})"
    )
    if abs(error) > DISC_ERROR and disc.well_defined:
        also = f", and {contrast}" if no_edge else ""
        raise InputError(
            f"{item.source}: {text}, not {stated}: more than {DISC_ERROR:.0%} off{also}; {check}."
        )
    if no_edge:
        raise InputError(
            f"{item.source}: no bright-field disc of {stated}: {contrast}, and the image's "
            f"largest bright region measures {disc.radius * item.angular_sampling:.3g} mrad in "
            f"radius; {check}."
        )
    if abs(error) > DISC_NOTE:
        unclear = "" if disc.well_defined else " (its edge is not a clear circle)"
        return [f"{text}{unclear}, not {stated}: check the angular sampling and semi-angle"]
    return []


def check_distinct(items: Sequence[RonchigramInput]) -> None:
    """Refuse the same pixel data twice among Ronchigrams that are combined.

    Raises
    ------
    InputError
        Naming both inputs (position and source).
    """
    seen: dict[tuple, int] = {}
    for index, item in enumerate(items):
        image = np.ascontiguousarray(item.image)
        key = (image.shape, hashlib.sha256(image.tobytes()).hexdigest())
        if key in seen:
            first = seen[key]
            raise InputError(
                f"Ronchigrams {first + 1} ({items[first].source}) and {index + 1} "
                f"({item.source}) hold identical pixel data: the same image twice is not two "
                "independent observations and would shrink the uncertainty; give each "
                "Ronchigram once."
            )
        seen[key] = index


def _otsu_threshold(values: np.ndarray) -> float:
    """The threshold that maximises the between-class variance of a 256-bin histogram."""
    counts, edges = np.histogram(values, 256)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)
    above = below[-1] - below
    moment = np.cumsum(counts * centres)
    mean_below = moment / np.maximum(below, 1)
    mean_above = (moment[-1] - moment) / np.maximum(above, 1)
    return float(centres[np.argmax(below * above * (mean_below - mean_above) ** 2)])


def _disc_edge(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and columns of the largest bright region's edge, off the detector border, or None."""
    mask = _fill_holes(smooth > _otsu_threshold(smooth))
    labels, count = ndimage.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    disc = labels == int(np.argmax(sizes)) + 1  # without holes: the mask has none
    inner = disc.copy()  # pixels whose four neighbours are in the disc too
    inner[1:] &= disc[:-1]
    inner[:-1] &= disc[1:]
    inner[:, 1:] &= disc[:, :-1]
    inner[:, :-1] &= disc[:, 1:]
    edge = disc & ~inner
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = False, False, False, False
    rows, cols = np.nonzero(edge)
    if rows.size < 10:
        return None
    return rows.astype(float), cols.astype(float)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region that does not touch the border filled."""
    labels, _ = ndimage.label(~mask)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~np.isin(labels, border[border > 0])


def _fit_circle(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float]:
    """Centre (row, column) and radius [px] of a circle through edge points.

    An algebraic least-squares fit, repeated three times without the points whose distance
    from the circle exceeds 2.5 robust standard deviations (or 1.5 px), so that blobs touching
    the disc (Bragg discs, bright specimen features) do not pull it.
    """
    for _ in range(3):
        keep = _inliers(rows, cols, _algebraic_circle(rows, cols))
        if keep.sum() < 10:
            break
        rows, cols = rows[keep], cols[keep]
    return _algebraic_circle(rows, cols)


def _inliers(rows: np.ndarray, cols: np.ndarray, circle: tuple[float, float, float]) -> np.ndarray:
    """Edge points within 2.5 robust standard deviations (at least 1.5 px) of the circle."""
    cy, cx, radius = circle
    residual = np.abs(np.hypot(rows - cy, cols - cx) - radius)
    return residual < max(2.5 * 1.4826 * float(np.median(residual)), 1.5)


def _edge_quality(
    rows: np.ndarray, cols: np.ndarray, circle: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Share of inliers, share of the 36 sectors they cover, their rms distance / radius."""
    cy, cx, radius = circle
    keep = _inliers(rows, cols, circle)
    if not keep.any() or radius <= 0:
        return 0.0, 0.0, math.inf
    angle = np.arctan2(rows[keep] - cy, cols[keep] - cx)
    sectors = np.unique(np.floor((angle + math.pi) / (2 * math.pi) * 36).astype(int) % 36)
    distance = np.hypot(rows[keep] - cy, cols[keep] - cx) - radius
    return float(keep.mean()), sectors.size / 36, float(np.sqrt(np.mean(distance**2)) / radius)


def _algebraic_circle(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float]:
    """Kasa's fit: x^2 + y^2 = a x + b y + c in the least-squares sense."""
    design = np.stack([cols, rows, np.ones_like(rows)], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, cols**2 + rows**2, rcond=None)
    cx, cy = a / 2, b / 2
    return float(cy), float(cx), math.sqrt(max(c + cx**2 + cy**2, 0.0))


def _edge_contrast(smooth: np.ndarray, fitted: tuple[float, float], radius: float) -> float:
    """The contrast ratio at the edge of a disc of ``radius`` (see :class:`DiscMeasurement`).

    Around the fitted centre first; above :data:`EDGE_CONTRAST_LIMIT`, the lowest around it, the
    intensity centroid and the detector centre: a Ronchigram has its disc around at least one
    of them even when the edge fit failed (thick specimens), an image without a disc has no such
    edge around any.
    """
    dark = float(np.percentile(smooth, 1))
    ratio = _ring_ratio(smooth, fitted, radius, dark)
    if ratio <= EDGE_CONTRAST_LIMIT:  # a disc edge already: the other centres cannot refuse
        return ratio
    weight = np.clip(smooth - dark, 0, None)
    total = float(weight.sum())
    centres = [((smooth.shape[0] - 1) / 2, (smooth.shape[1] - 1) / 2)]
    if total > 0:
        rows, cols = np.indices(smooth.shape, sparse=True)
        centres.append((float((weight * rows).sum()) / total, float((weight * cols).sum()) / total))
    ratios = [ratio] + [_ring_ratio(smooth, centre, radius, dark) for centre in centres]
    finite = [value for value in ratios if not math.isnan(value)]
    return min(finite) if finite else math.nan


def _ring_ratio(
    smooth: np.ndarray, centre: tuple[float, float], radius: float, dark: float
) -> float:
    """Mean at 1.1-1.3 ``radius`` over the mean within 0.9 ``radius``, both above ``dark``.

    NaN when under a quarter of the outer ring lies on the detector.
    """
    rows, cols = np.ogrid[: smooth.shape[0], : smooth.shape[1]]
    distance = np.hypot(rows - centre[0], cols - centre[1])
    inner = distance < 0.9 * radius
    outer = (distance > 1.1 * radius) & (distance < 1.3 * radius)
    ring = math.pi * (1.3**2 - 1.1**2) * radius**2
    if not inner.any() or outer.sum() < 0.25 * ring:
        return math.nan
    inside = float(smooth[inner].mean()) - dark
    if inside <= 0:
        return math.inf
    return (float(smooth[outer].mean()) - dark) / inside


#: Offsets below this [Å] (nonzero) are taken for metres or micrometres, not Å.
SMALLEST_OFFSET = 1.0
#: Offsets above this [Å] are taken for picometres or another unit, not Å.
LARGEST_OFFSET = 2e4
#: Probe shifts below this [Å] (nonzero) are taken for metres, above LARGEST_SHIFT for pm.
SMALLEST_SHIFT = 1e-3
LARGEST_SHIFT = 500.0
#: Each image of a series must correlate at least this well with another one (median over
#: its patches) to be taken for the same specimen area...
SAME_SPECIMEN = 0.3
#: ...and the fitted model must leave a median residual shift of at most this share of the
#: patch side: the best shift between two unrelated smooth patches correlates well too, but
#: the shifts of unrelated patches follow no model (about 0.15 patch sides on simulated
#: amorphous carbon; 0.005 for probe-shifted images of one specimen, up to 0.08 between images
#: 20 nm apart in defocus).
SAME_SPECIMEN_SHIFT = 0.1


def check_series(offsets: np.ndarray, shifts: np.ndarray, count: int) -> None:
    """Refuse offsets or probe shifts of a series in the wrong number or the wrong units.

    Parameters
    ----------
    offsets : ndarray of shape (M, 8)
        Cartesian offsets of each image [Å].
    shifts : ndarray of shape (K, 2)
        Probe position (y, x) of each image [Å].
    count : int
        Number of images.

    Raises
    ------
    ValueError
        Not one offset and one shift per image, non-finite values, values that are clearly in
        another unit (metres, micrometres, picometres), or a series without any change.
    """
    if len(offsets) != count:
        raise ValueError(f"{count} Ronchigrams but {len(offsets)} offsets: give one per image "
                         "(0 for the reference).")  # fmt: skip
    if len(shifts) != count:
        raise ValueError(f"{count} Ronchigrams but {len(shifts)} probe shifts: give one (dy, dx) "
                         "[Å] per image ((0, 0) for the reference).")  # fmt: skip
    if not (np.isfinite(offsets).all() and np.isfinite(shifts).all()):
        raise ValueError("offsets and probe shifts must be finite numbers.")
    largest = float(np.abs(offsets).max(initial=0))
    if 0 < largest < SMALLEST_OFFSET:
        raise ValueError(f"The largest offset is {largest:.3g} Å: offsets are in Å (20 nm = 200 "
                         "Å), these look like metres or micrometres.")  # fmt: skip
    if largest > LARGEST_OFFSET:
        raise ValueError(f"An offset of {largest:.3g} Å ({largest / 1e4:.3g} µm) is beyond the "
                         f"{LARGEST_OFFSET:g} Å a Ronchigram series can use: offsets are in Å "
                         "(20 nm = 200 Å), not pm.")  # fmt: skip
    moved = float(np.abs(shifts).max(initial=0))
    if 0 < moved < SMALLEST_SHIFT:
        raise ValueError(f"The largest probe shift is {moved:.3g} Å: probe shifts are in Å, "
                         "these look like metres.")  # fmt: skip
    if moved > LARGEST_SHIFT:
        raise ValueError(f"A probe shift of {moved:.3g} Å is beyond the {LARGEST_SHIFT:g} Å over "
                         "which a Ronchigram still shows the same specimen: shifts are in Å, "
                         "not pm.")  # fmt: skip
    changes = np.concatenate([offsets, shifts], axis=1)
    if count < 2 or np.ptp(changes, axis=0).max() == 0:
        raise ValueError("A series needs at least two Ronchigrams at different offsets or probe "
                         "shifts; all given were taken at the same setting.")  # fmt: skip


def check_same_specimen(
    correlation: np.ndarray, residual: np.ndarray, sources: Sequence[str]
) -> list[int]:
    """Refuse a series whose images do not show the same specimen area.

    Parameters
    ----------
    correlation : ndarray of shape (N, N)
        Median patch correlation of each pair (NaN where nothing could be compared, e.g.
        magnifications too different).
    residual : ndarray of shape (N, N)
        Median residual patch shift of each pair after the fit [patch sides] (NaN likewise).
    sources : sequence of str
        The images, for the message.

    Returns
    -------
    list of int
        The images that match no other (an image near focus, say): to be left out.

    Raises
    ------
    InputError
        When fewer than two images match another: a pair matches when its median patch
        correlation is at least :data:`SAME_SPECIMEN` and its median residual shift at most
        :data:`SAME_SPECIMEN_SHIFT`.
    """
    with np.errstate(invalid="ignore"):
        match = ((correlation >= SAME_SPECIMEN) & (residual <= SAME_SPECIMEN_SHIFT)).any(axis=1)
    if match.sum() >= 2:
        return [int(i) for i in np.flatnonzero(~match)]
    if not np.isfinite(correlation).any():
        raise InputError(
            "No two Ronchigrams of the series could be compared: their magnifications differ "
            "too much (an image near focus) or the probe shifts leave no overlap; take smaller "
            "offsets or probe shifts."
        )
    found = [f"image {i} ({sources[i]}: correlation {np.nanmax(correlation[i]):.2f}, residual "
             f"shift {np.nanmin(residual[i]):.2f} patch sides)"
             for i in range(len(sources)) if np.isfinite(correlation[i]).any()]  # fmt: skip
    raise InputError(
        f"The Ronchigrams do not match one another (a match needs a median patch correlation "
        f"of at least {SAME_SPECIMEN:g} and a median residual shift of at most "
        f"{SAME_SPECIMEN_SHIFT:g} patch sides after the fit): {'; '.join(found)}. A series "
        "must show the same specimen area at known offsets or probe shifts; check that the "
        "specimen did not move or change between images and that the offsets and shifts are "
        "right."
    )
