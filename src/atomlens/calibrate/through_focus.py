"""C10 and C12 from a through-focus series of Ronchigrams, each image an in-line hologram.

The patch-shift measurement (:mod:`atomlens.calibrate.multi`) compares images by their geometric
shadows, which holds between probe-shifted images but not across tens of nm of defocus: there
the fine detail changes (Fresnel) instead of being magnified. This measurement models both
(:mod:`atomlens.calibrate.hologram`): for trial aberrations it finds the one weak-phase specimen
that best explains every image at its known offset and probe position, and the aberrations are
those that leave the least contrast unexplained. A coarse scan of C10 about the start and about
its mirror (the offsets fix the sign), then a compass search over C10, C12a and C12b; a refit
from there with the images near focus weighted down (or left out); and, where asked, a second
search over every fitted term (C21, C23, C30 too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atomlens.calibrate.hologram import (
    HologramOptions,
    HologramSeries,
    principal_defocus,
    relative_contrast,
)
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.symmetry import COEFFICIENTS, check_terms
from atomlens.core.energy import wavelength

if TYPE_CHECKING:
    from atomlens.calibrate.estimate import OffsetLike, RonchigramLike

__all__ = ["HologramFit", "HologramOptions", "fit_holograms", "measure_holograms"]

#: The terms the fit measures by default (the others keep the start's values).
QUADRATIC: tuple[str, ...] = ("C10", "C12a", "C12b")
#: Search and curvature steps of each Cartesian coefficient relative to C10's (order of
#: :data:`~atomlens.calibrate.symmetry.COEFFICIENTS`). A term of order n moves the shadow by
#: about alpha^n per Å: at the used 25 mrad, C21 and C23 about 40 times and C30 about 1500 times
#: less than C10. These scales make one step move the shadow by similar amounts (they are also
#: near the ratios of the pi / 4 tolerances, 1 : 50 : 2200).
STEP_SCALE = np.array([1.0, 1.0, 1.0, 30.0, 30.0, 30.0, 30.0, 1000.0])
#: Central-difference step of the misfit's curvature [Å of C10; times STEP_SCALE].
_CURVATURE_STEP = 8.0
#: Model error added in quadrature to the fit's sigma of C10, C12a and C12b [Å] (times
#: STEP_SCALE for C21, C23 and C30): the fit's own sigma (0.3-1 Å on the abTEM cases of
#: benchmarks/calibrate_multi.py) covers only the noise, while the single-plane weak-phase model
#: misses the specimen's depth and nonlinearity. Set from a prototype on 12 tuning cases (seed
#: 940000); on the reported cases the RMS C10 error is 1.8 nm from a triple and 0.56 nm with two
#: two-fold offsets (docs/calibrate.md).
MODEL_ERROR = 10.0
#: Fewest images the fit keeps when it leaves out those near focus
#: (:attr:`HologramOptions.near_focus`): a pair fitted alone strays to side minima.
MIN_KEPT = 3


@dataclass(frozen=True)
class HologramFit:
    """The through-focus fit: the aberrations [Å] at offset zero and the misfit.

    Attributes
    ----------
    values, sigma : ndarray of shape (8,)
        Cartesian values of the specimen's mid-plane and their standard deviations [Å]
        (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`; terms not fitted: the start's
        values and sigma NaN).
    unexplained : float
        Share of the contrast the best specimen leaves unexplained (noise included).
    mirror_unexplained : float
        The same at the best state of the other sign's search (the start's or its mirror's).
    trials : int
        Model evaluations.
    kept : ndarray of bool, shape (N,)
        The images of the final fit (:attr:`HologramOptions.near_focus` leaves out those near
        focus).
    """

    values: np.ndarray
    sigma: np.ndarray
    unexplained: float
    mirror_unexplained: float
    trials: int
    kept: np.ndarray


def _compass(
    misfit, start: np.ndarray, step: float, tolerance: float, axes: np.ndarray
) -> tuple[np.ndarray, float]:
    """Compass search: try +-step (times :data:`STEP_SCALE`) on each of ``axes``, move on any
    improvement, halve the step when none.

    Robust to the small trial-to-trial wobble of the iterative specimen solve, which defeats
    simplex and gradient methods here.
    """
    best, value = start.copy(), misfit(start)
    while step >= tolerance:
        moved = False
        for axis in axes:
            for sign in (1.0, -1.0):
                trial = best.copy()
                trial[axis] += sign * step * STEP_SCALE[axis]
                trial_value = misfit(trial)
                if trial_value < value:
                    best, value, moved = trial, trial_value, True
                    break
        if not moved:
            step /= 2
    return best, value


def _sigma(
    series: HologramSeries, full: np.ndarray, value: float, smooth: float, axes: np.ndarray
) -> np.ndarray:
    """Standard deviations [Å] of the terms ``axes`` from the misfit's curvature along each.

    With N used pixels and the residual variance value * total / N per pixel (smoothing by
    ``smooth`` px correlates about 4 pi smooth^2 neighbours), chi^2 = N f / (value c), so the
    variance is 2 value c / N over the misfit f's second derivative (central differences of
    :data:`_CURVATURE_STEP` times :data:`STEP_SCALE`; correlations between the terms are left
    out). Where the misfit does not curve up, the step itself.
    """
    phase = series.specimen
    steps = _CURVATURE_STEP * STEP_SCALE[axes]
    curvature = np.zeros(len(axes))
    for index, (axis, h) in enumerate(zip(axes, steps, strict=True)):
        sides = []
        for sign in (1.0, -1.0):
            series.specimen = phase  # the same warm start for both sides
            sides.append(series.unexplained(full + np.eye(8)[axis] * sign * h))
        curvature[index] = (sides[0] - 2 * value + sides[1]) / h**2
    series.specimen = phase
    count = sum(len(c) for c in series.contrasts)
    scale = 2 * value * max(1.0, 4 * np.pi * smooth**2) / count
    curved = curvature > 0
    return np.where(curved, np.sqrt(scale / np.where(curved, curvature, 1.0)), steps)


def _principal_defocus(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each image's smaller principal defocus |C10 + offset +- |C12|| [Å] at ``values``."""
    return np.array([principal_defocus(values + offset) for offset in offsets])


def _away_from_focus(values: np.ndarray, offsets: np.ndarray, near: float) -> np.ndarray:
    """Which images (bool, shape (N,)) have a smaller principal defocus of at least ``near``
    [Å] at ``values``; at least the :data:`MIN_KEPT` farthest from focus."""
    defocus = _principal_defocus(values, offsets)
    kept = defocus >= near
    if kept.sum() < MIN_KEPT:
        kept[np.argsort(defocus, kind="stable")[-MIN_KEPT:]] = True
    return kept


def _focus_weights(values: np.ndarray, offsets: np.ndarray, scale: float) -> np.ndarray:
    """Each image's weight d^2 / (d^2 + scale^2) for its smaller principal defocus d [Å] at
    ``values``, relative to the largest (all 1 for ``scale`` 0 or every image in focus)."""
    if not scale:
        return np.ones(len(offsets))
    square = _principal_defocus(values, offsets) ** 2
    weights = square / (square + scale**2)
    peak = weights.max()
    return weights / peak if peak > 0 else np.ones(len(offsets))


def _fitted_axes(fit: Sequence[str]) -> np.ndarray:
    """Indices into :data:`~atomlens.calibrate.symmetry.COEFFICIENTS` of the terms ``fit``,
    which must include C10, C12a and C12b."""
    fit = check_terms(fit)
    if not set(QUADRATIC) <= set(fit):
        raise ValueError(f"The hologram fit always measures {QUADRATIC}; got fit={tuple(fit)}.")
    return np.array(sorted(COEFFICIENTS.index(name) for name in set(fit)))


def fit_holograms(
    images: Sequence[np.ndarray],
    offsets: np.ndarray,
    shifts: np.ndarray,
    *,
    start: np.ndarray,
    centre: np.ndarray,
    angular_sampling: float,
    semiangle: float,
    wavelength: float,
    options: HologramOptions | None = None,
    fit: Sequence[str] = QUADRATIC,
) -> HologramFit:
    """Fit C10, C12a, C12b (and the other terms in ``fit``) of the specimen's mid-plane to a
    series (the others stay at ``start``).

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W)
        Ronchigrams of one specimen on one detector [counts].
    offsets : ndarray of shape (N, 8)
        Cartesian offsets of each image [Å].
    shifts : ndarray of shape (N, 2)
        Probe position (y, x) of each image [Å].
    start : ndarray of shape (8,)
        Starting Cartesian values at offset zero, mid-plane [Å].
    centre : ndarray of shape (2,)
        Optical axis (row, column) [px].
    angular_sampling : float
        [mrad / px].
    semiangle : float
        [mrad].
    wavelength : float
        [Å].
    options : HologramOptions, optional
    fit : sequence of str
        The Cartesian terms fitted (C10, C12a and C12b always): beyond those, a second
        compass search over all of them follows the first.

    Returns
    -------
    HologramFit
    """
    axes = _fitted_axes(fit)
    options = options or HologramOptions()
    rows, cols = np.indices(images[0].shape)
    alpha = np.stack([rows - centre[0], cols - centre[1]], axis=-1) * angular_sampling * 1e-3
    used = np.hypot(alpha[..., 0], alpha[..., 1]) <= options.share * semiangle * 1e-3
    contrasts = [relative_contrast(np.asarray(image, dtype=float), centre, angular_sampling,
                                   semiangle, options)[used] for image in images]  # fmt: skip
    series = HologramSeries(contrasts, alpha[used], offsets, shifts, wavelength, angular_sampling,
                            options)  # fmt: skip
    start = np.asarray(start, dtype=float)
    trials = 0

    def misfit(values: np.ndarray) -> float:
        nonlocal trials
        trials += 1
        return series.unexplained(values)

    scan = np.arange(-options.scan, options.scan + options.scan_step / 2, options.scan_step)
    c10, quadratic = np.eye(8)[0], np.arange(3)

    def scanned(centre: np.ndarray) -> np.ndarray:
        """The state of least misfit on the C10 scan about ``centre``."""
        series.fix_grid(centre + c10 * np.copysign(options.scan, centre[0]))  # the largest |C10|
        values = [misfit(centre + c10 * change) for change in scan]
        return centre + c10 * scan[int(np.argmin(values))]

    def descend(begin: np.ndarray) -> tuple[np.ndarray, float]:
        """Compass search from ``begin``; again from a better C10 on a scan about its result."""
        series.fix_grid(begin)
        best, value = _compass(misfit, begin, options.step, options.tolerance, quadratic)
        for _ in range(options.rescans):
            other = scanned(best)
            if other[0] == best[0]:  # no better C10 at this C12
                break
            series.fix_grid(other)
            trial, trial_value = _compass(misfit, other, options.step, options.tolerance,
                                          quadratic)  # fmt: skip
            if trial_value >= value:
                break
            best, value = trial, trial_value
        return best, value

    found = [descend(scanned(np.concatenate([sign * start[:3], start[3:]])))
             for sign in (1.0, -1.0)]  # about the start, then about its mirror  # fmt: skip
    (best, value), (_, mirror_value) = sorted(found, key=lambda item: item[1])
    kept = _away_from_focus(best, offsets, options.near_focus)
    weights = _focus_weights(best, offsets[kept], options.focus_weight)
    if not kept.all() or options.focus_weight:  # again, near-focus images down or out
        series = HologramSeries([c for c, k in zip(contrasts, kept, strict=True) if k],
                                alpha[used], offsets[kept], shifts[kept], wavelength,
                                angular_sampling, options, weights=weights)  # fmt: skip
        series.fix_grid(best)
        best, value = _compass(misfit, best, options.step, options.tolerance, quadratic)
    series.fix_grid(best)
    if len(axes) > 3:  # then every fitted term, from the best quadratic state
        best, value = _compass(misfit, best, options.step, options.tolerance, axes)
        series.fix_grid(best)
    for _ in range(3):  # the specimen solved well at the best state: the sides start from it
        value = misfit(best)
    sigma = np.full(8, np.nan)
    sigma[axes] = _sigma(series, best, value, options.smooth, axes)
    return HologramFit(best, sigma, value, mirror_value, trials, kept)


def measure_holograms(
    ronchigrams: Sequence[RonchigramLike],
    *,
    offsets: Sequence[OffsetLike],
    probe_shifts: Sequence[Sequence[float]] | None = None,
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
    initial: object = None,
    model: str = "ronchigram-aberrations",
    thickness: float = 0.0,
    options: HologramOptions | None = None,
    fit: Sequence[str] = QUADRATIC,
) -> AberrationEstimate:
    """Measure C10 and C12 (and where asked C21, C23, C30) from Ronchigrams of one specimen at
    known defocus (and two-fold) offsets, e.g. a through-focus triple, by the in-line-hologram
    model.

    Parameters
    ----------
    ronchigrams : sequence of path, array or ImageData
        Two or more Ronchigrams of the same specimen area on one detector.
    offsets : sequence
        One per Ronchigram, as for :func:`~atomlens.calibrate.estimate`: a C10 change [Å]
        (abTEM's C10 = -defocus), a mapping of coefficient changes (e.g. ``{"C12a": 100}``) or
        Aberrations. The result is for offset zero.
    probe_shifts : sequence of (dy, dx), optional
        Probe position of each Ronchigram in the specimen plane [Å]; (0, 0) by default.
    energy, semiangle, angular_sampling : float, optional
        [eV], [mrad], [mrad / px]; read from the files when absent.
    initial : Aberrations, mapping or ndarray of shape (8,), optional
        Starting estimate [Å]; by default the network's combined estimate of the same images.
        The terms not fitted keep its values and sigmas.
    model : str
        The network for the starting estimate.
    thickness : float
        Specimen thickness [Å]: the fit sees the C10 of the specimen's mid-plane, which is
        referred to the entrance surface (where simulators put the probe's C10) as
        C10 - thickness / 2. 0 reports the mid-plane's C10.
    options : HologramOptions, optional
    fit : sequence of str
        The Cartesian terms measured (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`),
        always including C10, C12a and C12b. The higher orders move the shadow by a fraction
        of an Å (C30 = 1 µm: 0.16 Å at 25 mrad), so fit them from series with two-fold offsets
        or probe shifts too; a through-focus triple alone pins them poorly. On abTEM series of
        seven, C30 came within 0.5 µm in 90 % of the cases, C21 only to 12 nm MAE, worse than
        the network's start (docs/calibrate.md).

    Returns
    -------
    AberrationEstimate
        The fitted terms with sigmas (the misfit's curvature and :data:`MODEL_ERROR`, times
        :data:`STEP_SCALE`, in quadrature), the others from the start.

    Raises
    ------
    ValueError
        Offsets or probe shifts not one per image or in the wrong units (offsets and shifts
        are in Å), a series without any change, shadows too wide for the specimen grid
        (:data:`~atomlens.calibrate.hologram.MAX_GRID`: defocus of several hundred nm), unknown
        coefficient names in ``fit`` or one without C10, C12a and C12b.
    InputError
        NaN or otherwise unusable images, the same data twice.

    Notes
    -----
    Unlike :func:`~atomlens.calibrate.measure`, this fit does not tell images of different
    specimen areas from one: a common specimen explains unrelated images about as well (each
    image's outer shadow is seen by no other), so check the series with ``measure`` or by eye.
    A specimen more than a few nm thick, or a principal defocus (C10 +- |C12|) of a few nm in
    one image, breaks the single-plane model: errors of 1-5 nm from a triple. The refit with
    near-focus images weighted down (:attr:`HologramOptions.focus_weight`) reduces them; two
    two-fold offsets added remove most of them (docs/calibrate.md).

    Examples
    --------
    A through-focus triple of one 10 Å carbon specimen (the atomlens simulator, C10 = -30 nm,
    C12 = 8 nm at 22.9 degrees):

    >>> from atomlens.physics import (Aberrations, AmorphousSpecimen, RonchigramSetup,
    ...                               simulate_ronchigram)
    >>> setup = RonchigramSetup(energy=200e3, semiangle=30, angular_sampling=0.5, size=128)
    >>> specimen = AmorphousSpecimen(thickness=10.0, slice_thickness=10.0)
    >>> truth = Aberrations(C10=-300.0, C12=80.0, phi12=0.4)
    >>> images = [simulate_ronchigram(setup, truth.replace(C10=-300.0 + f), specimen, seed=3)
    ...           for f in (0.0, -200.0, 200.0)]
    >>> quick = HologramOptions(scan=40.0, scan_step=20.0, tolerance=4.0, iterations=15,
    ...                         rescans=0)  # short
    >>> result = measure_holograms([i * 1e6 for i in images], offsets=[0, -200, 200],
    ...                            energy=200e3, semiangle=30, angular_sampling=0.5,
    ...                            options=quick)
    >>> bool(abs(result.values[0] + 300) < 20 and result.sign_resolved)  # C10 [Å], mid-plane
    True
    """
    from atomlens.calibrate.multi import series_inputs, start_estimate
    from atomlens.calibrate.preprocess import find_bright_field_disc

    axes = _fitted_axes(fit)
    items, offset_array, shifts = series_inputs(
        ronchigrams, offsets, probe_shifts, energy, semiangle, angular_sampling, thickness
    )
    start, start_sigma, origin = start_estimate(items, offsets, initial, model)
    mid = np.eye(8)[0] * thickness / 2  # the mid-plane's C10 is the entrance surface's + t / 2
    images = [item.image for item in items]
    cy, cx, _ = find_bright_field_disc(np.mean(images, axis=0))
    options = options or HologramOptions()
    found = fit_holograms(images, offset_array, shifts, start=start + mid,
                          centre=np.array([cy, cx]), angular_sampling=items[0].angular_sampling,
                          semiangle=items[0].semiangle, wavelength=wavelength(items[0].energy),
                          options=options, fit=fit)  # fmt: skip
    values = found.values - mid
    sigma = start_sigma.copy()
    sigma[axes] = np.hypot(found.sigma[axes], MODEL_ERROR * STEP_SCALE[axes])
    names = np.array(COEFFICIENTS)
    unfitted = names[np.setdiff1d(np.arange(8), axes)]
    notes = (f"{', '.join(names[axes])} from the in-line-hologram fit of {found.kept.sum()} "
             f"images ({found.trials} trials; {found.unexplained:.1%} of the contrast "
             f"unexplained, {found.mirror_unexplained:.1%} for the mirrored sign), starting from "
             f"the {origin} estimate"
             + (f"; {', '.join(unfitted)} kept from it" if len(unfitted) else ""),)  # fmt: skip
    if not found.kept.all():
        left_out = ", ".join(str(i) for i in np.flatnonzero(~found.kept))
        notes += (f"images {left_out} left out: a principal defocus under "
                  f"{options.near_focus / 10:g} nm at the first fit's state",)  # fmt: skip
    if thickness:
        notes += (f"C10 referred to the entrance surface: the mid-plane's minus "
                  f"{thickness / 2:g} Å",)  # fmt: skip
    return AberrationEstimate(
        values=values, sigma=sigma, sign_probability=1.0, sign_resolved=True,
        source=", ".join(item.source for item in items), model="physics (in-line holograms)",
        notes=notes,
    )  # fmt: skip
