"""Estimate probe aberrations from Ronchigrams with the shipped (or a given) network.

One Ronchigram gives chi up to its overall sign (see :mod:`atomlens.calibrate.network`); the
estimate says how sure its sign is and, when it is not, carries the other-sign solution too.
Several Ronchigrams taken at known offsets (a defocus pair, say) are combined: of the 2^N sign
choices the one whose offset-corrected estimates agree best wins, which resolves the sign.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from atomlens.calibrate.checks import (
    check_counts,
    check_disc,
    check_distinct,
    check_reach,
    check_structure,
)
from atomlens.calibrate.network import laplace_sigma, predict_grids
from atomlens.calibrate.preprocess import (
    RonchigramInput,
    canonical_grid,
    find_bright_field_disc,
    ronchigram_input,
)
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.core.validation import InputError, check_parameter
from atomlens.io import ImageData
from atomlens.physics.optics.aberrations import Aberrations

DEFAULT_MODEL = "ronchigram-aberrations"
#: Most Ronchigrams combined at once (2^N sign choices are tried).
MAX_COMBINED = 12
#: The ways several Ronchigrams are combined (``method=``).
METHODS = ("auto", "network", "physics", "hologram", "vae-em")

RonchigramLike = str | Path | np.ndarray | ImageData | RonchigramInput
OffsetLike = float | Mapping[str, float] | Aberrations


@lru_cache(maxsize=4)
def load_estimator(name_or_folder: str = DEFAULT_MODEL) -> tuple[torch.nn.Module, dict]:
    """The network and its config (cached), from the model zoo or a model folder."""
    from atomlens.zoo import load_model

    model, config = load_model(name_or_folder)
    if config.get("task") != "ronchigram-aberrations":
        raise ValueError(f"Model {name_or_folder!r} is not a Ronchigram aberration estimator.")
    return model, config


def _as_list(ronchigrams: RonchigramLike | Sequence[RonchigramLike]) -> list[RonchigramLike]:
    """One Ronchigram, a sequence of them or an (N, H, W) stack, as a list."""
    if isinstance(ronchigrams, np.ndarray) and ronchigrams.ndim == 3:
        return list(ronchigrams)
    return list(ronchigrams) if isinstance(ronchigrams, list | tuple) else [ronchigrams]


def _inputs(
    ronchigrams: RonchigramLike | Sequence[RonchigramLike],
    energy: float | None,
    semiangle: float | None,
    angular_sampling: float | None,
) -> list[RonchigramInput]:
    ronchigrams = _as_list(ronchigrams)
    if not ronchigrams:
        raise ValueError("No Ronchigrams given.")
    out = []
    for item in ronchigrams:
        if isinstance(item, RonchigramInput):
            out.append(item)
        else:
            out.append(ronchigram_input(item, energy=energy, semiangle=semiangle,
                                        angular_sampling=angular_sampling))  # fmt: skip
    return out


def _check_setting(item: RonchigramInput, config: dict) -> tuple[list[str], tuple[float, float]]:
    """Refuse what the model never saw or the image contradicts; note what is doubtful.

    Every check runs before the network (and before the resampling, whose cost grows with the
    ratio of semi-angle to angular sampling); the rules are in :mod:`atomlens.calibrate.checks`.

    Returns the notes and the bright-field disc centre (row, column) [px].
    """
    _check_trained(item, config["distribution"])
    check_counts(item.image, item.source)
    low, high = config["distribution"]["angular_sampling_mrad_per_px"]
    notes = []
    if not 0.5 * low <= item.angular_sampling <= 2 * high:
        notes.append(f"angular sampling {item.angular_sampling:g} mrad/px is far outside the "
                     f"trained {low:g}-{high:g} mrad/px")  # fmt: skip
    notes += check_reach(item)
    try:
        cy, cx, _ = find_bright_field_disc(item.image)
    except ValueError as error:
        raise InputError(f"{item.source}: {error}") from None
    check_structure(item.image, item.source)
    notes += check_disc(item)
    return notes, (cy, cx)


def _check_trained(item: RonchigramInput, trained: dict) -> None:
    """Refuse an energy or semi-angle the model was not trained for (+-2 %, +-10 %)."""
    energy, semiangle = trained["energy_eV"], trained["semiangle_mrad"]
    if abs(item.energy / energy - 1) > 0.02:
        raise ValueError(
            f"{item.source}: the estimator was trained at {energy / 1e3:g} kV, not "
            f"{item.energy / 1e3:g} kV; train one for this energy (atomlens train "
            "calibrate) or check the energy."
        )
    if abs(item.semiangle / semiangle - 1) > 0.1:
        raise ValueError(
            f"{item.source}: the estimator was trained for a {semiangle:g} mrad semi-angle "
            f"(+-10%), not {item.semiangle:g} mrad."
        )


def _predict(
    items: list[RonchigramInput],
    model: torch.nn.Module,
    config: dict,
    batch_size: int,
    progress: bool,
    augment: bool = False,
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Decoded estimates with calibrated sigma (the Laplace std sqrt(2) b times the factors),
    and the notes on each input."""
    parts, notes = [], []
    bar = tqdm(total=len(items), desc="calibrating", unit="Ronchigram", disable=not progress)
    for start in range(0, len(items), batch_size):
        grids = []
        for item in items[start : start + batch_size]:
            item_notes, centre = _check_setting(item, config)
            notes.append(item_notes)
            grids.append(canonical_grid(item, centre=centre))
        parts.append(predict_grids(model, np.stack(grids), augment=augment, batch_size=batch_size))
        bar.update(len(grids))
    bar.close()
    decoded = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    decoded["sigma"] = calibrated_sigma(decoded, config)
    _check_finite(decoded)
    return decoded, notes


