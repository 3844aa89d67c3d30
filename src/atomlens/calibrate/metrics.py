"""Error measures of aberration estimates: MAE per coefficient, vector errors, sign, coverage."""

from __future__ import annotations

import numpy as np

from atomlens.calibrate.symmetry import COEFFICIENTS

_PAIRS = {"C12": (1, 2), "C21": (3, 4), "C23": (5, 6)}


def resolve_sign(mean: np.ndarray, truth: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Per item, the overall sign s = +-1 that brings s * truth closest to mean (scaled L1)."""
    plus = (np.abs(mean - truth) / scales).sum(axis=1)
    minus = (np.abs(mean + truth) / scales).sum(axis=1)
    return np.where(plus <= minus, 1.0, -1.0)


def error_summary(
    mean: np.ndarray,
    sigma: np.ndarray,
    truth: np.ndarray,
    *,
    sign_correct: np.ndarray | None = None,
) -> dict[str, float]:
    """Errors of estimates against the truth, all [nm] except fractions.

    Parameters
    ----------
    mean, sigma, truth : ndarray (N, 8)
        Estimates, their standard deviations and the true coefficients [Å], ordered as
        :data:`~atomlens.calibrate.symmetry.COEFFICIENTS`; ``mean`` already carries its chosen
        overall sign.
    sign_correct : ndarray (N,) of bool, optional
        Whether the chosen sign was right; default: compare ``mean`` with +-truth.

    Returns
    -------
    dict
        ``mae_<C>_nm`` for C10 and C30 (C30 in µm as ``mae_C30_um``), ``vector_mae_<C>_nm`` for the
        two-fold and three-fold pairs (|estimate - truth| of the Cartesian vector), the same after
        resolving the sign with the truth (``*_sign_resolved``), ``sign_accuracy``, the share
        of sign-resolved errors within one and two sigma (``coverage_1sigma``, ``coverage_2sigma``),
        and ``slope_C10_sign_resolved``: the least-squares slope of the estimated against the
        true C10 (1 for an estimator without scale error; NaN for fewer than 2 distinct C10).
    """
    scales = np.maximum(np.abs(truth).mean(axis=0), 1e-9)
    best = resolve_sign(mean, truth, scales)[:, None]
    if sign_correct is None:
        sign_correct = best[:, 0] > 0
    out: dict[str, float] = {
        "count": float(len(truth)),
        "sign_accuracy": float(sign_correct.mean()),
    }
    for suffix, reference in (("", truth), ("_sign_resolved", best * truth)):
        error = mean - reference
        out[f"mae_C10_nm{suffix}"] = float(np.abs(error[:, 0]).mean() / 10)
        out[f"mae_C30_um{suffix}"] = float(np.abs(error[:, 7]).mean() / 1e4)
        for name, (a, b) in _PAIRS.items():
            out[f"vector_mae_{name}_nm{suffix}"] = float(
                np.hypot(error[:, a], error[:, b]).mean() / 10
            )
    reference = best[:, 0] * truth[:, 0]
    out["slope_C10_sign_resolved"] = (
        float(np.polyfit(reference, mean[:, 0], 1)[0]) if np.ptp(reference) > 0 else float("nan")
    )
    resolved = np.abs(mean - best * truth)
    for k in (1, 2):
        out[f"coverage_{k}sigma"] = float((resolved < k * sigma).mean())
        for index, name in enumerate(COEFFICIENTS):
            out[f"coverage_{k}sigma_{name}"] = float(
                (resolved[:, index] < k * sigma[:, index]).mean()
            )
    return out
