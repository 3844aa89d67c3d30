"""The segmentation U-Net, its structure conditioning, the contrastive term and tiling."""

import numpy as np
import pytest
import torch

from atomlens.nn import SegmentationUNet, contrastive_loss
from atomlens.nn.tiling import apply_tiled


def _tokens(batch: int, count: int = 6, total: int = 10, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(batch, total, 7, generator=generator)
    mask = torch.ones(batch, total, dtype=torch.bool)
    mask[:, :count] = False
    return tokens, mask


def test_the_unet_maps_any_size_to_one_logit_map_per_class():
    model = SegmentationUNet(classes=2, width=4, depth=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 40, 52))
    assert out.shape == (2, 2, 40, 52)
    assert model.embeddings() is None


def test_the_conditioned_network_needs_its_structure():
    model = SegmentationUNet(width=4, depth=2, structure_features=7)
    with pytest.raises(ValueError, match="structure"):
        model(torch.randn(1, 1, 16, 16))


def test_padding_tokens_and_token_order_do_not_change_the_maps():
    torch.manual_seed(0)
    model = SegmentationUNet(width=4, depth=2, structure_features=7).eval()
    image = torch.randn(2, 1, 24, 24)
    tokens, mask = _tokens(2)
    with torch.no_grad():
        base = model(image, tokens, mask)
        image_embedding, structure_embedding = model.embeddings()
        padded = tokens.clone()
        padded[:, 6:] = 100.0  # only padding changes
        assert torch.allclose(model(image, padded, mask), base, atol=1e-5)
        order = torch.tensor([3, 1, 5, 0, 2, 4, 6, 7, 8, 9])
        assert torch.allclose(model(image, tokens[:, order], mask[:, order]), base, atol=1e-5)
        other, _ = _tokens(2, seed=1)
        assert not torch.allclose(model(image, other, mask), base, atol=1e-3)
    assert image_embedding.shape == structure_embedding.shape == (2, 32)
    assert torch.allclose(image_embedding.norm(dim=1), torch.ones(2))


def test_the_contrastive_loss_rewards_matching_pairs_and_ignores_same_group_negatives():
    rng = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(4, 8, generator=rng), dim=1)
    groups = torch.arange(4)
    matched = contrastive_loss(image, image, groups)
    shuffled = contrastive_loss(image, image[[1, 2, 3, 0]], groups)
    assert matched < shuffled
    # with every item in one group there are no negatives: the loss is 0
    assert contrastive_loss(image, image[[1, 2, 3, 0]], torch.zeros(4)) == pytest.approx(0.0)


def test_tiling_joins_channel_maps_like_the_untiled_result():
    image = np.random.default_rng(0).normal(size=(150, 97)).astype(np.float32)

    def two_channels(tiles):
        return np.stack([tiles, -3 * tiles], axis=1)

    tiled = apply_tiled(image, two_channels, tile=64, overlap=16)
    assert tiled.shape == (2, 150, 97)
    np.testing.assert_allclose(tiled[0], image, atol=1e-5)
    np.testing.assert_allclose(tiled[1], -3 * image, atol=1e-5)
