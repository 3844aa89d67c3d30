"""VAE-EM (paper 004): the aberration state and this microscope's code map, estimated together.

Observation i is a Ronchigram taken at the unknown state x0 plus a known offset u_i (C10, C12a,
C12b [Å]); the VAE encodes it to a code z_i. The model is

    z_i = f(x0 + u_i) + B^T psi(x0 + u_i) + e_i,   e_i ~ N(0, s^2 diag(noise^2)),

with f the simulator's map (:class:`~atomlens.calibrate.latent.LatentMap`, even in x), psi the
even polynomials of :func:`~atomlens.calibrate.latent.correction_basis` and B ~ N(0, tau^2): the
correction that fits the map to this microscope and specimen (the simulation-to-reality gap).
Every function of the model is even, so x0 and the model are jointly identifiable from offsets
that are not symmetric about -x0 (the paper's Theorem 2); with the known offsets, x0 and its
mirror -x0 explain the codes differently, which fixes the sign.

Expectation-maximisation alternates:

- E-step: the log-likelihood of the codes at every candidate state x0 on a grid over the prior
  box, weighted into a posterior (each candidate by the volume of its grid cell);
- M-step: B (a weighted ridge regression, closed form) and the noise scale s (at least 1) from
  the posterior-weighted residuals;
- adaptive refinement: finer local grids about the best candidates and their mirrors.

Once the grid has reached its finest step, the likelihood of the state with the correction
integrated out over its prior (Gaussian, so in closed form) is maximised continuously from the
best candidate; the stated sigma is the inverse Hessian there (the Laplace approximation, which
so includes what the correction leaves open) or, where wider, the spread of the candidates'
posterior on the best state's side of the origin (a flat or many-peaked likelihood), and the
sign probability compares the best state with the best one about its mirror.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from atomlens.calibrate.latent import LatentMap, correction_basis

__all__ = ["EMOptions", "EMResult", "vae_em"]

#: Candidates whose log-likelihood lies this far below the best are dropped after each round.
_PRUNE = 60.0
#: Candidates about the mirror state whose likelihood is compared with the best state's.
_MIRROR_CANDIDATES = 20


@dataclass(frozen=True)
class EMOptions:
    """Settings of :func:`vae_em`.

    Parameters
    ----------
    bounds : ndarray of shape (3, 2)
        The prior box of the state (C10, C12a, C12b) [Å] the first grid covers.
    step : ndarray of shape (3,)
        Spacing of the first grid [Å].
    finest : float
        The refinement stops when the grid step of C10 is below this [Å].
    keep : int
        Best candidates (and their mirrors) refined in each round.
    iterations : int
        Most refinement rounds.
    inner : int
        E and M steps on each round's candidates.
    correction : float
        tau: prior standard deviation of the correction's constant, in units of the code noise
        (0 trusts the simulator's map as it is).
    curvature : float
        Prior standard deviation of the correction's quadratic terms relative to ``correction``.
    """

    bounds: np.ndarray = field(
        default_factory=lambda: np.array([[-600.0, 600.0], [-250.0, 250.0], [-250.0, 250.0]])
    )
    step: np.ndarray = field(default_factory=lambda: np.array([40.0, 25.0, 25.0]))
    finest: float = 2.0
    keep: int = 4
    iterations: int = 12
    inner: int = 4
    correction: float = 1.0
    curvature: float = 1.0

    def prior_widths(self) -> np.ndarray:
        """(7,) prior standard deviations of the correction's weights (whitened codes)."""
        return self.correction * np.array([1.0] + [self.curvature] * 6)


@dataclass(frozen=True)
class EMResult:
    """What :func:`vae_em` found.

    Attributes
    ----------
    values, sigma : ndarray of shape (3,)
        The state (C10, C12a, C12b) and its standard deviations [Å].
    sign_probability : float
        Probability of the state against its mirror -x0.
    log_likelihood : float
        The log posterior at the state, up to a constant: the likelihood with the correction
        integrated out over its prior, plus the log prior of the state (0 when flat).
    noise_scale : float
        s: how much the codes scatter about the corrected map, in units of the simulation's.
    correction : ndarray of shape (7, d)
        B, the fitted correction of the map.
    rounds, candidates : int
        EM rounds taken and candidate states evaluated.
    """

    values: np.ndarray
    sigma: np.ndarray
    sign_probability: float
    log_likelihood: float
    noise_scale: float
    correction: np.ndarray
    rounds: int
    candidates: int


@dataclass
class _Candidates:
    """Candidate states with the simulator's codes and the correction basis at their points."""

    states: np.ndarray  # (M, 3) [Å]
    volume: np.ndarray  # (M,) grid cell volume [Å^3]
    mapped: np.ndarray  # (M, N, d) f(x + u_i)
    psi: np.ndarray  # (M, N, 7) correction basis at x + u_i

    @classmethod
    def at(cls, states: np.ndarray, step: np.ndarray, offsets: np.ndarray,
           latent_map: LatentMap) -> _Candidates:  # fmt: skip
        points = (states[:, None, :] + offsets[None]).reshape(-1, 3)
        shape = (len(states), len(offsets))
        return cls(states, np.full(len(states), float(np.prod(step))),
                   latent_map.predict(points).reshape(*shape, -1),
                   correction_basis(points).reshape(*shape, -1))  # fmt: skip

    def select(self, keep: np.ndarray) -> _Candidates:
        return _Candidates(self.states[keep], self.volume[keep], self.mapped[keep], self.psi[keep])

    def join(self, other: _Candidates) -> _Candidates:
        parts = zip(vars(self).values(), vars(other).values(), strict=True)
        return _Candidates(*(np.concatenate(pair) for pair in parts))

    def log_likelihood(self, codes: np.ndarray, correction: np.ndarray,
                       noise: np.ndarray) -> np.ndarray:  # fmt: skip
        """(M,) log-likelihood of the codes (N, d) at each candidate."""
        residual = (codes[None] - self.mapped - self.psi @ correction) / noise
        return -0.5 * (residual**2).sum(axis=(1, 2))


def _marginal_log_likelihood(
    state: np.ndarray,
    codes: np.ndarray,
    offsets: np.ndarray,
    latent_map: LatentMap,
    noise: np.ndarray,
    widths: np.ndarray,
) -> float:
    """log p(codes | state) with the correction integrated out over its prior.

    In whitened codes each dimension is N(f(x + u), I + Psi W^2 Psi^T) over the N
    observations (W the prior widths): the uncertainty the correction adds is in the
    likelihood (and so in the Laplace sigma) rather than fixed at one fitted correction.
    """
    points = np.asarray(state, dtype=np.float64)[None] + offsets
    residual = (codes - latent_map.predict(points)) / noise  # (N, d)
    psi = correction_basis(points) * widths
    covariance = np.eye(len(points)) + psi @ psi.T
    _, log_det = np.linalg.slogdet(covariance)
    solved = np.linalg.solve(covariance, residual)
    return float(-0.5 * ((residual * solved).sum() + codes.shape[1] * log_det))


def _grid(centre: np.ndarray, step: np.ndarray, half: int) -> np.ndarray:
    axes = [c + s * np.arange(-half, half + 1) for c, s in zip(centre, step, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _initial_grid(options: EMOptions) -> np.ndarray:
    axes = [np.arange(low, high + step / 2, step)
            for (low, high), step in zip(options.bounds, options.step, strict=True)]  # fmt: skip
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _m_step(
    weights: np.ndarray,
    candidates: _Candidates,
    codes: np.ndarray,
    noise: np.ndarray,
    widths: np.ndarray,
) -> np.ndarray:
    """B maximising the posterior-weighted likelihood plus its Gaussian prior, (7, d)."""
    if not (widths > 0).any():
        return np.zeros((len(widths), codes.shape[1]))
    widths = np.maximum(widths, 1e-9)
    psi = candidates.psi * widths  # in units of the prior widths
    residual = (codes[None] - candidates.mapped) / noise  # whitened codes
    gram = np.einsum("m,mip,miq->pq", weights, psi, psi)
    moment = np.einsum("m,mip,mid->pd", weights, psi, residual)
    return np.linalg.solve(gram + np.eye(len(gram)), moment) * widths[:, None] * noise


def _posterior(log_likelihood: np.ndarray, volume: np.ndarray) -> np.ndarray:
    logits = log_likelihood + np.log(volume)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def _refine(states: np.ndarray, scores: np.ndarray, step: np.ndarray, keep: int) -> np.ndarray:
    """Local grids at half the step about the ``keep`` best states and their mirrors."""
    best = states[np.argsort(scores)[::-1][:keep]]
    centres = np.concatenate([best, -best])
    return np.concatenate([_grid(c, step / 2, 2) for c in centres])


def vae_em(
    codes: np.ndarray,
    offsets: np.ndarray,
    latent_map: LatentMap,
    options: EMOptions | None = None,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
) -> EMResult:
    """Estimate the state x0 = (C10, C12a, C12b) [Å] and the microscope's correction of the map.

    Parameters
    ----------
    codes : ndarray of shape (N, d)
        VAE codes of N Ronchigrams of one specimen.
    offsets : ndarray of shape (N, 3)
        Their known offsets (C10, C12a, C12b) [Å].
    latent_map : LatentMap
        The simulator's map (the model's prior mean).
    options : EMOptions, optional
    prior : (mean, sigma), optional
        A Gaussian prior of the state (3,) and its standard deviations (3,) [Å], e.g. another
        estimator's answer; flat over the box of ``options.bounds`` when None.

    Returns
    -------
    EMResult
    """
    options = options or EMOptions()
    codes = np.asarray(codes, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    noise = latent_map.noise.copy()
    correction = np.zeros((correction_basis(np.zeros((1, 3))).shape[1], codes.shape[1]))
    step = np.asarray(options.step, dtype=float)
    candidates = _Candidates.at(_initial_grid(options), step, offsets, latent_map)
    log_prior = _log_prior(prior)
    scale, evaluated, rounds = 1.0, len(candidates.states), 0
    while rounds < options.iterations:
        rounds += 1
        for _ in range(options.inner):  # E and M steps on this round's candidates
            scores = candidates.log_likelihood(codes, correction, noise * scale)
            scores = scores + log_prior(candidates.states)
            weights = _posterior(scores, candidates.volume)
            correction = _m_step(weights, candidates, codes, noise, options.prior_widths())
            chi2 = -2 * candidates.log_likelihood(codes, correction, noise)
            scale = float(np.sqrt(max(1.0, weights @ chi2 / codes.size)))  # s >= 1
        scores = candidates.log_likelihood(codes, correction, noise * scale)
        scores = scores + log_prior(candidates.states)
        if step[0] < options.finest:
            break
        new = _refine(candidates.states, scores, step, options.keep)
        step = step / 2
        alive = scores > scores.max() - _PRUNE  # far less likely states are dropped
        new = np.unique(np.round(new, 6), axis=0)
        new = new[~_near(new, candidates.states[alive], step / 4)]
        candidates = candidates.select(alive).join(_Candidates.at(new, step, offsets, latent_map))
        evaluated += len(new)
    states = candidates.states

    def objective(x: np.ndarray) -> float:  # minus the log posterior, correction integrated out
        likelihood = _marginal_log_likelihood(x, codes, offsets, latent_map, noise * scale,
                                              options.prior_widths())  # fmt: skip
        return -likelihood - float(log_prior(x[None])[0])

    best = _maximise(objective, states[np.argmax(scores)], step)
    # the mirror mode: the best of the leading candidates on the far side of the plane through
    # 0 normal to the state (the grid was refined about the mirrors of the best candidates too)
    side = (states / options.step) @ (best / options.step) < 0
    # sigma: the Laplace approximation, or the spread of the candidates' posterior on the best
    # state's side where that is wider (a flat or many-peaked likelihood)
    weights = _posterior(scores[~side], candidates.volume[~side])
    spread = np.sqrt(weights @ (states[~side] - weights @ states[~side]) ** 2)
    sigma = np.maximum(_laplace_sigma(objective, best, step, options.bounds), spread)
    far = np.flatnonzero(side)
    leading = far[np.argsort(scores[far])[::-1][:_MIRROR_CANDIDATES]]
    mirror = max((-objective(x) for x in states[leading]), default=-np.inf)
    difference = -objective(best) - mirror  # >= 0 when best is the better mode
    return EMResult(
        values=best,
        sigma=sigma,
        sign_probability=float(1 / (1 + np.exp(-np.clip(difference, -50, 50)))),
        log_likelihood=-objective(best),
        noise_scale=scale,
        correction=correction,
        rounds=rounds,
        candidates=evaluated,
    )


def _log_prior(prior: tuple[np.ndarray, np.ndarray] | None):
    """log p(state) up to a constant, as a function of states (M, 3) [Å]: Gaussian or flat."""
    if prior is None:
        return lambda states: np.zeros(len(states))
    mean, sigma = (np.asarray(v, dtype=np.float64) for v in prior)
    if mean.shape != (3,) or sigma.shape != (3,) or not (np.isfinite(mean).all()
                                                          and (sigma > 0).all()):  # fmt: skip
        raise ValueError(f"prior must be a mean and positive sigmas of the state (3,) [Å], got "
                         f"{mean!r}, {sigma!r}.")  # fmt: skip
    return lambda states: -0.5 * (((states - mean) / sigma) ** 2).sum(axis=1)


def _near(points: np.ndarray, others: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Which points lie within ``tolerance`` (per coordinate) of one of the others."""
    from scipy.spatial import cKDTree

    if not len(others):
        return np.zeros(len(points), dtype=bool)
    distance, _ = cKDTree(others / tolerance).query(points / tolerance, p=np.inf)
    return distance <= 1.0


def _maximise(objective, start: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Nelder-Mead from ``start`` with a simplex of the grid's last step."""
    simplex = np.vstack([start, start + np.diag(step)])
    result = optimize.minimize(objective, start, method="Nelder-Mead",
                               options={"initial_simplex": simplex, "xatol": 0.05,
                                        "fatol": 1e-4, "maxiter": 2000})  # fmt: skip
    return np.asarray(result.x, dtype=float)


def _laplace_sigma(objective, best: np.ndarray, step: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Standard deviations from the inverse of the numerical Hessian of -log-likelihood; where
    it is not positive definite (a flat direction), those of the uniform prior box."""
    h = np.diag(np.maximum(step, 1.0))

    def f(i: int, j: int, a: int, b: int) -> float:
        return objective(best + a * h[i] + b * h[j])

    hessian, centre = np.empty((3, 3)), objective(best)
    for i in range(3):
        hessian[i, i] = (f(i, i, 1, 0) - 2 * centre + f(i, i, -1, 0)) / h[i, i] ** 2
        for j in range(i + 1, 3):
            mixed = f(i, j, 1, 1) - f(i, j, 1, -1) - f(i, j, -1, 1) + f(i, j, -1, -1)
            hessian[i, j] = hessian[j, i] = mixed / (4 * h[i, i] * h[j, j])
    try:
        diagonal = np.diag(np.linalg.inv(hessian))
        if (diagonal > 0).all():
            return np.sqrt(diagonal)
    except np.linalg.LinAlgError:
        pass
    return np.diff(np.asarray(bounds, dtype=float), axis=1)[:, 0] / np.sqrt(12)
