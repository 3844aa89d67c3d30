"""The geometric shadow-image model of a Ronchigram: where each detector angle looks.

A probe A(k) exp(-i chi(k)) shifted by s to s in the specimen plane sends the ray at angle
alpha = lambda k through the specimen point (stationary phase of the probe integral)

    x(alpha) = s + (lambda / 2 pi) grad_alpha chi(alpha) = s + grad_alpha W(alpha),

with W = sum_nm C_nm alpha^(n+1) / (n+1) cos(m (phi - phi_nm)) the wave aberration [Å], so every
patch of a Ronchigram is a shadow image of the specimen around x(alpha), magnified by the inverse
of the Hessian of W. x is linear in the Cartesian coefficients (C10, C12a, C12b, C21a, C21b,
C23a, C23b, C30, :data:`~atomlens.calibrate.symmetry.COEFFICIENTS`), whose gradient and Hessian
bases are here. Vectors are (y, x) = (row, column); phi = atan2(alpha_y, alpha_x), as in
:mod:`atomlens.physics.optics.transfer` (checked against ``chi_basis`` in the tests).
"""

from __future__ import annotations

import numpy as np


def gradient_basis(alpha: np.ndarray) -> np.ndarray:
    """grad_alpha W of each Cartesian coefficient (per Å of it).

    Parameters
    ----------
    alpha : ndarray of shape (..., 2)
        Angles (y, x) [rad].

    Returns
    -------
    ndarray of shape (..., 2, 8)
        [(y, x) component, coefficient]: specimen-plane position [Å] per Å of coefficient.
    """
    y, x = alpha[..., 0], alpha[..., 1]
    r2 = x * x + y * y
    gx = [x, x, y, (3 * x * x + y * y) / 3, 2 * x * y / 3, x * x - y * y, 2 * x * y, r2 * x]
    gy = [y, -y, x, 2 * x * y / 3, (x * x + 3 * y * y) / 3, -2 * x * y, x * x - y * y, r2 * y]
    return np.stack([np.stack(gy, axis=-1), np.stack(gx, axis=-1)], axis=-2)


def hessian_basis(alpha: np.ndarray) -> np.ndarray:
    """The Hessian of W of each Cartesian coefficient (per Å of it).

    Parameters
    ----------
    alpha : ndarray of shape (..., 2)
        Angles (y, x) [rad].

    Returns
    -------
    ndarray of shape (..., 2, 2, 8)
        d x_a / d alpha_b [Å / rad] per Å of coefficient, a and b in (y, x) order.
    """
    y, x = alpha[..., 0], alpha[..., 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    xx = [one, one, zero, 2 * x, 2 * y / 3, 2 * x, 2 * y, 3 * x * x + y * y]
    xy = [zero, zero, one, 2 * y / 3, 2 * x / 3, -2 * y, 2 * x, 2 * x * y]
    yy = [one, -one, zero, 2 * x / 3, 2 * y, -2 * x, -2 * y, x * x + 3 * y * y]
    xx, xy, yy = (np.stack(t, axis=-1) for t in (xx, xy, yy))
    return np.stack([np.stack([yy, xy], axis=-2), np.stack([xy, xx], axis=-2)], axis=-3)


def shadow_position(
    values: np.ndarray, alpha: np.ndarray, shift: np.ndarray | None = None
) -> np.ndarray:
    """Specimen point x(alpha) = s + grad W seen at angle alpha.

    Parameters
    ----------
    values : ndarray of shape (8,)
        Cartesian coefficients [Å].
    alpha : ndarray of shape (..., 2)
        Angles (y, x) [rad].
    shift : ndarray of shape (2,), optional
        Probe position (y, x) [Å].

    Returns
    -------
    ndarray of shape (..., 2)
        [Å].

    Examples
    --------
    >>> values = np.array([-100.0, 0, 0, 0, 0, 0, 0, 0])  # C10 = -10 nm
    >>> shadow_position(values, np.array([0.01, 0.0]), np.array([0.0, 2.0]))
    array([-1.,  2.])
    """
    position = gradient_basis(alpha) @ values
    return position if shift is None else position + shift


def shadow_hessian(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """d x / d alpha [Å / rad], shape (..., 2, 2), for Cartesian coefficients ``values`` [Å]."""
    return hessian_basis(alpha) @ values


def invert_shadow(
    values: np.ndarray,
    target: np.ndarray,
    start: np.ndarray,
    shift: np.ndarray | None = None,
    steps: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """Angles alpha near ``start`` at which the specimen points ``target`` are seen (Newton).

    Parameters
    ----------
    values : ndarray of shape (8,)
        Cartesian coefficients [Å].
    target : ndarray of shape (N, 2)
        Specimen points (y, x) [Å].
    start : ndarray of shape (N, 2)
        First guesses (y, x) [rad].
    shift : ndarray of shape (2,), optional
        Probe position [Å].
    steps : int
        Newton steps.

    Returns
    -------
    alpha : ndarray of shape (N, 2)
        [rad].
    converged : ndarray of shape (N,), bool
        Whether the point is reached within 1e-3 Å (where the Hessian is near singular, at the
        infinite-magnification rings, Newton may not converge).
    """
    alpha = np.array(start, dtype=np.float64)
    for _ in range(steps):
        error = shadow_position(values, alpha, shift) - target
        hessian = shadow_hessian(values, alpha)
        with np.errstate(all="ignore"):
            good = np.abs(np.linalg.det(hessian)) > 1e-12
            step = np.zeros_like(alpha)
            step[good] = np.linalg.solve(hessian[good], error[good][..., None])[..., 0]
        alpha -= step
    error = shadow_position(values, alpha, shift) - target
    converged = np.isfinite(error).all(-1) & (np.hypot(*error.T) < 1e-3)
    return alpha, converged
