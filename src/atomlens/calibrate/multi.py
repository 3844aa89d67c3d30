"""Physics-based aberration measurement from several Ronchigrams of one specimen.

Ronchigram i, taken with aberrations A + O_i (known offsets O_i) and the probe at s_i, shows at
angle alpha the specimen point x_i(alpha) = s_i + grad W_{A + O_i}(alpha)
(:mod:`atomlens.calibrate.shadow`). A patch about alpha in image i therefore reappears in image j
about the angle alpha' with x_j(alpha') = x_i(alpha): measuring alpha' by patch cross-correlation
(:mod:`atomlens.calibrate.shifts`) gives, per patch, two equations

    [G(alpha') - G(alpha)] A = G(alpha) O_i - G(alpha') O_j + s_i - s_j

linear in the eight Cartesian coefficients A (G is the gradient basis), sign included: the
offsets are known. Each patch of image j is resampled through the predicted local map before
the correlation, so that images at different magnifications compare alike; the prediction uses
the current estimate, which is refined (predict, correlate, fit) until it settles. Equations are
weighted by the shift uncertainty mapped into the specimen plane, outliers are rejected, and
the covariance is scaled by the residuals (the fit itself is :mod:`atomlens.calibrate.series`).

Images at the same setting (differing by probe shifts) follow this model exactly; images at
different defocus only roughly, because detail finer than the Fresnel zone changes with defocus
instead of being magnified (docs/calibrate.md, "Physics-based measurement"). The measured C10
is that of the specimen's mid-plane, about t / 2 beyond the entrance surface at which
simulators put the probe's C10 (``thickness=`` refers it there).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from atomlens.calibrate.checks import check_series
from atomlens.calibrate.preprocess import RonchigramInput
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.series import MeasureOptions, measure_series
from atomlens.calibrate.symmetry import COEFFICIENTS, check_terms
from atomlens.core.energy import wavelength
from atomlens.core.validation import InputError, check_parameter

if TYPE_CHECKING:
    from atomlens.calibrate.estimate import OffsetLike, RonchigramLike

__all__ = ["MeasureOptions", "measure"]


def _shift_array(probe_shifts: Sequence[Sequence[float]] | None, count: int) -> np.ndarray:
    """Probe shifts (N, 2) [Å]; zeros when none are given."""
    if probe_shifts is None:
        return np.zeros((count, 2))
    try:
        shifts = np.asarray(probe_shifts, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"probe_shifts must be (dy, dx) pairs [Å], got {probe_shifts!r}."
        ) from None
    if shifts.ndim != 2 or shifts.shape[1] != 2:
        raise ValueError(f"probe_shifts must be one (dy, dx) pair [Å] per image, got shape "
                         f"{shifts.shape}.")  # fmt: skip
    return shifts


def start_estimate(
    items: list[RonchigramInput], offsets: Sequence[OffsetLike], initial: object, model: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """Starting values and sigmas (8,) [Å], and where they came from."""
    from atomlens.calibrate.estimate import _offset_vector, estimate

    if initial is not None:
        values = _offset_vector(initial) if not isinstance(initial, np.ndarray) else initial
        values = np.asarray(values, dtype=float)
        if values.shape != (8,) or not np.isfinite(values).all():
            raise ValueError("initial must be Aberrations, a mapping or 8 finite Cartesian "
                             f"values [Å], got {initial!r}.")  # fmt: skip
        return values, np.full(8, np.nan), "given"
    start = estimate(items, offsets=list(offsets), model=model)
    return start.values, start.sigma, f"network {model}"


def measure(
    ronchigrams: Sequence[RonchigramLike],
    *,
    offsets: Sequence[OffsetLike],
    probe_shifts: Sequence[Sequence[float]] | None = None,
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
    initial: object = None,
    model: str = "ronchigram-aberrations",
    fit: Sequence[str] = ("C10", "C12a", "C12b"),
    thickness: float = 0.0,
    options: MeasureOptions | None = None,
) -> AberrationEstimate:
    """Measure aberrations from Ronchigrams of one specimen at known offsets and probe shifts.

    Parameters
    ----------
    ronchigrams : sequence of path, array or ImageData
        Two or more Ronchigrams of the same specimen area on one detector.
    offsets : sequence
        One per Ronchigram, as for :func:`~atomlens.calibrate.estimate`: a C10 change [Å]
        (abTEM's C10 = -defocus), a mapping of coefficient changes (e.g. ``{"C12a": 100}``) or
        Aberrations. The result is for offset zero.
    probe_shifts : sequence of (dy, dx), optional
        Probe position of each Ronchigram in the specimen plane [Å]; (0, 0) by default. Best
        about |C10| x 5 mrad (an eighth of the disc's shadow): larger shifts leave little overlap.
    energy, semiangle, angular_sampling : float, optional
        [eV], [mrad], [mrad / px]; read from the files when absent.
    initial : Aberrations, mapping or ndarray of shape (8,), optional
        Starting estimate [Å]; by default the network's combined estimate of the same images.
    model : str
        The network for the starting estimate.
    fit : sequence of str
        The Cartesian coefficients measured (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`);
        the others keep their starting values and sigmas.
    thickness : float
        Specimen thickness [Å]. The shadow image shows the C10 of the specimen's mid-plane
        (its scattering matter's mean depth); with the thickness the result is referred to
        the entrance surface, where simulators (abTEM, atomlens) put the probe's C10:
        C10 - thickness / 2. 0 reports the mid-plane's C10.
    options : MeasureOptions, optional
        Patch size and spacing, filters, iterations.

    Returns
    -------
    AberrationEstimate
        Values and sigmas [Å]; the sigmas of the fitted terms are the fit's (its covariance
        scaled by the residuals: the random error, not the specimen-depth bias of C10, see
        Notes). The sign is fixed by the offsets.

    Raises
    ------
    ValueError
        Offsets or probe shifts not one per image or in the wrong units (offsets and shifts
        are in Å), a series without any change, unknown coefficient names.
    InputError
        NaN or otherwise unusable images, images of different specimen areas (they do not
        correlate), the same data twice.

    Notes
    -----
    Patches are compared only at scales coarser than the Fresnel zone (``options.smooth``):
    finer detail of a thin amorphous specimen does not move with the geometric shadow when the
    defocus changes. Small defocus steps (a few nm) and probe shifts measure best; large steps
    (+-20 nm about a C10 of a few tens of nm) change the pattern beyond recognition and carry
    little information (docs/calibrate.md, "Physics-based measurement"). The C10 measured is
    that of the specimen's mid-plane: in a multislice simulation, the mean depth of its slices
    (t / 2 - dz / 2 beyond the entrance surface, measured within 2 Å for 10-120 Å of simulated
    amorphous carbon); give ``thickness`` to refer it to the entrance surface.
    """
    from atomlens.calibrate.checks import check_same_specimen
    from atomlens.calibrate.preprocess import find_bright_field_disc

    fit = check_terms(fit)
    items, offset_array, shifts = series_inputs(
        ronchigrams, offsets, probe_shifts, energy, semiangle, angular_sampling, thickness
    )
    start, start_sigma, origin = start_estimate(items, offsets, initial, model)
    start = start + np.eye(8)[0] * thickness / 2  # to the mid-plane
    cy, cx, _ = find_bright_field_disc(np.mean([item.image for item in items], axis=0))
    options = options or MeasureOptions()
    options = MeasureOptions(**{**options.__dict__, "free": tuple(fit)})
    setting = {"angular_sampling": items[0].angular_sampling, "semiangle": items[0].semiangle,
               "wavelength": wavelength(items[0].energy)}  # fmt: skip
    images = [item.image for item in items]
    centre = np.array([cy, cx])
    result = measure_series(images, offset_array, shifts, initial=start, centre=centre,
                            options=options, **setting)  # fmt: skip
    sources = [item.source for item in items]
    unmatched = check_same_specimen(result.correlation, result.residual, sources)
    compared = np.isfinite(result.correlation).any(axis=1)
    unused = [i for i in unmatched if not compared[i]]  # gave no equations
    dropped = [i for i in unmatched if compared[i]]
    rounds = result.iterations
    if dropped:  # measure again without the images that match no other
        keep = [i for i in range(len(items)) if i not in dropped]
        again = MeasureOptions(**{**options.__dict__, "search": False})
        result = measure_series([images[i] for i in keep], offset_array[keep], shifts[keep],
                                initial=result.values, centre=centre, options=again,
                                **setting)  # fmt: skip
        rounds += result.iterations
    if result.equations < 4 * len(fit):
        raise InputError(f"Only {result.equations} patch equations could be used for "
                         f"{len(fit)} coefficients: the series is too different to compare; "
                         "take smaller offsets or probe shifts.")  # fmt: skip
    values = result.values - np.eye(8)[0] * thickness / 2  # back to the entrance surface
    fitted = np.isin(np.array(COEFFICIENTS), list(fit))
    sigma = np.where(fitted, result.sigma, start_sigma)
    notes = (f"measured from {result.equations} patch equations in {rounds} rounds, "
             f"starting from the {origin} estimate",)  # fmt: skip
    if unused:
        notes += (f"image(s) {unused} not used: only images at the same setting (differing by "
                  "probe shifts) are compared where there are any, or the magnifications "
                  "differ too much",)  # fmt: skip
    if dropped:
        notes += (f"image(s) {dropped} matched no other (e.g. near focus) and were left "
                  "out",)  # fmt: skip
    pairs = itertools.combinations(range(len(items)), 2)
    if not any(np.array_equal(offset_array[i], offset_array[j]) for i, j in pairs):
        notes += ("no two images at the same setting (probe shifts): images at different "
                  "defocus follow the geometric shadow model only roughly, so expect errors of "
                  "several nm (docs/calibrate.md); add probe shifts",)  # fmt: skip
    if (~fitted).any():
        notes += (f"{', '.join(np.array(COEFFICIENTS)[~fitted])} kept from the {origin} "
                  "estimate",)  # fmt: skip
    if thickness:
        notes += (f"C10 referred to the entrance surface: the mid-plane's minus "
                  f"{thickness / 2:g} Å",)  # fmt: skip
    return AberrationEstimate(
        values=values, sigma=sigma, sign_probability=1.0, sign_resolved=True,
        source=", ".join(item.source for item in items), model="physics (patch shifts)",
        notes=notes,
    )  # fmt: skip


def series_inputs(
    ronchigrams: Sequence[RonchigramLike],
    offsets: Sequence[OffsetLike] | None,
    probe_shifts: Sequence[Sequence[float]] | None,
    energy: float | None,
    semiangle: float | None,
    angular_sampling: float | None,
    thickness: float,
) -> tuple[list[RonchigramInput], np.ndarray, np.ndarray]:
    """The checked inputs of a measurement from a series: images, offsets (N, 8) [Å] and probe
    shifts (N, 2) [Å].

    Raises
    ------
    ValueError, InputError
        As :func:`measure` documents.
    """
    from atomlens.calibrate.checks import check_counts, check_distinct
    from atomlens.calibrate.estimate import _inputs, _offset_vector

    items = _inputs(list(ronchigrams), energy, semiangle, angular_sampling)
    offsets = list(offsets) if offsets is not None else []
    shifts = _shift_array(probe_shifts, len(items))
    offset_array = np.stack([_offset_vector(o) for o in offsets]) if offsets else np.zeros((0, 8))
    check_series(offset_array, shifts, len(items))
    _check_same_setup(items)
    for item in items:
        check_counts(item.image, item.source)
    check_distinct(items)
    if thickness:
        check_parameter("thickness", thickness)
    return items, offset_array, shifts


def _check_same_setup(items: Sequence[RonchigramInput]) -> None:
    """Refuse a series whose images differ in shape or calibration."""
    first = items[0]
    for item in items[1:]:
        same = (item.image.shape == first.image.shape and item.energy == first.energy
                and item.semiangle == first.semiangle
                and item.angular_sampling == first.angular_sampling)  # fmt: skip
        if not same:
            raise ValueError(
                f"{item.source} differs from {first.source} in shape or "
                "calibration; a series is taken on one detector at one setting."
            )
