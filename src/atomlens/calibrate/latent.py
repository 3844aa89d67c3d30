"""The map from aberrations to VAE codes that VAE-EM (paper 004) fits: symmetric by construction.

The VAE encodes a Ronchigram's power spectrum (:mod:`atomlens.calibrate.spectra`) to a code z of a
few dimensions. How z depends on the state x = (C10, C12a, C12b) [Å] is modelled by a Gaussian
process on a finite basis (the basis functions Phi of the paper's Lemma 1): Gaussian radial basis
functions on a grid of centres c_j, each paired with its mirror,

    phi_j(x) = exp(-|(x - c_j) / l|^2 / 2) + exp(-|(x + c_j) / l|^2 / 2),

so that every function of the model is even, f(x) = f(-x), as the spectra are (aberrations A
and -A give point-inverted shadows with the same spectrum). A constant completes the basis. Its
weights are fitted by ridge regression on simulated Ronchigrams (:meth:`LatentMap.fit`): the
simulator's map, which VAE-EM takes as the prior mean and corrects for one microscope with the
even low-order polynomials of :func:`correction_basis` (:mod:`atomlens.calibrate.vae_em`).

Written here rather than with a GP library: the basis makes the EM's M-step a closed-form
weighted ridge regression and the E-step a matrix product over thousands of candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "STATE",
    "LatentMap",
    "correction_basis",
    "encode_grids",
    "encode_spectra",
    "rbf_centres",
]

#: The state VAE-EM estimates: Cartesian coefficients [Å], in this order.
STATE = ("C10", "C12a", "C12b")
#: Coordinates are divided by this [Å] (10 nm) inside the basis.
SCALE = 100.0
#: Extent [Å] of the centre grid and its spacing, per coordinate (the training prior's range).
_CENTRE_EXTENT = np.array([900.0, 350.0, 350.0])
_CENTRE_COUNT = (13, 8, 8)


def rbf_centres() -> np.ndarray:
    """(K, 3) centres [Å]: one of each mirror pair (c, -c) of the grid (the grid has no zero
    C12, so no centre is its own mirror)."""
    axes = [np.linspace(-e, e, n) for e, n in zip(_CENTRE_EXTENT, _CENTRE_COUNT, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    first = grid[:, 2] > 0  # C12b never 0 on this grid: c and -c differ in sign there
    return grid[first]


def _lengths() -> np.ndarray:
    """Length scale per coordinate [Å]: the centre grid's spacing."""
    return 2 * _CENTRE_EXTENT / (np.array(_CENTRE_COUNT) - 1)


def correction_basis(states: np.ndarray) -> np.ndarray:
    """Even polynomials of degree 0 and 2 of the state (M, 3) [Å]: (M, 7).

    1, u0^2, u1^2, u2^2, u0 u1, u0 u2, u1 u2 with u = state / 500 Å (a C10 of 50 nm is 1).
    """
    u = np.asarray(states, dtype=np.float64) / 500.0
    i, j = np.triu_indices(3)
    return np.concatenate([np.ones((len(u), 1)), u[:, i] * u[:, j]], axis=1)


