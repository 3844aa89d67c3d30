"""The CGRDN, its loss and its inference helper."""

import numpy as np
import pytest
import torch

from atomlens.nn import CGRDN, PatchDiscriminator, relativistic_losses
from atomlens.restore.network import (
    ARCHITECTURES,
    build_network,
    predict_normalised,
    restoration_loss,
)

TINY = {"channels": 8, "groups": 2, "blocks": 1, "layers": 2, "growth": 4, "downscale": 2}


def test_a_fresh_network_is_the_identity():
    net = CGRDN(**TINY)
    x = torch.randn(2, 1, 32, 48)
    assert torch.equal(net(x), x)


def test_groups_are_concatenated_and_fused():
    net = CGRDN(**TINY)
    assert net.fuse[0].in_channels == TINY["groups"] * TINY["channels"]


@pytest.mark.parametrize("size", sorted(ARCHITECTURES))
def test_shipped_sizes_build_with_their_parameter_counts(size):
    with torch.device("meta"):
        net = build_network(size)
    count = sum(p.numel() for p in net.parameters())
    assert (count < 1e6) if size == "compact" else (count > 1e6)


def test_bad_shapes_and_arguments_are_refused():
    net = CGRDN(**TINY)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(1, 1, 31, 32))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError, match="channels"):
        CGRDN(channels=0)
    with pytest.raises(ValueError, match="size must be one of"):
        build_network("huge")


def test_predict_pads_odd_sizes_and_keeps_the_shape():
    net = CGRDN(**TINY)
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    tiles = np.random.default_rng(0).normal(size=(3, 37, 41)).astype(np.float32)
    out = predict_normalised(net, tiles)
    assert out.shape == tiles.shape and out.dtype == np.float32
    bf16 = predict_normalised(net, tiles, dtype=torch.bfloat16)
    assert np.abs(bf16 - out).max() < 0.1


def test_adaptive_loss_weighs_low_contrast_images_up():
    target = torch.zeros(2, 1, 16, 16)
    target[0] = torch.randn(16, 16)  # strong contrast
    target[1] = 0.01 * torch.randn(16, 16)  # faint
    error = torch.full_like(target, 0.1)
    _loss, parts = restoration_loss(target + error, target)
    assert parts["l1"] == pytest.approx(0.1, rel=1e-5)
    assert parts["adaptive"] > 2 * parts["l1"]  # the faint image dominates the relative error
    perfect, _ = restoration_loss(target, target)
    assert float(perfect) == 0


def test_relativistic_losses_reward_the_right_side():
    real, fake = torch.full((4, 1, 2, 2), 3.0), torch.full((4, 1, 2, 2), -3.0)
    critic, generator = relativistic_losses(real, fake)
    assert float(critic) < 0.01 and float(generator) > 5
    assert PatchDiscriminator()(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 8, 8)
