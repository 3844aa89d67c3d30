"""C10 and C12 from a through-focus series of Ronchigrams, each image an in-line hologram.

The patch-shift measurement (:mod:`atomlens.calibrate.multi`) compares images by their geometric
shadows, which holds between probe-shifted images but not across tens of nm of defocus: there
the fine detail changes (Fresnel) instead of being magnified. This measurement models both
(:mod:`atomlens.calibrate.hologram`): for trial aberrations it finds the one weak-phase specimen
that best explains every image at its known offset and probe position, and the aberrations are
those that leave the least contrast unexplained. A coarse scan of C10 about the start and about
its mirror (the offsets fix the sign), then a compass search over C10, C12a and C12b.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atomlens.calibrate.hologram import HologramOptions, HologramSeries, relative_contrast
from atomlens.calibrate.result import AberrationEstimate
from atomlens.core.energy import wavelength

if TYPE_CHECKING:
    from atomlens.calibrate.estimate import OffsetLike, RonchigramLike

__all__ = ["HologramFit", "HologramOptions", "fit_holograms", "measure_holograms"]

#: Central-difference step of the misfit's curvature [Å].
_CURVATURE_STEP = 8.0
#: Model error added in quadrature to the fit's sigma of C10, C12a and C12b [Å]: the fit's own
#: sigma (0.3-1 Å on the abTEM cases of benchmarks/calibrate_multi.py) covers only the noise,
#: while the single-plane weak-phase model misses the specimen's depth and nonlinearity. Set
#: from a prototype on 12 tuning cases (seed 940000); on the reported cases the RMS C10 error
#: is 1.8 nm from a triple and 0.56 nm with two two-fold offsets (docs/calibrate.md).
MODEL_ERROR = 10.0


@dataclass(frozen=True)
class HologramFit:
    """The through-focus fit: C10, C12a, C12b [Å] at offset zero and the misfit.

    Attributes
    ----------
    values, sigma : ndarray of shape (3,)
        C10, C12a, C12b of the specimen's mid-plane and their standard deviations [Å].
    unexplained : float
        Share of the contrast the best specimen leaves unexplained (noise included).
    mirror_unexplained : float
        The same at the best state of the other sign's search (the start's or its mirror's).
    trials : int
        Model evaluations.
    """

    values: np.ndarray
    sigma: np.ndarray
    unexplained: float
    mirror_unexplained: float
    trials: int


def _compass(misfit, start: np.ndarray, step: float, tolerance: float) -> tuple[np.ndarray, float]:
    """Compass search: try +-step on each coordinate, move on any improvement, halve when none.

    Robust to the small trial-to-trial wobble of the iterative specimen solve, which defeats
    simplex and gradient methods here.
    """
    best, value = start.copy(), misfit(start)
    while step >= tolerance:
        moved = False
        for axis in range(len(best)):
            for sign in (1.0, -1.0):
                trial = best.copy()
                trial[axis] += sign * step
                trial_value = misfit(trial)
                if trial_value < value:
                    best, value, moved = trial, trial_value, True
                    break
        if not moved:
            step /= 2
    return best, value


def _sigma(series: HologramSeries, full: np.ndarray, value: float, smooth: float) -> np.ndarray:
    """Standard deviations of C10, C12a, C12b [Å] from the misfit's curvature along each.

    With N used pixels and the residual variance value * total / N per pixel (smoothing by
    ``smooth`` px correlates about 4 pi smooth^2 neighbours), chi^2 = N f / (value c), so the
    variance is 2 value c / N over the misfit f's second derivative (central differences of
    :data:`_CURVATURE_STEP`; correlations between the terms are left out). Where the misfit
    does not curve up, the step itself.
    """
    phase, h = series.specimen, _CURVATURE_STEP
    curvature = np.zeros(3)
    for axis in range(3):
        sides = []
        for sign in (1.0, -1.0):
            series.specimen = phase  # the same warm start for both sides
            sides.append(series.unexplained(full + np.eye(8)[axis] * sign * h))
        curvature[axis] = (sides[0] - 2 * value + sides[1]) / h**2
    series.specimen = phase
    count = sum(len(c) for c in series.contrasts)
    scale = 2 * value * max(1.0, 4 * np.pi * smooth**2) / count
    return np.where(curvature > 0, np.sqrt(scale / np.where(curvature > 0, curvature, 1.0)), h)


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
) -> HologramFit:
    """Fit C10, C12a and C12b of the specimen's mid-plane to a series (the others stay at
    ``start``).

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

    Returns
    -------
    HologramFit
    """
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

    def misfit(quadratic: np.ndarray) -> float:
        nonlocal trials
        trials += 1
        return series.unexplained(np.concatenate([quadratic, start[3:]]))

    found = []
    scan = np.arange(-options.scan, options.scan + options.scan_step / 2, options.scan_step)
    c10 = np.array([1.0, 0.0, 0.0])
    for sign in (1.0, -1.0):  # about the start, then about its mirror
        centre = sign * start[:3]
        farthest = centre + c10 * np.copysign(options.scan, centre[0])  # the largest |C10|
        series.fix_grid(np.concatenate([farthest, start[3:]]))
        values = [misfit(centre + c10 * change) for change in scan]
        begin = centre + c10 * scan[int(np.argmin(values))]
        series.fix_grid(np.concatenate([begin, start[3:]]))
        found.append(_compass(misfit, begin, options.step, options.tolerance))
    (best, value), (_, mirror_value) = sorted(found, key=lambda item: item[1])
    series.fix_grid(np.concatenate([best, start[3:]]))
    for _ in range(3):  # the specimen solved well at the best state: the sides start from it
        value = misfit(best)
    full = np.concatenate([best, start[3:]])
    sigma = _sigma(series, full, value, options.smooth)
    return HologramFit(best, sigma, value, mirror_value, trials)


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
) -> AberrationEstimate:
    """Measure C10 and C12 from Ronchigrams of one specimen at known defocus (and two-fold)
    offsets, e.g. a through-focus triple, by the in-line-hologram model.

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
        C21, C23 and C30 keep its values and sigmas.
    model : str
        The network for the starting estimate.
    thickness : float
        Specimen thickness [Å]: the fit sees the C10 of the specimen's mid-plane, which is
        referred to the entrance surface (where simulators put the probe's C10) as
        C10 - thickness / 2. 0 reports the mid-plane's C10.
    options : HologramOptions, optional

    Returns
    -------
    AberrationEstimate
        C10 and C12 with sigmas (the misfit's curvature and :data:`MODEL_ERROR` in
        quadrature), C21, C23, C30 from the start.

    Raises
    ------
    ValueError
        Offsets or probe shifts not one per image or in the wrong units (offsets and shifts
        are in Å), a series without any change, shadows too wide for the specimen grid
        (:data:`~atomlens.calibrate.hologram.MAX_GRID`: defocus of several hundred nm).
    InputError
        NaN or otherwise unusable images, the same data twice.

    Notes
    -----
    Unlike :func:`~atomlens.calibrate.measure`, this fit does not tell images of different
    specimen areas from one: a common specimen explains unrelated images about as well (each
    image's outer shadow is seen by no other), so check the series with ``measure`` or by eye.
    A specimen more than a few nm thick, or a principal defocus (C10 +- |C12|) of a few nm in
    one image, breaks the single-plane model: errors of 1-5 nm from a triple; two two-fold
    offsets added remove most of them (docs/calibrate.md).

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
    >>> quick = HologramOptions(scan=40.0, scan_step=20.0, tolerance=4.0, iterations=15)  # short
    >>> result = measure_holograms([i * 1e6 for i in images], offsets=[0, -200, 200],
    ...                            energy=200e3, semiangle=30, angular_sampling=0.5,
    ...                            options=quick)
    >>> bool(abs(result.values[0] + 300) < 20 and result.sign_resolved)  # C10 [Å], mid-plane
    True
    """
    from atomlens.calibrate.multi import series_inputs, start_estimate
    from atomlens.calibrate.preprocess import find_bright_field_disc

    items, offset_array, shifts = series_inputs(
        ronchigrams, offsets, probe_shifts, energy, semiangle, angular_sampling, thickness
    )
    start, start_sigma, origin = start_estimate(items, offsets, initial, model)
    mid = np.eye(8)[0] * thickness / 2  # the mid-plane's C10 is the entrance surface's + t / 2
    images = [item.image for item in items]
    cy, cx, _ = find_bright_field_disc(np.mean(images, axis=0))
    options = options or HologramOptions()
    fit = fit_holograms(images, offset_array, shifts, start=start + mid, centre=np.array([cy, cx]),
                        angular_sampling=items[0].angular_sampling,
                        semiangle=items[0].semiangle, wavelength=wavelength(items[0].energy),
                        options=options)  # fmt: skip
    values = start.copy()
    values[:3] = fit.values - mid[:3]
    sigma = start_sigma.copy()
    sigma[:3] = np.hypot(fit.sigma, MODEL_ERROR)
    notes = (f"C10 and C12 from the in-line-hologram fit of {len(items)} images ({fit.trials} "
             f"trials; {fit.unexplained:.1%} of the contrast unexplained, "
             f"{fit.mirror_unexplained:.1%} for the mirrored sign), starting from the {origin} "
             "estimate; C21, C23 and C30 kept from it",)  # fmt: skip
    if thickness:
        notes += (f"C10 referred to the entrance surface: the mid-plane's minus "
                  f"{thickness / 2:g} Å",)  # fmt: skip
    return AberrationEstimate(
        values=values, sigma=sigma, sign_probability=1.0, sign_resolved=True,
        source=", ".join(item.source for item in items), model="physics (in-line holograms)",
        notes=notes,
    )  # fmt: skip
