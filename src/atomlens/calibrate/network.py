"""The estimator network's input, outputs and loss.

The network sees two channels on the canonical grid: the Ronchigram minus its mean inside the disc
(zero where the detector ends) and the squared radius in semi-angles (so that it knows where the
aperture edge and the radial change of magnification are; it is invariant under the grid's
symmetries). It outputs, per coefficient of :data:`~atomlens.calibrate.symmetry.COEFFICIENTS`, a
mean and the log-scale of a Laplace distribution (so the loss is an uncertainty-weighted MAE), and
one logit for the overall sign.

Why a sign head. A Ronchigram fixes chi only up to chi -> -chi unless something breaks the tie:
the contrast of the specimen (atoms act as converging lenses) or the known sign of C30. The means
are therefore trained with the minimum over s = +-1 of the loss of s * truth, a well-posed task for
any data, and the sign logit separately learns which of +-mean is right, where the physics lets it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from atomlens.calibrate.metrics import resolve_sign
from atomlens.calibrate.preprocess import CANONICAL_EXTENT
from atomlens.calibrate.symmetry import COEFFICIENTS

#: Typical size of each coefficient [Å]: targets are divided by it.
SCALES = np.array([500.0, 200.0, 200.0, 1000.0, 1000.0, 1000.0, 1000.0, 5e4])
OUTPUTS = 2 * len(COEFFICIENTS) + 1
_LOG_SCALE_RANGE = (-9.0, 3.0)


def network_input(grids: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, 2, S, S) float32 network input from (N, S, S) canonical grids."""
    x = torch.as_tensor(np.asarray(grids, dtype=np.float32))
    if x.ndim != 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"Expected canonical grids of shape (N, S, S), got {tuple(x.shape)}.")
    size = x.shape[-1]
    axis = (torch.arange(size, dtype=torch.float32) - size / 2 + 0.5) * 2 * CANONICAL_EXTENT / size
    radius2 = (axis[:, None] ** 2 + axis[None, :] ** 2).expand(x.shape[0], size, size)
    signal = torch.where(x > 0, x - 1, x)
    return torch.stack([signal, radius2 - 1], dim=1)


def split_output(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(means, log-scales, sign logits) of a raw (N, 17) output, in scaled units."""
    count = len(COEFFICIENTS)
    log_scale = output[:, count : 2 * count].clamp(*_LOG_SCALE_RANGE)
    return output[:, :count], log_scale, output[:, 2 * count]


def laplace_nll(mean: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-item Laplace negative log-likelihood summed over coefficients (N,)."""
    return ((target - mean).abs() * torch.exp(-log_scale) + log_scale).sum(dim=1)


def sign_free_loss(
    output: torch.Tensor, target: torch.Tensor, sign_weight: float = 0.5
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of a batch: min over +-truth of the Laplace NLL, plus the sign head's cross-entropy.

    Parameters
    ----------
    output : Tensor (N, 17)
        Raw network output.
    target : Tensor (N, 8)
        True coefficients divided by :data:`SCALES`.
    """
    mean, log_scale, logit = split_output(output)
    plus = laplace_nll(mean, log_scale, target)
    minus = laplace_nll(mean, log_scale, -target)
    label = (plus <= minus).float().detach()
    sign = F.binary_cross_entropy_with_logits(logit, label)
    regression = torch.minimum(plus, minus).mean()
    accuracy = ((logit > 0).float() == label).float().mean()
    return regression + sign_weight * sign, {
        "nll": regression.item(),
        "sign_bce": sign.item(),
        "sign_accuracy": accuracy.item(),
    }


def laplace_sigma(scale: np.ndarray, factors: np.ndarray | float = 1.0) -> np.ndarray:
    """Standard deviation of a Laplace distribution of scale ``scale``, times calibration factors.

    The std of a Laplace distribution is sqrt(2) b; ``factors`` are the per-coefficient
    corrections fitted on a validation set (a model's ``sigma_factors``).
    """
    return math.sqrt(2) * scale * np.asarray(factors)


def decode(output: torch.Tensor) -> dict[str, np.ndarray]:
    """Means and Laplace scales [Å] (N, 8) and the probability that +mean is right (N,)."""
    mean, log_scale, logit = split_output(output.detach().float().cpu())
    return {
        "mean": mean.numpy() * SCALES,
        "scale": np.exp(log_scale.numpy()) * SCALES,
        "p_plus": torch.sigmoid(logit).numpy(),
    }


def _inverse(quarter_turns: int, transpose: bool) -> tuple[int, bool]:
    """The group element that undoes (turns, transpose): reflections are their own inverse."""
    return (quarter_turns, True) if transpose else ((-quarter_turns) % 4, False)


def predict_grids(
    model: torch.nn.Module,
    grids: np.ndarray,
    *,
    augment: bool = False,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Decoded estimates [Å] for canonical grids (N, S, S), in eval mode without gradients.

    With ``augment`` the network also sees the 7 rotated and mirrored copies of each grid; their
    estimates are mapped back, brought to the same overall sign as the plain one and averaged
    (8 x the network time; the Laplace scales are averaged, not shrunk, so sigma stays
    conservative).
    """
    from atomlens.calibrate.symmetry import ELEMENTS, transform_coefficients, transform_grids

    model.eval()
    device = next(model.parameters()).device
    elements = ELEMENTS if augment else ELEMENTS[:1]
    grids = np.asarray(grids, dtype=np.float32)
    runs = []
    with torch.no_grad():
        for turns, transpose in elements:
            outputs = []
            for start in range(0, len(grids), batch_size):
                chunk = transform_grids(grids[start : start + batch_size], turns, transpose)
                outputs.append(model(network_input(np.ascontiguousarray(chunk)).to(device)))
            decoded = decode(torch.cat(outputs))
            back = _inverse(turns, transpose)
            decoded["mean"] = transform_coefficients(decoded["mean"], *back)
            runs.append(decoded)
    reference = runs[0]["mean"]
    means, scales, p_plus = [], [], []
    for run in runs:
        sign = resolve_sign(reference, run["mean"], SCALES)  # the run's sign nearest the reference
        means.append(sign[:, None] * run["mean"])
        scales.append(run["scale"])
        p_plus.append(np.where(sign > 0, run["p_plus"], 1 - run["p_plus"]))
    return {
        "mean": np.mean(means, axis=0),
        "scale": np.mean(scales, axis=0),
        "p_plus": np.mean(p_plus, axis=0),
    }
