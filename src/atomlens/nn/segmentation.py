"""Column segmentation networks: a compact U-Net, optionally conditioned on the crystal structure.

``SegmentationUNet`` is the U-Net of Ronneberger et al. (2015), the architecture of AtomAI's
Segmentor that paper 002 compares against, sized for a CPU: ``depth`` poolings, ``width``
channels at full resolution doubling per level, two 3x3 convolutions with group normalisation
and SiLU per level, bilinear upsampling with skip concatenation, one logit map per class.

With ``structure_features > 0`` it becomes paper 002's structure-conditioned model: the
material's projected unit cell, one token per column (its coordinates and contrast, see
:func:`atomlens.locate.network.structure_tokens`), is embedded, mixed by self-attention among
the tokens, and read at the bottleneck by cross-attention from every image position, after a
self-attention layer over the image positions. ``embeddings`` gives the pooled image and
structure embeddings for the contrastive term that ties the two together.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    groups = 4 if channels_out % 4 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1),
        nn.GroupNorm(groups, channels_out),
        nn.SiLU(),
        nn.Conv2d(channels_out, channels_out, 3, padding=1),
        nn.GroupNorm(groups, channels_out),
        nn.SiLU(),
    )


class StructureAttention(nn.Module):
    """Self-attention over the image positions, then cross-attention to structure tokens.

    Parameters
    ----------
    channels : int
        Bottleneck channels (a multiple of ``heads``).
    structure_features : int
        Features per structure token.
    heads : int
    """

    def __init__(self, channels: int, structure_features: int, heads: int = 4):
        super().__init__()
        self.embed = nn.Sequential(
            nn.Linear(structure_features, channels), nn.SiLU(), nn.Linear(channels, channels)
        )
        self.token_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.token_norm = nn.LayerNorm(channels)
        self.image_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.image_norm = nn.LayerNorm(channels)
        self.cross_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.cross_norm = nn.LayerNorm(channels)

    def tokens(self, structure: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embedded, self-attended tokens (B, T, C); ``mask`` (B, T) is True for padding."""
        tokens = self.embed(structure)
        mixed, _ = self.token_attention(tokens, tokens, tokens, key_padding_mask=mask)
        return self.token_norm(tokens + mixed)

    def forward(
        self, features: torch.Tensor, structure: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioned features (B, C, H, W) and the tokens (B, T, C)."""
        batch, channels, rows, cols = features.shape
        flat = features.flatten(2).transpose(1, 2)  # (B, HW, C)
        attended, _ = self.image_attention(flat, flat, flat)
        flat = self.image_norm(flat + attended)
        tokens = self.tokens(structure, mask)
        read, _ = self.cross_attention(flat, tokens, tokens, key_padding_mask=mask)
        flat = self.cross_norm(flat + read)
        return flat.transpose(1, 2).reshape(batch, channels, rows, cols), tokens


class SegmentationUNet(nn.Module):
    """U-Net giving one logit map per class; conditioned on structure tokens when asked.

    Parameters
    ----------
    classes : int
        Output maps.
    width : int
        Channels at full resolution (doubled per level).
    depth : int
        Poolings (the input side must be a multiple of ``2**depth``).
    structure_features : int
        Features per structure token; 0 gives the plain U-Net.
    embedding : int
        Size of the contrastive embeddings (structure-conditioned model only).
    """

    def __init__(
        self,
        classes: int = 2,
        width: int = 16,
        depth: int = 3,
        structure_features: int = 0,
        embedding: int = 32,
    ):
        super().__init__()
        if not 1 <= depth <= 5 or width < 4 or classes < 1:
            raise ValueError(
                f"depth in [1, 5], width >= 4, classes >= 1; got {depth}, {width}, {classes}."
            )
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(1, widths[0])] + [_block(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.up = nn.ModuleList(
            [_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.structure_features = structure_features
        self.condition = (
            StructureAttention(widths[-1], structure_features) if structure_features else None
        )
        if structure_features:
            self.image_projection = nn.Linear(widths[-1], embedding)
            self.structure_projection = nn.Linear(widths[-1], embedding)
        self._embeddings: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(
        self,
        image: torch.Tensor,
        structure: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, classes, H, W) of an image batch (B, 1, H, W).

        ``structure`` (B, T, structure_features) and its padding ``mask`` (B, T, True where
        padded) are required by the conditioned model and ignored by the plain one.
        """
        skips = []
        x = image
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else functional.max_pool2d(x, 2))
            skips.append(x)
        if self.condition is not None:
            if structure is None or mask is None:
                raise ValueError(
                    "This network is conditioned on a structure: pass structure and mask."
                )
            x, tokens = self.condition(x, structure, mask)
            keep = (~mask).unsqueeze(-1).float()
            pooled_tokens = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)
            self._embeddings = (
                functional.normalize(self.image_projection(x.mean((2, 3))), dim=-1),
                functional.normalize(self.structure_projection(pooled_tokens), dim=-1),
            )
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = functional.interpolate(
                x, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Unit image and structure embeddings (B, embedding) of the last forward pass."""
        return self._embeddings


def contrastive_loss(
    image: torch.Tensor, structure: torch.Tensor, groups: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Symmetric InfoNCE between image and structure embeddings of a batch.

    Item i's image should be closest to item i's structure; items of the same ``groups`` value
    (the same material and zone axis) are not counted as negatives of each other.
    """
    logits = image @ structure.T / temperature
    same = groups[:, None] == groups[None, :]
    eye = torch.eye(len(groups), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(groups), device=logits.device)
    forward = functional.cross_entropy(logits, target)
    return 0.5 * (forward + functional.cross_entropy(logits.T, target))
