"""Image regressors: AlexNet, ResNet18 and a VAE with a regression head.

Written here from the original papers because torchvision has no CPU build in this environment:
A. Krizhevsky et al., NeurIPS 2012 (AlexNet, the single-GPU variant of torchvision);
K. He et al., CVPR 2016 (ResNet18, basic blocks [2, 2, 2, 2]);
Q. Zhao et al., MICCAI 2019 (VAE for regression). Inputs are one-channel images (N, 1, H, W).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F


class AlexNetRegressor(nn.Module):
    """AlexNet features with the classifier's last layer replaced by Linear(4096, outputs).

    Parameters
    ----------
    outputs : int
        Regressed values.
    in_channels : int
    dropout : float
    """

    def __init__(self, outputs: int = 1, in_channels: int = 1, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 36, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, outputs),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, outputs); H, W at least 63 px."""
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class _BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Regressor(nn.Module):
    """ResNet18 with the final fully connected layer replaced by Linear(512, outputs).

    Parameters
    ----------
    outputs : int
    in_channels : int
    width : int
        Channels of the first stage (64 in the original); smaller widths train faster on a CPU.
    """

    def __init__(self, outputs: int = 1, in_channels: int = 1, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
        )  # fmt: skip
        stages, channels = [], width
        for index, out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if index == 0 else 2
            stages += [_BasicBlock(channels, out, stride), _BasicBlock(out, out, 1)]
            channels = out
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, outputs)."""
        features = F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1)
        return self.fc(torch.flatten(features, 1))


class VAERegressor(nn.Module):
    """A convolutional VAE whose latent mean also feeds a linear regression head.

    Parameters
    ----------
    size : int
        Input size [px], a multiple of 16 (square images).
    latent : int
        Latent dimension.
    outputs : int
        Regressed values; 0 makes it a plain VAE (the prediction is then empty, (N, 0)), as the
        encoder of VAE-EM (paper 004) is.
    """

    def __init__(self, size: int = 64, latent: int = 16, outputs: int = 1):
        super().__init__()
        if size % 16:
            raise ValueError(f"VAERegressor needs a size that is a multiple of 16, got {size}.")
        self.size, self.latent = size, latent
        channels = (1, 32, 64, 128, 256)
        encoder = []
        for a, b in itertools.pairwise(channels):
            encoder += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU(True)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        flat = 256 * (size // 16) ** 2
        self.mean = nn.Linear(flat, latent)
        self.log_var = nn.Linear(flat, latent)
        self.regressor = nn.Linear(latent, outputs) if outputs else None
        self.expand = nn.Linear(latent, flat)
        decoder = []
        for a, b in zip(channels[:0:-1], channels[-2::-1], strict=True):
            last = b == 1
            decoder += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)]
            decoder += [] if last else [nn.BatchNorm2d(b), nn.ReLU(True)]
        self.decoder = nn.Sequential(*decoder)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (prediction (N, outputs), reconstruction (N, 1, H, W), mean, log variance)."""
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden).clamp(-10, 10)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        grid = self.expand(z).view(-1, 256, self.size // 16, self.size // 16)
        prediction = self.regressor(mean) if self.regressor is not None else mean[:, :0]
        return prediction, self.decoder(grid), mean, log_var


def vae_loss(
    output: tuple[torch.Tensor, ...], image: torch.Tensor, target: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """MAE of the regression + reconstruction error + beta * KL, each averaged per sample.

    A VAE without a regression head (``outputs=0``) has no MAE term; ``target`` is then unused.
    """
    prediction, reconstruction, mean, log_var = output
    mae = F.l1_loss(prediction, target) if prediction.numel() else prediction.new_zeros(())
    reconstruction_error = F.mse_loss(reconstruction, image, reduction="sum") / len(image)
    kl = -0.5 * torch.sum(1 + log_var - mean**2 - log_var.exp()) / len(image)
    return mae + reconstruction_error / image[0].numel() + beta * kl / image[0].numel()
