"""The enhancement networks of this task, their losses, and how they run on normalised tiles.

- :data:`ARCHITECTURES`: the generator size shipped (``compact``: 0.29 M parameters for the
  pair, 1.2 MB, trained on a 2-core CPU).
- The structure-keeping losses of thesis 003 (chapters 3 and 4), each on (N, 1, H, W) images:
  :func:`frequency_loss` (log-amplitude spectra alike), :func:`characteristic_loss` (the
  empirical characteristic functions of the pixel values alike: a distribution match without
  a critic), :func:`atom_mask` and :func:`masked_l1` (the cycle loss weighted up on atom
  regions), :func:`lowpass_loss` (the image blurred to below the column spacing alike: columns
  stay where they are).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from atomlens.nn import CyclePair

__all__ = [
    "ARCHITECTURES",
    "atom_mask",
    "build_network",
    "characteristic_loss",
    "frequency_loss",
    "lowpass_loss",
    "masked_l1",
]

#: CyclePair arguments by size name.
ARCHITECTURES: dict[str, dict[str, int]] = {
    "compact": {"channels": 16, "width": 48, "depth": 2, "heads": 4, "modes": 8},
}
#: Share of a patch's pixels :func:`atom_mask` calls atom regions (the brightest).
ATOM_SHARE = 0.3
#: Standard deviation of the blur of :func:`lowpass_loss` [canonical px]: a quarter of the
#: column spacing, so the blurred image still shows every column where it is.
LOWPASS_SIGMA = 2.0


def build_network(size: str = "compact") -> CyclePair:
    """A freshly initialised generator pair of this size (see :data:`ARCHITECTURES`)."""
    if size not in ARCHITECTURES:
        raise ValueError(f"size must be one of {sorted(ARCHITECTURES)}, got {size!r}.")
    return CyclePair(**ARCHITECTURES[size])


def frequency_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the log-amplitude spectra, log(1 + |FFT|), of two images."""
    a = torch.log1p(torch.fft.rfft2(output.float(), norm="ortho").abs())
    b = torch.log1p(torch.fft.rfft2(target.float(), norm="ortho").abs())
    return (a - b).abs().mean()


#: Arguments t of the characteristic function [1 / normalised unit].
_CF_POINTS = torch.linspace(0.5, 12.0, 16)


def characteristic_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared distance of the empirical characteristic functions of two batches' pixel values.

    phi(t) = mean over pixels of exp(i t v), at 16 values of t; the distance is the mean of
    |phi_output(t) - phi_target(t)|^2. Two batches of the same intensity distribution score
    0 whatever their pixel order, so it pulls the enhanced patches' histogram towards that of
    clean simulations without a critic.
    """
    t = _CF_POINTS.to(output.device)

    def parts(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        phase = t[:, None] * values.flatten().float()[None, :]
        return torch.cos(phase).mean(1), torch.sin(phase).mean(1)

    (re_a, im_a), (re_b, im_b) = parts(output), parts(target)
    return ((re_a - re_b) ** 2 + (im_a - im_b) ** 2).mean()


def atom_mask(clean: torch.Tensor, share: float = ATOM_SHARE) -> torch.Tensor:
    """1 on the brightest ``share`` of each clean-domain patch (the atom regions), else 0.

    For a simulated patch the clean image itself is given; for an experimental patch, the
    clean generator's (detached) output: the generator guides where the atoms are.
    """
    flat = clean.detach().flatten(1)
    level = torch.quantile(flat.float(), 1 - share, dim=1)
    return (clean.detach() >= level[:, None, None, None]).to(clean.dtype)


def masked_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: float):
    """L1 with atom regions weighted ``1 + weight`` and the rest 1 (normalised by the weights)."""
    weights = 1 + weight * mask
    return (weights * (output - target).abs()).sum() / weights.sum()


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = int(np.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def blur(image: torch.Tensor, sigma: float = LOWPASS_SIGMA) -> torch.Tensor:
    """A separable Gaussian blur of (N, 1, H, W) images (reflected edges)."""
    kernel = _gaussian_kernel(sigma).to(image)
    radius = len(kernel) // 2
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, -1, 1))
    return F.conv2d(rows, kernel.view(1, 1, 1, -1))


def lowpass_loss(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """L1 of the two images blurred by :data:`LOWPASS_SIGMA` px, after removing each one's
    mean: what a translation may change is detail and noise, not where intensity sits."""
    a, b = blur(output), blur(source)
    a = a - a.mean(dim=(2, 3), keepdim=True)
    b = b - b.mean(dim=(2, 3), keepdim=True)
    return (a - b).abs().mean()
