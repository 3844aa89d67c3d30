"""Neural-network building blocks shared by the tasks (torchvision-free: there is no CPU build).

- ``AlexNetRegressor``, ``ResNet18Regressor``: the classic architectures with their classifier
  replaced by a linear regression output, as in paper 000.
- ``VAERegressor``: a variational autoencoder with a regression head on its latent mean
  (Zhao et al., MICCAI 2019), paper 000's third baseline.
- ``CGRDN``: the concatenated grouped residual dense network of paper 001 (image restoration), with
  ``PatchDiscriminator`` and ``relativistic_losses`` for its optional adversarial training.
- ``CyclePair``, ``CycleGenerator``: the unpaired enhancement generators of thesis 003 (a
  transformer and a frequency branch in the bottleneck), with ``least_squares_losses``.
- ``SegmentationUNet``: the U-Net column segmentor, optionally conditioned on structure tokens
  by self- and cross-attention (paper 002), with ``contrastive_loss``.
- :mod:`atomlens.nn.tiling`: networks on any image size in blended, overlapping tiles.
"""

from atomlens.nn.enhancement import (
    CycleGenerator,
    CyclePair,
    SpectralFilter,
    least_squares_losses,
)
from atomlens.nn.regressors import AlexNetRegressor, ResNet18Regressor, VAERegressor, vae_loss
from atomlens.nn.restoration import CGRDN, PatchDiscriminator, relativistic_losses
from atomlens.nn.segmentation import SegmentationUNet, contrastive_loss

__all__ = [
    "CGRDN",
    "AlexNetRegressor",
    "CycleGenerator",
    "CyclePair",
    "PatchDiscriminator",
    "ResNet18Regressor",
    "SegmentationUNet",
    "SpectralFilter",
    "VAERegressor",
    "contrastive_loss",
    "least_squares_losses",
    "relativistic_losses",
    "vae_loss",
]