def _check_finite(decoded: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN, infinite values or sigma <= 0 from the network (damaged weights or factors)."""
    finite = all(np.isfinite(values).all() for values in decoded.values())
    if not finite or not (np.asarray(decoded["sigma"]) > 0).all():
        raise ValueError(
            "The estimator returned NaN or infinite values (or a sigma <= 0); its weights or its "
            "sigma factors are damaged. Reinstall atomlens or retrain the model."
        )


def calibrated_sigma(decoded: dict[str, np.ndarray], config: dict) -> np.ndarray:
    """Standard deviations [Å]: sqrt(2) x Laplace scale x the model's validation factors."""
    return laplace_sigma(decoded["scale"], config["sigma_factors"])


def _check_options(c30_sign: int | None, sign_threshold: float) -> None:
    if c30_sign not in (None, 1, -1):
        raise ValueError(f"c30_sign must be +1, -1 or None, got {c30_sign}.")
    if not 0.5 <= sign_threshold <= 1:
        raise ValueError(f"sign_threshold must lie in [0.5, 1], got {sign_threshold}.")


def _single(
    mean: np.ndarray, sigma: np.ndarray, p_plus: float, c30_sign: int | None, threshold: float
) -> tuple[np.ndarray, float, bool, list[str]]:
    sign = 1.0 if p_plus >= 0.5 else -1.0
    probability = max(p_plus, 1 - p_plus)
    notes = []
    if c30_sign is not None:
        if abs(mean[7]) > 2 * sigma[7]:
            sign, probability = float(np.sign(mean[7]) * c30_sign), 1.0
            notes.append("overall sign fixed by the given sign of C30")
        else:
            notes.append("C30 is too small to fix the sign with the given sign of C30")
    return sign * mean, probability, probability >= threshold, notes


def estimate_batch(
    ronchigrams: RonchigramLike | Sequence[RonchigramLike],
    *,
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
    model: str = DEFAULT_MODEL,
    c30_sign: int | None = None,
    sign_threshold: float = 0.9,
    augment: bool = False,
    batch_size: int = 64,
    progress: bool = False,
) -> list[AberrationEstimate]:
    """One independent estimate per Ronchigram (files, arrays, a (N, H, W) stack).

    Parameters are those of :func:`estimate`, less ``offsets``; ``batch_size`` Ronchigrams go
    through the network together and ``progress`` shows a progress bar.
    """
    _check_options(c30_sign, sign_threshold)
    network, config = load_estimator(model)
    items = _inputs(ronchigrams, energy, semiangle, angular_sampling)
    decoded, notes = _predict(items, network, config, batch_size, progress, augment)
    out = []
    for i, item in enumerate(items):
        values, probability, resolved, sign_notes = _single(
            decoded["mean"][i], decoded["sigma"][i], float(decoded["p_plus"][i]), c30_sign,
            sign_threshold,
        )  # fmt: skip
        if not resolved:
            sign_notes.append("one Ronchigram cannot fix the overall sign here; take a defocus "
                              "pair (offsets) or give the sign of C30")  # fmt: skip
        out.append(AberrationEstimate(
            values=values, sigma=decoded["sigma"][i], sign_probability=probability,
            sign_resolved=resolved, alternative=None if resolved else -values,
            source=item.source, model=model, notes=tuple(notes[i] + sign_notes),
        ))  # fmt: skip
    return out


def _offset_vector(offset: OffsetLike) -> np.ndarray:
    if isinstance(offset, Aberrations):
        cartesian = offset.to_cartesian()
    elif isinstance(offset, Mapping):
        cartesian_names = any(k.endswith(("a", "b")) for k in offset)
        build = Aberrations.from_cartesian if cartesian_names else Aberrations
        cartesian = build(offset).to_cartesian()
    else:
        cartesian = {"C10": check_parameter("offsets", offset, kind="aberration")}
    return np.array([cartesian.get(name, 0.0) for name in COEFFICIENTS])


def combine(
    means: np.ndarray,
    sigmas: np.ndarray,
    p_plus: np.ndarray,
    offsets: np.ndarray,
    sign_threshold: float = 0.9,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """Combine single-image estimates of Ronchigrams taken at known offsets.

    Ronchigram i shows aberrations A + offsets[i]; its estimate is s_i * means[i] with an unknown
    s_i = +-1. Every sign choice gives A as the inverse-variance mean of s_i means[i] - offsets[i];
    its plausibility is exp(-chi^2 / 2) times the sign heads' probabilities.

    Returns
    -------
    values, sigma : ndarray (8,)
        A of the most plausible choice [Å] and its sigma (inflated by sqrt(chi^2 / dof) when the
        images disagree more than their sigmas say).
    probability : float
        Share of the total plausibility held by choices that agree with it on the sign of C10.
    alternative : ndarray (8,) or None
        The best choice with the other sign of C10, when ``probability`` is below the threshold.
    """
    count = len(means)
    weights = 1 / sigmas**2
    candidates = []
    for signs in itertools.product((1.0, -1.0), repeat=count):
        s = np.array(signs)[:, None]
        shifted = s * means - offsets
        values = (weights * shifted).sum(0) / weights.sum(0)
        chi2 = float((weights * (shifted - values) ** 2).sum())
        prior = float(np.log(np.where(s[:, 0] > 0, p_plus, 1 - p_plus).clip(1e-6)).sum())
        candidates.append((prior - chi2 / 2, values, chi2))
    scores = np.array([c[0] for c in candidates])
    posterior = np.exp(scores - scores.max())
    posterior /= posterior.sum()
    best = int(np.argmax(scores))
    values, chi2 = candidates[best][1], candidates[best][2]
    same = np.array([np.sign(c[1][0]) == np.sign(values[0]) for c in candidates])
    probability = float(posterior[same].sum())
    dof = max(1, (count - 1) * len(COEFFICIENTS))
    sigma = np.sqrt(1 / weights.sum(0)) * math.sqrt(max(1.0, chi2 / dof))
    alternative = None
    if probability < sign_threshold and (~same).any():
        other = np.flatnonzero(~same)[np.argmax(scores[~same])]
        alternative = candidates[other][1]
    return values, sigma, probability, alternative


def estimate(
    ronchigrams: RonchigramLike | Sequence[RonchigramLike],
    *,
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
    offsets: Sequence[OffsetLike] | None = None,
    model: str = DEFAULT_MODEL,
    c30_sign: int | None = None,
    sign_threshold: float = 0.9,
    augment: bool = False,
    probe_shifts: Sequence[Sequence[float]] | None = None,
    method: str = "auto",
    thickness: float = 0.0,
    fit: Sequence[str] | None = None,
) -> AberrationEstimate:
    """Estimate C10, C12, C21, C23 and C30 with uncertainties from one or more Ronchigrams.

    Parameters
    ----------
    ronchigrams : path, array, ImageData, or a sequence of them
        One Ronchigram, or several of the same probe taken at known ``offsets``.
    energy : float, optional
        Beam energy [eV]; read from the file when absent.
    semiangle : float, optional
        Convergence semi-angle [mrad].
    angular_sampling : float, optional
        Detector pixel [mrad / px]; read from the file when absent.
    offsets : sequence, optional
        One per Ronchigram: a C10 change [Å] (abTEM's C10 = -defocus), a mapping of coefficient
        changes (abTEM or Cartesian names) or Aberrations. The estimate is for offset zero.
    model : str
        A model name from the zoo or a model folder.
    c30_sign : +1 or -1, optional
        The known sign of C30, used to fix the overall sign of a single Ronchigram.
    sign_threshold : float
        Probability needed to call the overall sign resolved.
    augment : bool
        Also estimate from the 7 rotated and mirrored copies and average (test-time augmentation:
        8 x the network time, somewhat smaller errors; sigma is left as for one pass).
    probe_shifts : sequence of (dy, dx), optional
        Probe position of each Ronchigram in the specimen plane [Å], for the physics-based
        measurement (:func:`atomlens.calibrate.measure`).
    method : {"auto", "network", "physics", "hologram", "vae-em"}
        "network" combines the network's single-image estimates; "physics" measures C10 and C12
        from the patch shifts between the images (:func:`atomlens.calibrate.measure`, starting
        from the network); "hologram" fits C10 and C12 so that one weak-phase specimen explains
        every image as an in-line hologram (:func:`atomlens.calibrate.measure_holograms`: a
        through-focus triple without probe shifts, about 30 s); "vae-em" estimates C10 and
        C12 with this microscope's code map by VAE-EM, the network's estimate as the prior
        (:func:`atomlens.calibrate.estimate_vae_em`; probe shifts are not needed and ignored,
        ``model`` stays the network); "auto" is
        "physics" when ``probe_shifts`` are given, else "network".
    thickness : float
        Specimen thickness [Å], for the physics-based measurements ("physics", "hologram"): their
        C10 is that of the specimen's mid-plane, referred to the entrance surface with it.
    fit : sequence of str, optional
        The Cartesian terms the physics-based measurements fit
        (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`; by default C10, C12a and C12b,
        the others kept from the network); not for "network" and "vae-em".

    Returns
    -------
    AberrationEstimate

    Raises
    ------
    MissingCalibrationError
        When energy, semi-angle or angular sampling is neither given nor in the file.
    ParameterError
        Energy, semi-angle, angular sampling or an offset outside its valid range
        (:data:`atomlens.core.validation.PARAMETERS`).
    InputError
        What is not a Ronchigram of the stated calibration (docs/calibrate.md, "What calibrate
        refuses"): complex, NaN or infinite values, not one 2-D image, a mean <= 0 or a large
        negative excursion, a flat image, a detector reaching under 0.4 semi-angles, a
        bright-field disc more than 25 % off the stated radius or none at all; the same pixel
        data twice among combined Ronchigrams.
    ValueError
        Settings the model was not trained for, several Ronchigrams without offsets.

    Examples
    --------
    >>> from atomlens.physics import RonchigramSetup, Aberrations, simulate_ronchigrams
    >>> setup = RonchigramSetup(energy=200e3, semiangle=30, angular_sampling=0.5, size=160)
    >>> image = simulate_ronchigrams(setup, [Aberrations(C10=-300, C12=80)], seed=1)[0]
    >>> result = estimate(image, energy=200e3, semiangle=30, angular_sampling=0.5)
    >>> bool(abs(abs(result.values[0]) - 300) < 3 * result.sigma[0])
    True
    """
    _check_options(c30_sign, sign_threshold)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    items = _as_list(ronchigrams)
    physics = method in ("physics", "hologram") or (method == "auto" and probe_shifts is not None)
    if fit is not None and not physics:
        raise ValueError("fit is for the physics-based measurements (method='physics' or "
                         f"'hologram'), not for {method!r}.")  # fmt: skip
    chosen = {} if fit is None else {"fit": tuple(fit)}
    if method == "vae-em":
        from atomlens.calibrate.vae_estimate import estimate_vae_em

        if offsets is None:
            raise ValueError("VAE-EM needs the offset of each Ronchigram (offsets=...).")
        return estimate_vae_em(items, offsets=offsets, energy=energy, semiangle=semiangle,
                               angular_sampling=angular_sampling, network=model)  # fmt: skip
    if method == "hologram":
        from atomlens.calibrate.through_focus import measure_holograms

        if offsets is None:
            raise ValueError("The hologram fit needs the offset of each Ronchigram (offsets=...).")
        return measure_holograms(items, offsets=offsets, probe_shifts=probe_shifts, energy=energy,
                                 semiangle=semiangle, angular_sampling=angular_sampling,
                                 model=model, thickness=thickness, **chosen)  # fmt: skip
    if physics:  # "physics", or "auto" with probe shifts ("hologram" returned above)
        from atomlens.calibrate.multi import measure

        if offsets is None:
            offsets = [0.0] * len(items)
        return measure(items, offsets=offsets, probe_shifts=probe_shifts, energy=energy,
                       semiangle=semiangle, angular_sampling=angular_sampling,
                       model=model, thickness=thickness, **chosen)  # fmt: skip
    if probe_shifts is not None:
        raise ValueError("probe_shifts are used only by the physics-based measurement; "
                         "use method='physics' or 'auto'.")  # fmt: skip
    if offsets is None:
        if len(items) != 1:
            raise ValueError(
                f"{len(items)} Ronchigrams without offsets: give the offset of each (offsets=...) "
                "to combine them, or use estimate_batch for independent estimates."
            )
        return estimate_batch(items, energy=energy, semiangle=semiangle,
                              angular_sampling=angular_sampling, model=model, c30_sign=c30_sign,
                              sign_threshold=sign_threshold, augment=augment)[0]  # fmt: skip
    if len(offsets) != len(items):
        raise ValueError(f"{len(items)} Ronchigrams but {len(offsets)} offsets.")
    if len(items) > MAX_COMBINED:
        raise ValueError(f"At most {MAX_COMBINED} Ronchigrams can be combined, got {len(items)}.")
    shift = np.stack([_offset_vector(o) for o in offsets])
    network, config = load_estimator(model)
    inputs = _inputs(items, energy, semiangle, angular_sampling)
    check_distinct(inputs)
    decoded, item_notes = _predict(inputs, network, config, MAX_COMBINED, False, augment)
    notes = [note for group in item_notes for note in group]
    values, sigma, probability, alternative = combine(
        decoded["mean"], decoded["sigma"], decoded["p_plus"], shift, sign_threshold
    )
    _check_finite({"values": values, "sigma": sigma, "probability": np.array(probability)})
    if c30_sign is not None and alternative is not None and abs(values[7]) > 2 * sigma[7]:
        if np.sign(values[7]) != c30_sign:
            values, alternative = alternative, values
        probability, alternative = 1.0, None
        notes.append("overall sign fixed by the given sign of C30")
    return AberrationEstimate(
        values=values, sigma=sigma, sign_probability=probability,
        sign_resolved=probability >= sign_threshold, alternative=alternative,
        source=", ".join(item.source for item in inputs), model=model, notes=tuple(notes),
    )  # fmt: skip
