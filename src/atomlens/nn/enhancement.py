"""The unpaired enhancement networks of thesis 003 (chapter 3): a CycleGAN generator pair.

- :class:`CycleGenerator`: a small U-shaped generator (two strided stages to 1/4 resolution)
  whose bottleneck joins a vision-transformer branch (self-attention over the 1/4-resolution
  feature tokens: long-range lattice order) and a frequency branch (:class:`SpectralFilter`: a
  learned filter on the lowest Fourier modes of each feature map: the lattice's reflections).
  The output is the input plus a learned correction.
- :class:`CyclePair`: the two generators, experiment -> clean (``to_clean``) and clean ->
  experiment (``to_experiment``), as one module so that one optimiser, one weight average and
  one model folder hold both.
- :func:`least_squares_losses`: the least-squares GAN losses CycleGAN uses.

No normalisation layers: statistics that depend on the tile would make tiled inference of a
large image differ from tile to tile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CycleGenerator", "CyclePair", "SpectralFilter", "least_squares_losses"]


class SpectralFilter(nn.Module):
    """A learned filter on the lowest ``modes`` Fourier modes of each channel, then a 1x1 mix.

    Per channel, the real FFT of the feature map is multiplied by learned complex weights for
    the |ky| < ``modes``, kx < ``modes`` modes (the rest are passed unchanged), as in a global
    filter network; the weights do not depend on the input size, so any size works.
    """

    def __init__(self, channels: int, modes: int = 8):
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(torch.zeros(channels, 2 * modes, modes, 2))
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        m_y = min(self.modes, rows // 2)
        m_x = min(self.modes, spectrum.shape[-1])
        weight = torch.view_as_complex(self.weight.float().contiguous())
        gain = torch.ones_like(spectrum[0])
        gain[:, :m_y, :m_x] = 1 + weight[:, :m_y, :m_x]
        gain[:, rows - m_y :, :m_x] = 1 + weight[:, self.modes * 2 - m_y :, :m_x]
        filtered = torch.fft.irfft2(spectrum * gain, s=(rows, cols), norm="ortho")
        return self.mix(filtered.to(x.dtype))


class _TransformerBottleneck(nn.Module):
    """Self-attention over the feature tokens, with a depthwise-convolution position code."""

    def __init__(self, channels: int, depth: int, heads: int):
        super().__init__()
        self.position = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        layer = nn.TransformerEncoderLayer(
            channels,
            heads,
            dim_feedforward=2 * channels,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = (x + self.position(x)).flatten(2).transpose(1, 2)
        return self.encoder(tokens).transpose(1, 2).reshape(n, c, h, w)


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GELU())


class CycleGenerator(nn.Module):
    """Image-to-image generator for (N, 1, H, W) images, H and W multiples of 4.

    Parameters
    ----------
    channels : int
        Features at full resolution (twice as many at 1/2, ``width`` at 1/4).
    width : int
        Features of the bottleneck (the transformer's token size).
    depth : int
        Transformer layers.
    heads : int
        Attention heads (``width`` must be a multiple).
    modes : int
        Fourier modes per axis of the frequency branch.
    """

    downscale = 4

    def __init__(
        self, channels: int = 16, width: int = 48, depth: int = 2, heads: int = 4, modes: int = 8
    ):
        super().__init__()
        if width % heads:
            raise ValueError(f"width={width} must be a multiple of heads={heads}.")
        self.head = nn.Sequential(_conv(1, channels), _conv(channels, channels))
        self.down1 = nn.Sequential(nn.Conv2d(channels, 2 * channels, 4, 2, 1), nn.GELU())
        self.down2 = nn.Sequential(nn.Conv2d(2 * channels, width, 4, 2, 1), nn.GELU())
        self.attention = _TransformerBottleneck(width, depth, heads)
        self.frequency = SpectralFilter(width, modes)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(width, 2 * channels, 4, 2, 1), nn.GELU())
        self.merge2 = _conv(4 * channels, 2 * channels)
        self.up1 = nn.Sequential(nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), nn.GELU())
        self.merge1 = _conv(2 * channels, channels)
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.head(x)
        half = self.down1(full)
        quarter = self.down2(half)
        quarter = quarter + self.attention(quarter) + self.frequency(quarter)
        half = self.merge2(torch.cat([self.up2(quarter), half], 1))
        full = self.merge1(torch.cat([self.up1(half), full], 1))
        return x + self.tail(full)


class CyclePair(nn.Module):
    """The two generators of an unpaired translation: ``to_clean`` and ``to_experiment``.

    ``forward`` is ``to_clean`` (what enhancement runs); the keyword arguments go to both.
    """

    downscale = CycleGenerator.downscale

    def __init__(self, **generator: int):
        super().__init__()
        self.to_clean = CycleGenerator(**generator)
        self.to_experiment = CycleGenerator(**generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_clean(x)


def least_squares_losses(
    real_scores: torch.Tensor | None, fake_scores: torch.Tensor
) -> torch.Tensor:
    """Least-squares GAN loss: the critic's (``real_scores`` given) or the generator's (None).

    Critic: ((D(real) - 1)^2 + D(fake)^2) / 2; generator: (D(fake) - 1)^2.
    """
    if real_scores is None:
        return F.mse_loss(fake_scores, torch.ones_like(fake_scores))
    real = F.mse_loss(real_scores, torch.ones_like(real_scores))
    fake = F.mse_loss(fake_scores, torch.zeros_like(fake_scores))
    return (real + fake) / 2