def encode_spectra(model: torch.nn.Module, spectra: np.ndarray, batch: int = 512) -> np.ndarray:
    """Latent means (N, d) of the VAE for spectra (N, 32, 32) (eval mode, no gradients)."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(spectra), batch):
            chunk = torch.as_tensor(np.asarray(spectra[start : start + batch], np.float32)[:, None])
            out.append(model(chunk)[2].numpy())
    return np.concatenate(out).astype(np.float64)


def encode_grids(model: torch.nn.Module, grids: np.ndarray) -> np.ndarray:
    """Latent means (N, d) of canonical grids (N, 96, 96): their spectra, then the encoder."""
    from atomlens.calibrate.spectra import ronchigram_spectra

    return encode_spectra(model, ronchigram_spectra(np.asarray(grids, dtype=np.float32)))


@dataclass(frozen=True)
class LatentMap:
    """The simulator's map from the state x = (C10, C12a, C12b) [Å] to VAE codes.

    Attributes
    ----------
    centres : ndarray of shape (K, 3)
        RBF centres [Å] (one of each mirror pair).
    lengths : ndarray of shape (3,)
        RBF length scales [Å].
    weights : ndarray of shape (K + 1, d)
        Weights of the constant and the K symmetric RBFs per code dimension.
    noise : ndarray of shape (d,)
        Standard deviation of codes about the map on held-out simulations: the specimen, the
        dose, the detector and the higher-order aberrations the map does not model.
    """

    centres: np.ndarray
    lengths: np.ndarray
    weights: np.ndarray
    noise: np.ndarray

    def basis(self, states: np.ndarray) -> np.ndarray:
        """(M, K + 1) basis functions at states (M, 3) [Å]: 1 and the symmetric RBFs."""
        x = np.asarray(states, dtype=np.float64) / self.lengths
        c = self.centres / self.lengths
        sq = (x**2).sum(1)[:, None] + (c**2).sum(1)[None]
        cross = x @ c.T
        pair = np.exp(-0.5 * np.maximum(sq - 2 * cross, 0)) + np.exp(
            -0.5 * np.maximum(sq + 2 * cross, 0)
        )
        return np.concatenate([np.ones((len(x), 1)), pair], axis=1)

    def predict(self, states: np.ndarray) -> np.ndarray:
        """Codes (M, d) the simulator's map gives at states (M, 3) [Å]."""
        return self.basis(states) @ self.weights

    @classmethod
    def fit(cls, coefficients: np.ndarray, codes: np.ndarray, ridge: float = 1e-3) -> LatentMap:
        """Ridge regression of codes (N, d) on the basis at the states of ``coefficients``.

        Parameters
        ----------
        coefficients : ndarray of shape (N, 8) or (N, 3)
            Cartesian coefficients [Å] (:data:`~atomlens.calibrate.symmetry.COEFFICIENTS`
            order) or the state alone.
        codes : ndarray of shape (N, d)
        ridge : float
            Ridge weight relative to the mean diagonal of the normal matrix.
        """
        states = _states(coefficients)
        codes = np.asarray(codes, dtype=np.float64)
        if len(states) != len(codes) or codes.ndim != 2:
            raise ValueError(f"LatentMap.fit needs as many codes as states, got {codes.shape} "
                             f"codes for {len(states)} states.")  # fmt: skip
        empty = cls(rbf_centres(), _lengths(), np.zeros((1, 1)), np.ones(codes.shape[1]))
        basis = empty.basis(states)
        normal = basis.T @ basis
        normal += ridge * np.trace(normal) / len(normal) * np.eye(len(normal))
        weights = np.linalg.solve(normal, basis.T @ codes)
        noise = (codes - basis @ weights).std(axis=0)
        return cls(empty.centres, empty.lengths, weights, noise)

    def score(self, coefficients: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """On held-out simulations: the variance of the codes the map explains (R^2, mean over
        dimensions) and the mean residual standard deviation (its ``noise`` is set from them)."""
        residual = np.asarray(codes) - self.predict(_states(coefficients))
        r2 = 1 - residual.var(axis=0) / np.asarray(codes).var(axis=0)
        return {"map_r2": float(r2.mean()), "map_noise": float(residual.std(axis=0).mean())}

    def with_noise(self, coefficients: np.ndarray, codes: np.ndarray) -> LatentMap:
        """The same map with ``noise`` measured on held-out simulations."""
        residual = np.asarray(codes) - self.predict(_states(coefficients))
        return LatentMap(self.centres, self.lengths, self.weights, residual.std(axis=0))

    def to_dict(self) -> dict[str, list]:
        """JSON-serialisable parameters (for the model's config)."""
        return {
            "centres_A": self.centres.tolist(),
            "lengths_A": self.lengths.tolist(),
            "weights": self.weights.tolist(),
            "noise": self.noise.tolist(),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, list]) -> LatentMap:
        """The map of :meth:`to_dict`."""
        try:
            out = cls(*(np.asarray(values[k], dtype=np.float64)
                        for k in ("centres_A", "lengths_A", "weights", "noise")))  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"Not a latent map: {error}.") from None
        if out.weights.shape != (len(out.centres) + 1, len(out.noise)):
            raise ValueError(f"A latent map's weights {out.weights.shape} do not match its "
                             f"{len(out.centres)} centres and {len(out.noise)} codes.")  # fmt: skip
        return out


def _states(coefficients: np.ndarray) -> np.ndarray:
    """(N, 3) states [Å] from (N, 8) Cartesian coefficients or (N, 3) states."""
    values = np.asarray(coefficients, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] not in (3, 8):
        raise ValueError(f"Expected (N, 8) coefficients or (N, 3) states [Å], got {values.shape}.")
    return values[:, :3]
