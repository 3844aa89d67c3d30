"""The restoration network of this task: its sizes, its loss, and how it runs on images.

- :data:`ARCHITECTURES`: the two CGRDN sizes, ``compact`` (chosen by measurement for speed on a
  CPU: 0.7 s for 1024 x 1024 on 2 cores) and ``full`` (paper 001's scale, for a GPU).
- :func:`restoration_loss`: L1 plus the contrast-adaptive L1 (each image's error relative to its
  own contrast, so faint specimens weigh as much as strong ones).
- :func:`predict_normalised`: the network on (n, h, w) normalised images, padded to its
  downscale, in float32 or bfloat16, without gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from atomlens.nn import CGRDN
from atomlens.nn.tiling import predict_padded

__all__ = [
    "ADAPTIVE_WEIGHT",
    "ARCHITECTURES",
    "build_network",
    "predict_normalised",
    "restoration_loss",
]

#: CGRDN arguments by size name.
ARCHITECTURES: dict[str, dict[str, int]] = {
    # 3 groups x 2 blocks x 3 dense layers at 1/4 resolution: 0.36 M parameters (1.4 MB).
    "compact": {
        "channels": 48,
        "groups": 3,
        "blocks": 2,
        "layers": 3,
        "growth": 24,
        "downscale": 4,
    },
    # 4 x 4 x 4 at 1/2 resolution, 64 features: 2.3 M parameters, ~25 s per 1024^2 on 2 cores.
    "full": {"channels": 64, "groups": 4, "blocks": 4, "layers": 4, "growth": 32, "downscale": 2},
}

#: Weight of the contrast-adaptive term in :func:`restoration_loss`.
ADAPTIVE_WEIGHT = 0.5


def build_network(size: str = "compact") -> CGRDN:
    """A freshly initialised CGRDN of this size (see :data:`ARCHITECTURES`)."""
    if size not in ARCHITECTURES:
        raise ValueError(f"size must be one of {sorted(ARCHITECTURES)}, got {size!r}.")
    return CGRDN(**ARCHITECTURES[size])


def restoration_loss(
    restored: torch.Tensor, target: torch.Tensor, *, adaptive: float = ADAPTIVE_WEIGHT
) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 plus ``adaptive`` times the contrast-adaptive L1 of (N, 1, H, W) images.

    The adaptive term divides each image's mean absolute error by that image's contrast (the
    standard deviation of its target, plus 0.02 in normalised units), so a thin amorphous film or
    a low-dose image of weak contrast counts as much as a strongly scattering crystal. (The text
    of paper 001 available to us names an adaptive loss without defining it; this is our
    definition.)

    Returns
    -------
    loss : Tensor
    parts : dict
        ``l1`` and ``adaptive`` as floats, for the training log.
    """
    error = (restored - target).abs().flatten(1).mean(1)
    contrast = target.flatten(1).std(1).detach() + 0.02
    l1 = error.mean()
    relative = (error / contrast).mean()
    parts = {"l1": float(l1.detach()), "adaptive": float(relative.detach())}
    return l1 + adaptive * relative, parts


def predict_normalised(
    model: torch.nn.Module, tiles: np.ndarray, *, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    """The network on (n, h, w) normalised tiles; any h, w (reflect-padded to the downscale).

    Parameters
    ----------
    model : CGRDN
    tiles : ndarray (n, h, w)
    dtype : torch.float32 or torch.bfloat16
        Computation type on the CPU (bfloat16 through autocast).

    Returns
    -------
    ndarray (n, h, w), float32
    """
    return predict_padded(model, tiles, dtype=dtype)
