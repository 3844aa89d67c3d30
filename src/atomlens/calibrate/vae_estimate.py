"""``estimate(..., method="vae-em")``: C10 and C12 by VAE-EM from Ronchigrams at known offsets.

The shipped VAE (``ronchigram-vae``, 200 kV, 30 mrad) encodes each Ronchigram's power spectrum
(:mod:`atomlens.calibrate.spectra`); :func:`~atomlens.calibrate.vae_em.vae_em` finds the state
and this microscope's correction of the code map together, by default with the network's
combined single-image estimate of the same Ronchigrams as the state's prior. C21, C23 and C30
are the network's, as the VAE models only the state of a focus and stigmator tune-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from atomlens.calibrate.checks import check_distinct, check_series
from atomlens.calibrate.latent import STATE, LatentMap, encode_grids
from atomlens.calibrate.preprocess import canonical_grid
from atomlens.calibrate.result import AberrationEstimate
from atomlens.calibrate.vae_em import EMOptions, vae_em

if TYPE_CHECKING:
    from atomlens.calibrate.estimate import OffsetLike, RonchigramLike

__all__ = ["DEFAULT_VAE", "estimate_vae_em", "load_vae"]

DEFAULT_VAE = "ronchigram-vae"
#: Largest offsets [Å] of C10 and of each C12 component: the candidate box plus the offsets
#: must stay inside the states the code map was fitted on.
MAX_OFFSET = np.array([300.0, 100.0, 100.0])


@lru_cache(maxsize=4)
def load_vae(name_or_folder: str = DEFAULT_VAE) -> tuple[torch.nn.Module, LatentMap, dict]:
    """The VAE, its code map and its config (cached), from the zoo or a model folder."""
    from atomlens.zoo import load_model

    model, config = load_model(name_or_folder)
    if config.get("task") != "ronchigram-vae":
        raise ValueError(f"Model {name_or_folder!r} is not a Ronchigram VAE for VAE-EM.")
    return model.eval(), LatentMap.from_dict(config["latent_map"]), config


def _state_offsets(offsets: Sequence[OffsetLike]) -> np.ndarray:
    """(N, 3) offsets of the state [Å]; refuses changes of other terms and too large ones."""
    from atomlens.calibrate.estimate import _offset_vector

    vectors = np.stack([_offset_vector(o) for o in offsets])
    # units, NaN, and no change at all (at one setting a state and its mirror look alike)
    check_series(vectors, np.zeros((len(vectors), 2)), len(vectors))
    if np.abs(vectors[:, 3:]).max(initial=0) > 0:
        raise ValueError("VAE-EM models C10 and C12 only: offsets of C21, C23 or C30 cannot be "
                         "used; give C10 and C12 offsets (or use method='physics').")  # fmt: skip
    state = vectors[:, :3]
    spread = np.abs(state).max(axis=0)
    if (spread > MAX_OFFSET).any():
        raise ValueError(
            f"VAE-EM takes offsets up to {MAX_OFFSET[0]:g} Å of C10 and {MAX_OFFSET[1]:g} Å "
            f"of C12a and C12b, got up to {spread.round(1).tolist()} Å."
        )
    return state


def estimate_vae_em(
    ronchigrams: Sequence[RonchigramLike],
    *,
    offsets: Sequence[OffsetLike],
    energy: float | None = None,
    semiangle: float | None = None,
    angular_sampling: float | None = None,
    model: str = DEFAULT_VAE,
    network: str = "ronchigram-aberrations",
    options: EMOptions | None = None,
    prior: str = "network",
) -> AberrationEstimate:
    """C10 and C12 [Å] by VAE-EM from Ronchigrams of one specimen at known offsets.

    Parameters
    ----------
    ronchigrams : sequence of path, array or ImageData
        Two or more Ronchigrams, at two or more different offsets (probe-shifted repeats of one
        setting count as further observations of it).
    offsets : sequence
        One per Ronchigram, as for :func:`~atomlens.calibrate.estimate`: a C10 change [Å] or a
        mapping of C10 / C12 changes; at most 300 Å of C10 and 100 Å of each C12 component.
    energy, semiangle, angular_sampling : float, optional
        [eV], [mrad], [mrad / px]; read from the files when absent.
    model : str
        The VAE (zoo name or model folder).
    network : str
        The single-image network that gives C21, C23 and C30.
    options : EMOptions, optional
        The prior box, grids and the correction's prior width.
    prior : {"network", "flat"}
        The state's prior: the network's combined estimate of the same Ronchigrams (a Gaussian
        of its stated sigmas: two estimators of the same images, each error partly its own),
        or flat over the box (VAE-EM alone).

    Returns
    -------
    AberrationEstimate
        C10, C12a, C12b and their sigmas from VAE-EM; the rest from the network.

    Raises
    ------
    ValueError
        Offsets not one per image, of other terms, too large or all the same; a model that is
        not a Ronchigram VAE; settings the VAE was not trained for.
    InputError
        What is not a Ronchigram of the stated calibration, the same data twice.
    """
    from atomlens.calibrate.estimate import _check_setting, _inputs, estimate

    if prior not in ("network", "flat"):
        raise ValueError(f"prior must be 'network' or 'flat', got {prior!r}.")
    items = _inputs(list(ronchigrams), energy, semiangle, angular_sampling)
    if len(offsets) != len(items):
        raise ValueError(f"{len(items)} Ronchigrams but {len(offsets)} offsets.")
    state_offsets = _state_offsets(offsets)
    vae, latent_map, config = load_vae(model)
    notes: list[str] = []
    for item in items:
        notes += _check_setting(item, config)[0]
    check_distinct(items)
    grids = np.stack([canonical_grid(item) for item in items])
    codes = encode_grids(vae, grids)
    start = estimate(items, offsets=list(offsets), model=network, method="network")
    state = slice(0, len(STATE))
    gaussian = (start.values[state], start.sigma[state]) if prior == "network" else None
    result = vae_em(codes, state_offsets, latent_map, options, prior=gaussian)
    values, sigma = start.values.copy(), start.sigma.copy()
    values[state], sigma[state] = result.values, result.sigma
    notes.append(f"C10, C12 by VAE-EM ({result.rounds} rounds, {result.candidates} candidate "
                 f"states, code scatter {result.noise_scale:.2f} x the simulator's"
                 + (", the network's estimate as the prior" if gaussian else "")
                 + f"); C21, C23, C30 from the network {network}")  # fmt: skip
    return AberrationEstimate(
        values=values, sigma=sigma, sign_probability=result.sign_probability,
        sign_resolved=result.sign_probability >= 0.9,
        source=", ".join(item.source for item in items), model=f"VAE-EM ({model})",
        notes=tuple(dict.fromkeys(notes)),
    )  # fmt: skip
