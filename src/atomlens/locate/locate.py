"""The locate verb: every atomic column of an image or stack, with sub-pixel position, uncertainty,
integrated intensity and class, as a trackpy-compatible table.

The classical path (``method="classical"``, the Atomap-like baseline with no network):

1. The column spacing is estimated from the image's autocorrelation
   (:func:`~atomlens.locate.preprocess.estimate_spacing`) unless given, and shortened to the
   shortest column distance of the image averaged over its unit cells
   (:mod:`~atomlens.locate.motif`) when that cell shows more columns than one; it sets every
   length below, so the same settings work from 0.05 to 0.6 Å per pixel and without a pixel
   size. A stack's spacing comes from its mean frame, each frame shifted onto the middle
   one first (:func:`~atomlens.locate.register.aligned_mean`: drift blurs a plain mean).
2. Dark columns (ABF; HRTEM where the image says so) are negated; a smooth background is removed
   (:func:`~atomlens.locate.preprocess.subtract_background`).
3. Local maxima of the image smoothed at the column scale, at least 0.45 spacings apart, that
   stand above the median of their surroundings (two spacings wide) by more than ``threshold``
   noise standard deviations of the smoothed image (the noise estimated from the image), and
   above the lowest point there by at least 10 % of what the strongest columns do.
4. Every column is refined on the (background-free) image by a batched Gaussian fit with its
   neighbours (:func:`~atomlens.locate.refine.refine_columns`), with position uncertainties;
   its width stays under 0.35 spacings (:data:`~atomlens.locate.revise.WIDEST`) and, in
   HAADF and ABF, over 0.75 of the averaged cell's narrowest column
   (:func:`~atomlens.locate.revise.width_floor`).
5. Columns whose fit fails (noise maxima) or whose centre lies off the image are dropped, as
   is the weaker of two that converge within a third of a spacing. HAADF: a fit more than 2.5
   times wider or narrower than the typical column (at a few tens of counts a weak column's
   fit shrinks onto a noise spike or spreads over a neighbour) is fitted again with its width
   held within 1.6 times the typical one (ABF and HRTEM columns differ in shape too much).
6. HAADF (``site_search``): the columns found vote for their lattice neighbours' sites
   (:mod:`~atomlens.locate.sites`). A column off the lattice right beside one on it (noise on
   the flank of a dumbbell) is dropped unless 5 standard errors strong; the empty sites are
   tested at their fixed positions at a 1 % false discovery rate (at least 1.5 standard
   errors, always from 3: :func:`~atomlens.locate.sites.site_discoveries`), and those that
   pass are fitted with their neighbours and kept when significant. A vacancy gets votes and
   no column. When the columns found make one sublattice, the averaged unit cell's other
   columns are sites too.
7. When the integrated intensities fall into two well-separated groups (a two-Gaussian
   mixture of the log intensities, by BIC and Ashman's D > 2), each column is classed
   ``heavy`` or ``light`` (HAADF) or ``strong`` or ``weak`` (ABF, HRTEM), else ``column``.

The network paths (``method="unet"``, the AtomAI-Segmentor-like baseline of paper 002, and
``method="structure"``, paper 002's structure-conditioned model, given ``structure=`` and
``zone_axis=``) replace step 3: the background-free image is resampled so that columns lie
8 px apart (:mod:`atomlens.locate.network`), the network gives a probability map of columns
and one of heavy columns, and every local maximum of the column map at or above the model's
``level`` (0.5) is a candidate. An estimated spacing is checked by the network (the scale at
which it is most confident; one the averaged unit cell gave in HAADF or ABF is not moved);
``structure=`` with a pixel size gives the spacing. Steps 4 to 7
are the same, except that the class comes from the heavy map.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import fft, ndimage, spatial
from tqdm.auto import tqdm

from atomlens.core.parallel import (
    check_scheduler,
    is_lazy,
    map_blocks,
    threads_per_worker,
)
from atomlens.core.validation import InputError, check_parameter
from atomlens.locate.checks import check_locate_input
from atomlens.locate.coupled import in_pairs
from atomlens.locate.motif import (
    Cell,
    column_spacing,
    fitted_motif_columns,
    motif,
    motif_columns,
    stacked_motif,
)
from atomlens.locate.preprocess import (
    MIN_SPACING_PX,
    columns_are_dark,
    estimate_cell,
    subtract_background,
)
from atomlens.locate.register import aligned_mean
from atomlens.locate.revise import (
    drop_duplicates,
    fitted,
    mended,
    polished,
    pruned,
    thinned,
    typical_width,
    width_floor,
    with_sites,
)
from atomlens.locate.threads import fit_threads, gaussian_in_bands, in_bands

__all__ = ["COLUMNS", "METHODS", "MODALITIES", "Segmentor", "load_segmentor", "locate"]

MODALITIES = ("haadf", "abf", "hrtem")
METHODS = ("classical", "unet", "structure")
#: The shipped model of each network method.
MODELS = {"unet": "locate-unet", "structure": "locate-structure"}
#: The table's columns, in order (``frame`` first for a stack).
COLUMNS = (
    "y",
    "x",
    "y_A",
    "x_A",
    "intensity",
    "class",
    "sigma_y",
    "sigma_x",
    "width",
    "background",
)
#: The spacing assumed when the image shows no periodicity and a pixel size is known [Å].
FALLBACK_SPACING = 2.0
#: The shortest column spacing estimated from an image with a pixel size [Å]: no crystal's
#: columns are closer in projection (diamond's [110] dumbbells: 0.89 Å), and closer ones
#: would not be resolved by any probe.
MIN_SPACING_A = 0.75


class Segmentor:
    """A loaded column segmentation network with its config.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~atomlens.nn.SegmentationUNet`.
    config : dict
        The model folder's config (``task`` "column-segmentation").
    """

    def __init__(self, model: Any, config: dict[str, Any]):
        if config.get("task") != "column-segmentation":
            raise ValueError(
                f"The model is a {config.get('task')!r} model, not a column-segmentation network."
            )
        self.model = model.eval()
        self.config = config

    @property
    def conditioned(self) -> bool:
        """Whether the network reads structure tokens."""
        return bool(self.model.structure_features)

    def candidates(
        self, flat: np.ndarray, spacing: float, tokens: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Integer (y, x) column candidates [px] of a columns-bright, background-free image,
        whether each is heavy, and their mean column probability (0 with none)."""
        from atomlens.locate.network import column_candidates, network_input, predict_maps

        canonical, factors = network_input(flat, spacing)
        maps = predict_maps(self.model, canonical, tokens)
        at, heavy = column_candidates(maps, (1.0, 1.0), level=float(self.config.get("level", 0.5)))
        confidence = float(maps[0][at[:, 0], at[:, 1]].mean()) if len(at) else 0.0
        # canonical pixel centres back to the input's (network.to_canonical's mapping)
        peaks = np.rint((at + 0.5) / np.asarray(factors) - 0.5).astype(int)
        inside = (peaks >= 0).all(axis=1) & (peaks < flat.shape).all(axis=1)
        return peaks[inside], heavy[inside], confidence


@functools.lru_cache(maxsize=4)
def _load_cached(name: str) -> Segmentor:
    from atomlens.zoo import load_model

    model, config = load_model(name)
    return Segmentor(model, config)


def load_segmentor(model: str | Path = "locate-unet") -> Segmentor:
    """The segmentation network of a model name or folder (verified weights, cached by name)."""
    return _load_cached(str(model))


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}=... must be one of {', '.join(choices)}; got {value!r}.")
    return value.lower()


def noise_sigma(image: np.ndarray) -> float:
    """Robust standard deviation of an image's pixel noise [image units].

    The smaller of two estimates, each blind to a different kind of signal:

    - spatial: the 3 x 3 product of second differences cancels any locally linear signal and
      has 36 times the noise variance; the larger of its median absolute deviation (blind to
      sparse columns) and its 1 %-trimmed root mean square (the MAD is 0 on sparse counts);
    - spectral: white noise spreads its variance evenly over all frequencies, while the image
      of columns, blurred by the probe or the objective aperture, has almost none beyond 0.4
      cycles/px; the median power there (an exponential distribution's median is ln 2 of its
      mean) gives the variance. Fringes everywhere (HRTEM) fool the spatial estimate, not this.
    """
    values = np.asarray(image, np.float64)
    kernel = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0])
    residual = ndimage.convolve(values, kernel, mode="reflect")[1:-1, 1:-1]
    mad = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    squares = residual.ravel() ** 2
    count = max(1, int(0.99 * squares.size))
    kept = np.partition(squares, count - 1)[:count]  # the smallest 99 %, unsorted
    # a Gaussian's 1 % largest squares hold 5.7 % of its variance
    trimmed = math.sqrt(float(kept.mean()) / 0.943)
    spatial_sigma = max(mad, trimmed) / 6.0
    power = np.abs(fft.rfft2(values - values.mean(), workers=-1)) ** 2
    fy = np.abs(np.fft.fftfreq(values.shape[0]))[:, None]
    fx = np.fft.rfftfreq(values.shape[1])[None, :]
    high = power[(fy > 0.4) & (fx > 0.4)]
    if not high.size:
        return float(spatial_sigma)
    spectral_sigma = math.sqrt(float(np.median(high)) / (values.size * math.log(2)))
    return float(min(spatial_sigma, spectral_sigma))


def _find_peaks(
    flat: np.ndarray, spacing: float, threshold: float, noise: float | None = None
) -> np.ndarray:
    """Integer (y, x) of the column candidates of a background-free, columns-bright image
    (``noise``: its :func:`noise_sigma` when known).

    Local maxima within a disc of a fifth of a spacing (a wider disc would reach the shoulder
    of a strong neighbour and hide a weak column beside it, like S next to Mo), prominent enough
    (module docstring), then thinned so that no two are closer than 0.45 spacings (the
    stronger kept).
    """
    sigma = max(0.12 * spacing, 0.7)
    smooth = gaussian_in_bands(flat, sigma)
    radius = max(1.0, 0.2 * spacing)
    offsets = np.arange(-int(radius), int(radius) + 1)
    disc = np.hypot(*np.meshgrid(offsets, offsets, indexing="ij")) <= radius
    peaks = local_maxima(smooth, disc)
    if not len(peaks):
        return np.zeros((0, 2), dtype=int)
    box = 2 * max(int(spacing), 1) + 1
    lowest = functools.partial(ndimage.minimum_filter, size=box, mode="reflect")
    floor = in_bands(lowest, smooth, box // 2)
    prominence = (smooth - floor)[peaks[:, 0], peaks[:, 1]]
    # significance against the local median (a local minimum would count noise's own spread)
    excess = (smooth - _local_median(smooth, box))[peaks[:, 0], peaks[:, 1]]
    noise = noise_sigma(flat) if noise is None else noise
    smoothed_noise = noise / (2.0 * math.sqrt(math.pi) * sigma)
    strongest = float(np.percentile(prominence, 95))
    keep = (excess > threshold * smoothed_noise) & (prominence > 0.1 * strongest)
    peaks, height = peaks[keep], smooth[peaks[keep, 0], peaks[keep, 1]]
    ordered = peaks[np.argsort(-height, kind="stable")]
    return ordered[thinned(ordered, 0.45 * spacing)]


def local_maxima(image: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Integer (y, x) (n, 2), in raster order, of the pixels of ``image`` that are not below
    any pixel of ``footprint`` (odd sides, its centre and 4 nearest neighbours in it) around
    them, the image's edge pixels repeated beyond it, and that stand above its minimum.

    The set skimage's ``peak_local_max(image, footprint=footprint, exclude_border=False)``
    finds (tested; it sorts them by height), without its maximum filter over the whole
    footprint at every pixel (scipy's, with a footprint, runs in one thread and was half of
    the peak finder's time: 0.09 -> 0.02 s on 1024 x 1024 px): the maxima of the 4 nearest
    neighbours are found with whole-array comparisons, and only they are compared with the
    rest of the footprint, one offset at a time, dropping each that a neighbour tops.
    """
    rows, cols = image.shape
    edged = np.pad(image, 1, mode="edge")
    tops = image > image.min()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        tops &= image >= edged[dy : dy + rows, dx : dx + cols]
    y, x = np.nonzero(tops)
    value = image[y, x]
    for dy, dx in np.argwhere(footprint) - np.array(footprint.shape) // 2:
        if abs(dy) + abs(dx) > 1:
            keep = value >= image[np.clip(y + dy, 0, rows - 1), np.clip(x + dx, 0, cols - 1)]
            y, x, value = y[keep], x[keep], value[keep]
    return np.column_stack([y, x])


#: Share of ``threshold`` a guide's candidate must reach in the counts themselves.
GUIDE_CONFIRMATION = 0.5
#: ... and the share of the median candidate's excess it must reach.
GUIDE_SHARE = 0.15


def _confirmed(peaks: np.ndarray, flat: np.ndarray, spacing: float, level: float) -> np.ndarray:
    """Mask of the candidates (from a guide image) that the counts support: the smoothed
    background-free image stands above its local median there by ``level`` noise standard
    deviations and by :data:`GUIDE_SHARE` of the median candidate's excess. The guide says
    where a column may be, so half the usual significance suffices; a noise blob a generator
    made into a column between the real ones stands far below them."""
    if not len(peaks):
        return np.zeros(0, dtype=bool)
    sigma = max(0.12 * spacing, 0.7)
    smooth = gaussian_in_bands(flat, sigma)
    box = 2 * max(int(spacing), 1) + 1
    excess = (smooth - _local_median(smooth, box))[peaks[:, 0], peaks[:, 1]]
    smoothed_noise = noise_sigma(flat) / (2.0 * math.sqrt(math.pi) * sigma)
    typical = float(np.median(excess))
    return (excess > level * smoothed_noise) & (excess > GUIDE_SHARE * typical)


def _local_median(image: np.ndarray, box: int) -> np.ndarray:
    """The median over a ``box`` px square around every pixel, on a grid coarsened so that the
    box spans about 5 samples (a full-resolution median filter of 2 spacings is slow)."""
    step = max(1, box // 5)
    coarse = ndimage.median_filter(image[::step, ::step], size=max(3, box // step), mode="reflect")
    fine = np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)
    return fine[: image.shape[0], : image.shape[1]]


def _two_gaussians(values: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, ...]:
    """Maximum-likelihood mixture of two 1D Gaussians (EM from the quartiles).

    Returns weights, means, variances (each of 2) and the log-likelihood.
    """
    means = np.percentile(values, [25.0, 75.0])
    floor = 1e-6 * values.var() + 1e-300
    variances = np.full(2, values.var() / 4 + floor)
    weights = np.full(2, 0.5)

    def densities() -> np.ndarray:  # (2, n): each component's, a row each (contiguous rows
        # are 5 times faster than (n, 2) columns; this was 5 % of locating a frame)
        square = (values - means[:, None]) ** 2
        return (weights / np.sqrt(2 * np.pi * variances))[:, None] * np.exp(
            -0.5 * square / variances[:, None]
        )

    for _ in range(iterations):
        share = densities()
        share /= share[0] + share[1] + 1e-300
        counts = share.sum(axis=1) + 1e-12
        weights = counts / len(values)
        means = (share @ values) / counts
        variances = np.einsum("kn,kn->k", share, (values - means[:, None]) ** 2) / counts + floor
    density = densities()
    return weights, means, variances, float(np.sum(np.log(density[0] + density[1] + 1e-300)))


def _classes(intensity: np.ndarray, modality: str) -> np.ndarray:
    """``heavy``/``light`` (``strong``/``weak``) when the intensities are clearly two groups.

    Two groups means: a mixture of two Gaussians has a Bayesian information criterion more than
    10 below one Gaussian's on the log intensities, its components are well separated (Ashman's
    D > 2) and the smaller holds at least 5 % of the columns.
    """
    labels = np.full(len(intensity), "column", dtype=object)
    values = np.log(intensity[intensity > 0]) if len(intensity) else intensity
    if len(values) < 10 or len(values) < len(intensity) or values.std() == 0:
        return labels
    n = len(values)
    one = -0.5 * n * (np.log(2 * np.pi * values.var()) + 1) - np.log(n)  # -BIC / 2, 2 parameters
    weights, means, variances, likelihood = _two_gaussians(values)
    two = likelihood - 2.5 * np.log(n)  # 5 parameters
    ashman = math.sqrt(2) * abs(means[1] - means[0]) / math.sqrt(variances.sum())
    if two - one > 5 and ashman > 2 and weights.min() >= 0.05:  # -BIC / 2 lower by 5
        cut = _boundary(weights, means, variances)
        names = ("heavy", "light") if modality == "haadf" else ("strong", "weak")
        labels = np.where(np.log(intensity) > cut, names[0], names[1]).astype(object)
    return labels


def _boundary(weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> float:
    """The log intensity between the two means where both components are equally likely."""
    grid = np.linspace(means.min(), means.max(), 512)
    density = weights * np.exp(-0.5 * (grid[:, None] - means) ** 2 / variances)
    density /= np.sqrt(variances)
    upper = int(np.argmax(means))
    return float(grid[np.argmax(density[:, upper] >= density[:, 1 - upper])])


def _frame_columns(
    frame: np.ndarray,
    spacing: float,
    dark: bool,
    threshold: float,
    rounds: int,
    modality: str,
    network: tuple[Segmentor, tuple[np.ndarray, np.ndarray] | None] | None = None,
    guide: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    sites: bool = True,
    cell: Cell | None = None,
    precise: bool = False,
    noise: float | None = None,
) -> pd.DataFrame:
    """The columns of one frame (``flat``: its columns-bright background-free image when the
    spacing estimate already made it, ``noise`` its :func:`noise_sigma` when known; ``cell``:
    the image's averaged unit cell, for the site search; ``precise``: every HAADF column
    fitted again in a wider window at the end, :func:`~atomlens.locate.revise.polished`)."""
    signed = -frame if dark else frame
    if flat is None:
        flat, noise = subtract_background(signed, spacing), None
    # candidates come from the guide (an enhanced or restored image) when there is one; the
    # fit always runs on the frame's own counts
    found = flat if guide is None else subtract_background(-guide if dark else guide, spacing)
    heavy = None
    if network is None:
        peaks = _find_peaks(found, spacing, threshold, noise if guide is None else None)
    else:
        peaks, heavy, _ = network[0].candidates(found, spacing, network[1])
    if guide is not None:
        keep = _confirmed(peaks, flat, spacing, GUIDE_CONFIRMATION * threshold)
        peaks, heavy = peaks[keep], None if heavy is None else heavy[keep]
    # joint fits of strongly overlapping columns need blob-like columns: on the tuning scenes
    # they made HRTEM positions worse (fringes), ABF ones better and worse by turns
    joint = modality == "haadf"
    floor = width_floor(cell, spacing)
    table = drop_duplicates(fitted(flat, peaks, spacing, rounds, joint=joint, floor=floor),
                            spacing / 3.0)  # fmt: skip
    # the later refits fit a few columns each: whether the columns come in close pairs is
    # judged once, on all of them (a subset near new sites is biased towards close pairs)
    joint = joint and len(table) > 1 and in_pairs(table[["y", "x"]].to_numpy(),
                                                  typical_width(table))  # fmt: skip
    if modality == "haadf":  # ABF and HRTEM columns vary in shape (lost F1 there)
        table = mended(flat, table, spacing, rounds, joint=joint, floor=floor)
    if sites:
        table = pruned(flat, table, spacing, rounds, joint=joint, floor=floor)
        table = with_sites(flat, table, spacing, rounds, len(peaks), cell, joint=joint,
                           floor=floor)  # fmt: skip
        if heavy is not None:
            heavy = _heavy_like(table, heavy, len(peaks))
    if precise and modality == "haadf":
        table = polished(flat, table, spacing, joint=joint, floor=floor)
    table = table.drop(columns="sigma_amplitude")
    rows = np.clip(np.rint(table["y"].to_numpy()).astype(int), 0, frame.shape[0] - 1)
    cols = np.clip(np.rint(table["x"].to_numpy()).astype(int), 0, frame.shape[1] - 1)
    background = (signed - flat)[rows, cols] + table["background"].to_numpy()
    table["background"] = -background if dark else background
    if heavy is None:
        table["class"] = _classes(table["intensity"].to_numpy(), modality)
    else:
        table["class"] = _network_classes(heavy[table.index.to_numpy()], modality)
    return table.reset_index(drop=True)


def _heavy_like(table: pd.DataFrame, heavy: np.ndarray, first: int) -> np.ndarray:
    """The network's heavy flags of candidates 0 .. ``first`` - 1, extended to the columns
    found at lattice sites (indices ``first`` on): heavy when the intensity is nearer (in log)
    to the median of the heavy columns than to that of the light ones."""
    size = max(first, int(table.index.max()) + 1) if len(table) else first
    flags = np.zeros(size, dtype=bool)
    flags[:first] = heavy
    found, added = table[table.index < first], table[table.index >= first]
    classes = heavy[found.index.to_numpy()]
    if classes.any() and not classes.all():
        log_intensity = np.log(np.maximum(found["intensity"].to_numpy(), 1e-300))
        middle = 0.5 * (np.median(log_intensity[classes]) + np.median(log_intensity[~classes]))
        flags[added.index.to_numpy()] = np.log(added["intensity"].to_numpy()) > middle
    else:
        flags[added.index.to_numpy()] = bool(len(classes)) and bool(classes.all())
    return flags


def _network_classes(heavy: np.ndarray, modality: str) -> np.ndarray:
    """``heavy``/``light`` (``strong``/``weak``) from the network's heavy map when both occur,
    else ``column``."""
    if heavy.all() or not heavy.any():
        return np.full(len(heavy), "column", dtype=object)
    names = ("heavy", "light") if modality == "haadf" else ("strong", "weak")
    return np.where(heavy, names[0], names[1]).astype(object)


#: Largest interquartile range of a trial detection's nearest-neighbour distances, in medians
#: (HAADF and HRTEM).
SPREAD = 0.3


def _columns_dark(image: np.ndarray, modality: str, spacing: float) -> bool:
    """Whether the columns are darker than their surroundings: always in ABF, never in HAADF,
    in HRTEM as the image says (``spacing`` [px])."""
    return modality == "abf" or (modality == "hrtem" and columns_are_dark(image, spacing))


#: Modalities whose averaged cell's close pairs are fitted (:data:`CLOSE_PAIRS`): incoherent
#: images, whose columns are round peaks. (HRTEM's are not: fitted in every cell, on the scenes
#: of the reported evaluation the U-Net lost all of Au [001] at 1000 and 5000 e-/column.)
CELL_FITTED = ("haadf", "abf")
#: The averaged cell's columns are where a Gaussian each fits them
#: (:func:`~atomlens.locate.motif.fitted_columns`), not at its maxima, when the fitted ones lie
#: closer than this [shortest cell vectors]: dumbbells (Si [110]: 0.41), whose blurred maxima
#: are closer still (0.34 in the real Si [110] image, under the 0.38 a spacing must reach, so
#: one column a dumbbell was found; 0.36 on a simulated one at 0.1 Å/px, where noise between
#: the too-close maxima passed as columns). Honeycombs (0.58) keep their maxima: their fitted
#: spacing is nearer the truth too (hBN, `evaluate_events.py` series 1: 13.3 px for 14.0, the
#: maxima 10.9), but locate's detection is tuned to the maxima's, and with the fitted spacing
#: in every cell that benchmark's move precision fell from 0.69 to 0.62 and the tracking MOTA
#: from 0.804 to 0.799.
CLOSE_PAIRS = 0.5
#: Frames of a stack whose averaged unit cells are registered and averaged (evenly spaced).
CELL_FRAMES = 5


def _cell_frame_indices(frames: int) -> np.ndarray:
    """The :data:`CELL_FRAMES` frames (evenly spaced) whose cells are averaged."""
    return np.unique(np.linspace(0, frames - 1, CELL_FRAMES).astype(int))


def _image_cell(
    flat: np.ndarray,
    stack: np.ndarray | None,
    vectors: np.ndarray,
    estimate: float,
    dark: bool,
    modality: str,
    noise: float | None = None,
) -> Cell | None:
    """The averaged unit cell (:mod:`atomlens.locate.motif`) of a background-free image (its
    :func:`noise_sigma` ``noise`` when known), or of
    :data:`CELL_FRAMES` frames of ``stack`` (their own cells registered: the specimen drifts
    through a series and blurs its mean frame); None without two cell vectors. In
    :data:`CELL_FITTED` modalities close pairs are fitted (:data:`CLOSE_PAIRS`)."""
    if len(vectors) != 2:
        return None
    if stack is None:
        average, cells = motif(flat, vectors)
        noise = noise_sigma(flat) if noise is None else noise
    else:
        chosen = stack[_cell_frame_indices(len(stack))]
        flats = [subtract_background(-frame if dark else frame, estimate) for frame in chosen]
        average, cells = stacked_motif(flats, vectors)
        noise = noise_sigma(chosen[0])
    width = math.nan
    if modality not in CELL_FITTED:
        columns = motif_columns(average, cells, vectors, noise)
    else:
        columns, placed, widths = fitted_motif_columns(average, cells, vectors, noise)
        if len(widths) and np.isfinite(widths).all():
            width = float(widths.min())
            if len(placed) > 1 and column_spacing(placed, vectors) < CLOSE_PAIRS * float(
                np.hypot(*vectors.T).min()
            ):
                columns = placed
    return Cell(vectors, columns, width) if len(columns) else None


def _nearest_columns(
    image: np.ndarray,
    estimate: float,
    vectors: np.ndarray,
    modality: str,
    threshold: float,
    backgrounds: dict | None = None,
    stack: np.ndarray | None = None,
    least: float = MIN_SPACING_PX,
) -> tuple[float, str, Cell | None]:
    """The column spacing [px], where it came from, and the image's averaged unit cell
    (``least``: the shortest spacing that counts [px]).

    The autocorrelation's spacing ``estimate`` is the lattice constant of a honeycomb whose
    shorter column-to-column vectors the probe blurs into its central peak, and of a cell with
    weak columns between strong ones (S beside Mo) or close pairs (Si dumbbells). Two checks
    see the shorter distance: the averaged unit cell (``vectors``, :func:`_image_cell`)
    showing more than one column, whose shortest distance is then the spacing; else a trial
    detection allowed to find columns half a spacing apart. ``backgrounds`` (when given)
    keeps the background-free image and its noise under ``dark``, for the fit to reuse.
    """
    dark = _columns_dark(image, modality, estimate)
    signed = -image if dark else image
    flat = subtract_background(signed, estimate)
    # once: the averaged cell, the trial detection and the fit each needed it (0.06 s each)
    noise = noise_sigma(flat)
    if backgrounds is not None:
        backgrounds[dark] = flat, noise
    cell = _image_cell(flat, stack, vectors, estimate, dark, modality, noise)
    if cell is not None and len(cell.columns) > 1:
        nearest = column_spacing(cell.columns, cell.vectors)
        if max(0.38 * estimate, least) <= nearest < 0.85 * estimate:
            return nearest, CELL_SOURCE, cell
    peaks = _find_peaks(flat, estimate / 2, threshold, noise)
    if len(peaks) >= 3:
        distances = spatial.cKDTree(peaks).query(peaks, k=2)[0][:, 1]
        low, nearest, high = (float(v) for v in np.percentile(distances, [25, 50, 75]))
        # honeycombs give 0.58, Si [110] dumbbells 0.42; much shorter means the trial found
        # noise, and so do scattered distances (a sublattice's are within about +-10 %; noise
        # maxima between GaN columns 9 px apart at 0.2 Å/px spread over 1.5 x their median).
        # Not in ABF: there the trial sees light columns at several distances from the heavy
        # ones (the real SrTiO3 ABF image: 0.54, and its spacing is the trial's)
        agree = modality == "abf" or high - low < SPREAD * nearest
        if max(0.38 * estimate, least) <= nearest < 0.85 * estimate and agree:
            return nearest, "nearest-neighbour distance of the columns found", cell
    return estimate, "estimated from the autocorrelation", cell


def _spacing_px(
    array: np.ndarray,
    pixel_size: float | None,
    spacing: float | None,
    modality: str,
    threshold: float,
    backgrounds: dict | None = None,
    with_cell: bool = False,
    stack: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> tuple[float, str, Cell | None]:
    """The column spacing [px], where it came from, and (when estimated, or ``with_cell``)
    the image's averaged unit cell (``backgrounds``: see :func:`_nearest_columns`; ``stack``:
    frames for the cell, by default ``array``'s when it is a stack; ``reference``: the image
    the spacing is estimated on, by default ``array`` or a stack's :func:`aligned_mean`)."""
    if reference is None:
        reference = aligned_mean(array) if array.ndim == 3 else array
    if stack is None and array.ndim == 3:
        stack = array
    if spacing is not None:
        spacing = check_parameter("spacing", spacing, kind="pixel_size")
        if pixel_size is None:
            raise ValueError(
                "spacing=... is in Å and needs pixel_size=... [Å/px]; without a pixel size the "
                "spacing is estimated from the image."
            )
        cell = None
        if with_cell:
            estimate, vectors = estimate_cell(reference)
            if math.isfinite(estimate):
                dark = _columns_dark(reference, modality, estimate)
                flat = subtract_background(-reference if dark else reference, estimate)
                cell = _image_cell(flat, stack, vectors, estimate, dark, modality)
        return spacing / pixel_size, "given", cell
    # no two columns of a crystal are closer in projection than MIN_SPACING_A: at a few tens
    # of counts per column the autocorrelation's noise maxima near its centre would pass for
    # columns 3-7 px apart (0.3-0.7 Å at 0.1 Å/px), and locate found 3-12 x too many columns
    least = (
        MIN_SPACING_PX if pixel_size is None else max(MIN_SPACING_PX, MIN_SPACING_A / pixel_size)
    )
    estimate, vectors = estimate_cell(reference, min_spacing=least)
    if math.isfinite(estimate):
        return _nearest_columns(
            reference, estimate, vectors, modality, threshold, backgrounds, stack, least
        )
    if pixel_size is None:
        raise InputError(
            "The image shows no periodic column arrangement to estimate the column spacing "
            "from (vacuum, amorphous film or isolated atoms): give pixel_size=... [Å/px] and "
            "spacing=... [Å]."
        )
    return (
        FALLBACK_SPACING / pixel_size,
        f"assumed {FALLBACK_SPACING} Å (no periodicity found)",
        None,
    )


def locate(
    image: np.ndarray,
    pixel_size: float | None = None,
    modality: str = "haadf",
    method: str = "classical",
    *,
    spacing: float | None = None,
    threshold: float = 4.0,
    rounds: int = 3,
    progress: bool = False,
    model: str | Path | None = None,
    structure: Any = None,
    zone_axis: Sequence[int] | None = None,
    scheduler: str | Any = None,
    workers: int | None = None,
    guide: np.ndarray | None = None,
    site_search: bool | None = None,
    precise: bool = False,
) -> pd.DataFrame:
    """Every atomic column of an image (or of each frame of a stack).

    Parameters
    ----------
    image : ndarray (rows, cols) or (frames, rows, cols)
        Raw counts or intensities, any offset and background; never modified.
    pixel_size : float, optional
        [Å/px]. Without it the table has positions in pixels only (``y_A``, ``x_A`` NaN) and the
        column spacing is estimated from the image (a warning says so).
    modality : {"haadf", "abf", "hrtem"}
        HAADF columns are bright, ABF columns dark; HRTEM contrast is decided from the image.
    method : {"classical", "unet", "structure"}
        Smoothing, peak finding and Gaussian refinement; or the candidates of the U-Net
        segmentor, or of the structure-conditioned network (module docstring), refined the
        same way.
    spacing : float, optional
        The nearest-neighbour distance of the columns to find [Å] (needs ``pixel_size``);
        estimated from the image when not given.
    threshold : float
        Least prominence of a column, in noise standard deviations of the smoothed image
        (classical path; the networks' candidates need the model's ``level`` of probability,
        0.5 for the shipped models).
    rounds : int
        Refinement rounds (neighbours fitted together from the second).
    progress : bool
        A progress bar over frames.
    model : str or Path, optional
        The network's model name or folder; default ``locate-unet`` or ``locate-structure``.
    structure : str or ase.Atoms, optional
        The material for ``method="structure"``: a name of
        ``atomlens.physics.structures.materials.MATERIALS`` or a unit cell; None tells the
        network the structure is unknown. With a pixel size and no ``spacing``, the column
        spacing comes from it (the nearest-neighbour distance of the columns the modality
        shows).
    zone_axis : sequence of int, optional
        The zone axis the material is seen along (default [001]).
    scheduler : {"threads", "processes", "synchronous"} or str, optional
        For a stack: locate the frames in parallel on Dask (:mod:`atomlens.core.parallel`),
        on local threads or processes, or on the dask.distributed cluster at an address such
        as ``"tcp://127.0.0.1:8786"``. The table is the serial one, row for row. A stack may
        then be a dask array (``atomlens.core.parallel.open_stack``): it is read a block of
        frames at a time, twice (the mean frame for the spacing, then the columns), never
        whole. None (and no ``workers``): one frame after another in this process.
    workers : int, optional
        Local workers (threads or processes; default the CPU cores); alone it means
        ``scheduler="threads"``.
    guide : ndarray, optional
        An image of ``image``'s shape on which the candidate columns are found, such as
        ``atomlens.enhance(image)`` or ``atomlens.restore(image)``; a candidate is kept only
        where ``image``'s own counts support it (half of ``threshold``, and 15 % of the
        typical candidate's excess: :func:`_confirmed`), and the Gaussian
        fit, its positions, uncertainties and intensities come from those counts. Not with
        ``scheduler`` or ``workers``.
    site_search : bool, optional
        Use the lattice of the columns found (:mod:`atomlens.locate.sites`): look again at
        the empty sites they vote for, at a lower significance than the search of every pixel
        (a 1 % false discovery rate over the sites at their fixed positions, at least 1.5
        standard errors, always from 3), which finds weak columns and weak
        sublattices at a few tens of counts per column; and drop a column off the lattice
        right beside one on it unless it is 5 standard errors strong. Default: on for HAADF,
        where every bright spot is a column; off for ABF and HRTEM, whose contrast has maxima
        between the columns too (there it added false columns in
        ``benchmarks/evaluate_locate.py``).
    precise : bool
        HAADF: once the columns are found, fit every one again in a window that reaches 4
        of its widths from its centre (at most 1.8 spacings; the detection's window is one
        spacing) with its neighbours, 3 rounds
        (:func:`~atomlens.locate.revise.polished`). The same columns, position errors lower
        where columns are wide for their spacing (docs/locate.md: "Precise refinement"),
        for 1.2-2.7 x the time (256 to 1024 px images). Ignored, with a warning, for ABF
        and HRTEM.

    Returns
    -------
    DataFrame
        One row per column: (``frame`` for a stack,) ``y``, ``x`` [px], ``y_A``, ``x_A`` [Å],
        ``intensity`` (the fitted Gaussian's integral, image units x px^2; a dark column's
        depth), ``class``, ``sigma_y``, ``sigma_x`` (position standard errors [px]),
        ``width`` (Gaussian standard deviation [px]), ``background`` (image units). Its
        ``attrs`` hold ``pixel_size``, ``spacing_px``, ``spacing_source``, ``dark``,
        ``modality`` and ``method``. The names are trackpy's: ``trackpy.link(table, ...)``
        works on a stack's table.

    Raises
    ------
    InputError
        Not an image (NaN, constant, tiny, wrong dimensions); no periodicity and no pixel size.
    ValueError
        An unknown modality or method; a pixel size or spacing out of range; ``structure``
        or ``zone_axis`` without ``method="structure"``, or a structure that cannot be
        oriented along the zone axis; an unknown scheduler or ``workers`` < 1.

    Examples
    --------
    >>> y, x = np.mgrid[:64, :64] - 4.0  # columns at 4, 12, ..., 60 px
    >>> lattice = 10 + 100 * np.cos(np.pi * y / 8) ** 8 * np.cos(np.pi * x / 8) ** 8
    >>> columns = locate(np.random.default_rng(0).poisson(lattice), pixel_size=0.25)
    >>> len(columns), columns[["y", "x"]].min().round().tolist()
    (64, [4.0, 4.0])
    """
    modality = _check_choice("modality", modality, MODALITIES)
    method = _check_choice("method", method, METHODS)
    if pixel_size is not None:
        pixel_size = check_parameter("pixel_size", pixel_size)
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold=... must be a number of noise sigmas >= 0, got {threshold!r}.")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 10:
        raise ValueError(f"rounds=... must be an integer in [1, 10], got {rounds!r}.")
    if site_search is None:
        site_search = modality == "haadf"
    elif not isinstance(site_search, bool | np.bool_):
        raise ValueError(f"site_search=... must be True, False or None, got {site_search!r}.")
    site_search = bool(site_search)
    if not isinstance(precise, bool | np.bool_):
        raise ValueError(f"precise=... must be True or False, got {precise!r}.")
    precise = bool(precise)
    if precise and modality != "haadf":
        warnings.warn(
            f"precise=True refits HAADF columns only; ignored for modality={modality!r}.",
            stacklevel=2,
        )
    network = _network(method, model, structure, zone_axis)
    parallel = scheduler is not None or workers is not None
    if parallel:
        scheduler, workers = check_scheduler(scheduler, workers)
    lazy = parallel and is_lazy(image) and image.ndim == 3
    if guide is not None:
        if parallel:
            raise ValueError("guide=... works in one process: leave scheduler= and workers= out.")
        guide = check_locate_input(guide, "guide")
        if guide.shape != np.shape(image):
            raise ValueError(
                f"guide=... must have the image's shape {np.shape(image)}, got {guide.shape}."
            )
    # a lazy stack is checked and averaged block by block: its mean frame stands in for it
    array = aligned_mean(image, _checked_frame) if lazy else check_locate_input(image)
    # what is decided once for a stack is decided on its mean frame, registered (drift)
    reference = aligned_mean(array) if array.ndim == 3 else array
    # one image: the spacing estimate's background-free image is reused by the fit, also where
    # the spacing then comes from the averaged cell (a honeycomb's is 1.7 x shorter): the
    # background varies over several spacings either way, and making it and its noise again
    # at the shorter spacing cost 0.25 s of a 1024 px MoS2 image; on the HAADF tuning scenes
    # of benchmarks/evaluate_locate.py (--first 10 --count 2) mean F1 at 20 / 50 / 200
    # e-/column 0.866 / 0.988 / 0.998 -> 0.866 / 0.987 / 0.999, RMSE / CRB a little lower
    backgrounds: dict | None = {} if array.ndim == 2 else None
    # a lazy stack's cell comes from the same few frames as an array's, read one at a time
    chosen = None
    if lazy:
        chosen = np.stack([_checked_frame(np.asarray(image[int(i)]), int(i))
                           for i in _cell_frame_indices(len(image))])  # fmt: skip
    spacing_px, source, cell = _spacing_px(
        array, pixel_size, spacing, modality, threshold, backgrounds, site_search, chosen,
        reference,
    )  # fmt: skip
    if network is not None and spacing is None:
        from_structure = None
        if structure is not None and pixel_size is not None:
            from atomlens.locate.network import structure_spacing

            from_structure = structure_spacing(structure, zone_axis, modality) / pixel_size
        spacing_px, source = _network_spacing(
            reference, spacing_px, source, modality, network, from_structure
        )
    if pixel_size is None:
        warnings.warn(
            f"No pixel size: positions are in pixels only, and the columns are taken to be "
            f"{spacing_px:.1f} px apart ({source}).",
            stacklevel=2,
        )
    frames = array.reshape(-1, *array.shape[-2:])
    dark = _columns_dark(reference, modality, spacing_px)
    if lazy or (parallel and array.ndim == 3):
        settings = (spacing_px, dark, threshold, rounds, modality, network, pixel_size,
                    site_search, cell, threads_per_worker(scheduler, workers),
                    precise)  # fmt: skip
        blocks = map_blocks(
            _located_block,
            image if lazy else array,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
            desc="locate",
            settings=settings,
        )
        result = pd.concat(blocks, ignore_index=True)
    else:
        tables = []
        guides = None if guide is None else guide.reshape(frames.shape)
        for i, frame in enumerate(tqdm(frames, desc="locate", unit="frame", disable=not progress)):
            flat, noise = (backgrounds or {}).get(dark, (None, None))
            table = _frame_columns(
                frame, spacing_px, dark, threshold, rounds, modality, network,
                None if guides is None else guides[i], flat, site_search, cell, precise, noise,
            )  # fmt: skip
            if array.ndim == 3:
                table.insert(0, "frame", i)
            tables.append(table)
        result = _finished(pd.concat(tables, ignore_index=True), pixel_size)
    result.attrs.update(
        pixel_size=pixel_size,
        spacing_px=spacing_px,
        spacing_source=source,
        dark=dark,
        modality=modality,
        method=method,
        model=None if network is None else str(model or MODELS[method]),
        guided=guide is not None,
        site_search=site_search,
        precise=precise,
    )
    return result


def _finished(table: pd.DataFrame, pixel_size: float | None) -> pd.DataFrame:
    """Positions in Å added and the columns in order (``frame`` first when there)."""
    scale = math.nan if pixel_size is None else pixel_size
    table["y_A"], table["x_A"] = table["y"] * scale, table["x"] * scale
    return table[(["frame"] if "frame" in table else []) + list(COLUMNS)]


def _located_block(block: np.ndarray, start: int, settings: tuple) -> pd.DataFrame:
    """The finished table of frames ``start``, ``start + 1``, ... of a stack (one Dask task).

    ``settings``: spacing [px], dark, threshold, rounds, modality, network, pixel size
    [Å/px], whether to search lattice sites and the averaged unit cell, decided once from the
    whole stack, the threads of each fit (:func:`~atomlens.locate.threads.fit_threads`) and
    whether to refit precisely.
    """
    (spacing, dark, threshold, rounds, modality, network, pixel_size, site_search, cell, threads,
     precise) = settings  # fmt: skip
    tables = []
    # float64 as check_locate_input makes it (the frames were checked before the map)
    with fit_threads(threads):
        for i, frame in enumerate(np.asarray(block, dtype=np.float64)):
            table = _frame_columns(frame, spacing, dark, threshold, rounds, modality, network,
                                   sites=site_search, cell=cell, precise=precise)  # fmt: skip
            table.insert(0, "frame", start + i)
            tables.append(table)
    return _finished(pd.concat(tables, ignore_index=True), pixel_size)


def _checked_frame(frame: np.ndarray, index: int) -> np.ndarray:
    """One frame of a stack as float64, checked as locate checks a stack."""
    return check_locate_input(frame, name=f"frame {index} of the stack")


#: Where a spacing came from when the averaged unit cell gave it (its shortest column distance).
CELL_SOURCE = "shortest column distance of the averaged unit cell"
#: Modalities in which the network keeps a spacing the averaged unit cell gave
#: (:func:`_network_spacing`).
CELL_TRUSTED = ("haadf", "abf")
#: Steps of the search for the spacing at which the network is most confident.
SPACING_STEP = math.sqrt(2.0)
SPACING_MOVES = 4


def _network_spacing(
    reference: np.ndarray,
    spacing: float,
    source: str,
    modality: str,
    network: tuple[Segmentor, tuple[np.ndarray, np.ndarray] | None],
    from_structure: float | None = None,
) -> tuple[float, str]:
    """The estimated spacing [px] checked by the network.

    At low dose noise can make the estimate wrong by a large factor (noise maxima found at half
    the spacing, a weak autocorrelation peak). A network shown the image at the right scale
    marks its columns with the highest confidence (mean probability at the candidates), so the
    spacing moves by factors of sqrt(2) while that rises (at most :data:`SPACING_MOVES` times);
    then the median nearest-neighbour distance of the columns the network marks there becomes
    the spacing.

    ``from_structure`` [px], the spacing of the columns the structure shows at the given pixel
    size, replaces the estimate and the moves (:func:`_structure_start`).

    In HAADF and ABF (:data:`CELL_TRUSTED`) a spacing the averaged unit cell gave
    (:data:`CELL_SOURCE`) is not moved (only the last step applies): the cell shows the
    columns themselves, and the network's confidence is nearly flat there. On the real SrTiO3
    ABF image (0.865 at 13.1 px, 0.872 at 18.5 px) the moves took the right 13.1 px to 20.2 px
    and lost the O columns; on the tuning scenes of ``benchmarks/evaluate_locate.py`` (index
    1, 5 materials x 5 doses) they took 2 of the 12 HAADF and ABF spacings from the cell away
    from the truth (Si [110] at 20 e-/column: 6.9 -> 15.6 px for 6.8) and brought none
    nearer. In HRTEM, where a maximum of the cell need not be a column, they brought 3 nearer
    and 4 away, and still run.
    """
    moves = 0 if modality in CELL_TRUSTED and source == CELL_SOURCE else SPACING_MOVES
    seen: dict[float, tuple[np.ndarray, float]] = {}

    def look(value: float) -> tuple[np.ndarray, float]:
        key = round(value, 6)
        if key not in seen:
            dark = _columns_dark(reference, modality, value)
            flat = subtract_background(-reference if dark else reference, value)
            peaks, _, confidence = network[0].candidates(flat, value, network[1])
            seen[key] = (peaks, confidence if len(peaks) >= 8 else 0.0)
        return seen[key]

    limits = (MIN_SPACING_PX, min(reference.shape) / 3)
    start, origin = spacing, source
    if from_structure is not None and not limits[0] <= from_structure <= limits[1]:
        from_structure = None
    if from_structure is not None:  # exact: kept as it is (the noisier refinement below is not)
        start, origin = _structure_start(look, from_structure, limits)
        spacing = start
    else:
        for _ in range(moves):
            options = [v for v in (spacing / SPACING_STEP, spacing, spacing * SPACING_STEP)
                       if limits[0] <= v <= limits[1] or v == spacing]  # fmt: skip
            best = max(options, key=lambda value: look(value)[1])
            if best == spacing:
                break
            spacing = best
    peaks, _ = look(spacing)
    if len(peaks) >= 8 and from_structure is None:  # the spacing of the columns found
        spacing = float(np.median(spatial.cKDTree(peaks).query(peaks, k=2)[0][:, 1]))
    if abs(spacing / start - 1) > 1e-6:
        origin = f"{origin}, corrected by the network ({start:.1f} px before)"
    return spacing, origin


#: How many times as many columns the network must mark at the structure's spacing over sqrt 2
#: (and with more confidence) for the image to count as showing more columns than the
#: structure's rule (a low-angle ADF image of SrTiO3: 1.9 times, with the O columns).
DENSER = 1.5


def _structure_start(
    look: Callable[[float], tuple[np.ndarray, float]],
    from_structure: float,
    limits: tuple[float, float],
) -> tuple[float, str]:
    """The spacing [px] to start from when the structure gives one, and where it came from.

    The structure's rule for the columns a modality shows (HAADF: summed Z at least a quarter of
    the heaviest's) can leave out columns an image shows: a low-angle ADF or an ABF image of
    SrTiO3 shows the O columns too, sqrt 2 closer. Shown the image at the structure's spacing
    over sqrt 2, the network then marks :data:`DENSER` times as many columns, more confidently,
    and that spacing is taken; otherwise the structure's. (Moving by confidence alone, as for an
    estimated spacing, moves a right structure spacing at low dose.)
    """
    denser = from_structure / SPACING_STEP
    if denser >= limits[0]:
        (many, more_sure), (few, sure) = look(denser), look(from_structure)
        if len(many) >= DENSER * max(len(few), 1) and more_sure > sure:
            return denser, (
                f"{denser:.1f} px: the network marks {len(many)} columns there against "
                f"{len(few)} at the structure's {from_structure:.1f} px (the image shows more "
                "columns than the structure's rule)"
            )
    return from_structure, f"from the structure ({from_structure:.1f} px)"


def _network(
    method: str, model: str | Path | None, structure: Any, zone_axis: Sequence[int] | None
) -> tuple[Segmentor, tuple[np.ndarray, np.ndarray] | None] | None:
    """The segmentor and structure tokens of a network method (None for the classical path)."""
    if method != "structure" and (structure is not None or zone_axis is not None):
        raise ValueError(
            "structure=... and zone_axis=... condition the structure-conditioned network: "
            f"pass method='structure' (got method={method!r})."
        )
    if method == "classical":
        if model is not None:
            raise ValueError("model=... names a network: pass method='unet' or 'structure'.")
        return None
    segmentor = load_segmentor(model or MODELS[method])
    if segmentor.conditioned != (method == "structure"):
        kind = "a structure-conditioned" if segmentor.conditioned else "an unconditioned U-Net"
        raise ValueError(
            f"model={str(model)!r} is {kind} network; method={method!r} needs "
            f"{'the other kind' if model else 'its own model'} (method='unet' takes a U-Net, "
            "method='structure' a conditioned one)."
        )
    if not segmentor.conditioned:
        return segmentor, None
    from atomlens.locate.network import structure_tokens

    if zone_axis is not None and structure is None:
        raise ValueError("zone_axis=... needs structure=... (the material seen along it).")
    try:
        tokens = structure_tokens(structure, zone_axis)
    except (KeyError, ValueError, TypeError, OSError) as error:
        raise ValueError(
            f"structure={structure!r} along zone_axis={zone_axis!r} gives no unit cell: {error}"
        ) from None
    return segmentor, tokens
