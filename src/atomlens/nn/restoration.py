"""Image-to-image restoration networks: the CGRDN of paper 001 and its patch discriminator.

Written here from the papers (there is no CPU build of the reference TensorFlow code, and it is
GPL): Y. Zhang et al., CVPR 2018 (residual dense blocks); D.-W. Kim et al., CVPR-W 2019 (grouped
residual dense network, GRDN); I. Lobato, T. Friedrich, S. Van Aert, arXiv:2303.17025 (the
concatenated GRDN, CGRDN, for electron micrographs); P. Isola et al., CVPR 2017 (PatchGAN);
A. Jolicoeur-Martineau, ICLR 2019 (relativistic discriminator).

A CGRDN here: the image is folded into ``downscale**2`` channels (pixel unshuffle), a head
convolution gives ``channels`` features; ``groups`` groups of ``blocks`` residual dense blocks
follow, each group with its own residual; the outputs of all groups are *concatenated* and fused
by a 1x1 convolution (the "C" of CGRDN), added to the head features, and a tail convolution
unfolds them to a correction of the input (pixel shuffle). Working at ``1/downscale`` of the
resolution is what makes the compact variant fast on a CPU: atomic columns 4-6 px apart still
fall on separate cells at ``downscale=2``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ResidualDenseBlock(nn.Module):
    """``layers`` densely connected 3x3 convolutions, a 1x1 fusion and a local residual.

    Parameters
    ----------
    channels : int
        Features in and out.
    growth : int
        Features each dense layer adds.
    layers : int
    """

    def __init__(self, channels: int, growth: int, layers: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(layers)
        )
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.1))
        return x + self.fuse(torch.cat(features, 1))


class ResidualDenseGroup(nn.Module):
    """``blocks`` residual dense blocks and a 1x1 convolution, with the group's residual."""

    def __init__(self, channels: int, growth: int, layers: int, blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(
            *(ResidualDenseBlock(channels, growth, layers) for _ in range(blocks))
        )
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(self.blocks(x))


class CGRDN(nn.Module):
    """Concatenated grouped residual dense network for single-channel image restoration.

    Input and output are (N, 1, H, W) images in the same normalised units; H and W must be
    multiples of ``downscale`` (:func:`atomlens.restore.preprocess.apply_tiled` pads tiles to
    this). The network predicts a correction that is added to the input.

    Parameters
    ----------
    channels : int
        Features of the body.
    groups : int
        Residual dense groups, whose outputs are concatenated.
    blocks : int
        Residual dense blocks per group.
    layers : int
        Dense convolutions per block.
    growth : int
        Features each dense convolution adds.
    downscale : int
        Pixel-unshuffle factor of the body (1: full resolution).

    Examples
    --------
    >>> net = CGRDN(channels=8, groups=2, blocks=1, layers=2, growth=4, downscale=2)
    >>> net(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 1, 16, 16])
    """

    def __init__(
        self,
        channels: int = 32,
        groups: int = 2,
        blocks: int = 2,
        layers: int = 3,
        growth: int = 16,
        downscale: int = 2,
    ):
        super().__init__()
        for name, value in (
            ("channels", channels),
            ("groups", groups),
            ("blocks", blocks),
            ("layers", layers),
            ("growth", growth),
            ("downscale", downscale),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
                raise ValueError(f"CGRDN {name}= must be an integer in [1, 1024], got {value!r}.")
        self.downscale = downscale
        folded = downscale * downscale
        self.head = nn.Conv2d(folded, channels, 3, padding=1)
        self.groups = nn.ModuleList(
            ResidualDenseGroup(channels, growth, layers, blocks) for _ in range(groups)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(groups * channels, channels, 1), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.tail = nn.Conv2d(channels, folded, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # starts as the identity map
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"CGRDN takes (N, 1, H, W) images, got shape {tuple(x.shape)}.")
        if x.shape[-1] % self.downscale or x.shape[-2] % self.downscale:
            raise ValueError(
                f"CGRDN with downscale={self.downscale} needs H and W divisible by it, got "
                f"{tuple(x.shape[-2:])}."
            )
        head = self.head(F.pixel_unshuffle(x, self.downscale))
        outputs, features = [], head
        for group in self.groups:
            features = group(features)
            outputs.append(features)
        body = head + self.fuse(torch.cat(outputs, 1))
        return x + F.pixel_shuffle(self.tail(body), self.downscale)


class PatchDiscriminator(nn.Module):
    """A PatchGAN critic: one realness score per overlapping patch of a (N, 1, H, W) image.

    Parameters
    ----------
    channels : int
        Features of the first layer (doubled at each of the three strided layers).
    """

    def __init__(self, channels: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        width_in = 1
        for i in range(3):
            width_out = channels * 2**i
            layers += [nn.Conv2d(width_in, width_out, 4, stride=2, padding=1)]
            layers += [nn.LeakyReLU(0.2)]
            width_in = width_out
        layers += [nn.Conv2d(width_in, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def relativistic_losses(
    real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relativistic average GAN losses (discriminator, generator) from patch scores.

    The critic learns that real patches are more real than the average fake one and fake less
    real than the average real one; the generator the reverse.
    """
    real_rel = real_scores - fake_scores.mean()
    fake_rel = fake_scores - real_scores.mean()
    bce = F.binary_cross_entropy_with_logits
    critic = bce(real_rel, torch.ones_like(real_rel)) + bce(fake_rel, torch.zeros_like(fake_rel))
    generator = bce(real_rel, torch.zeros_like(real_rel)) + bce(fake_rel, torch.ones_like(fake_rel))
    return critic / 2, generator / 2
