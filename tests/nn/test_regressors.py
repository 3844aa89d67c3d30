import pytest
import torch

from atomlens.nn import AlexNetRegressor, ResNet18Regressor, VAERegressor, vae_loss


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_architectures_match_the_originals():
    # torchvision's AlexNet (61,100,840) and ResNet18 (11,689,512) with 3 input channels and 1000
    # classes, less the parameters of the replaced last layer and of the two missing input channels
    assert _count(AlexNetRegressor()) == 61_100_840 - 4096 * 1000 - 1000 + 4096 + 1 - 2 * 64 * 121
    assert _count(ResNet18Regressor()) == 11_689_512 - 512 * 1000 - 1000 + 512 + 1 - 2 * 64 * 49


@pytest.mark.parametrize("size", [64, 96, 128])
def test_output_shapes(size):
    x = torch.randn(3, 1, size, size)
    assert AlexNetRegressor(outputs=2)(x).shape == (3, 2)
    assert ResNet18Regressor(outputs=5, width=8)(x).shape == (3, 5)
    prediction, reconstruction, mean, log_var = VAERegressor(size, latent=4, outputs=2)(x)
    assert prediction.shape == (3, 2) and reconstruction.shape == x.shape
    assert mean.shape == log_var.shape == (3, 4)


def test_resnet_learns_a_simple_regression():
    torch.manual_seed(0)
    images = torch.randn(32, 1, 32, 32)
    target = images.mean(dim=(1, 2, 3))[:, None] * 10
    model = ResNet18Regressor(width=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = torch.nn.functional.l1_loss(model(images), target)
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.3 * first


def test_vae_loss_is_finite_and_decreases():
    torch.manual_seed(0)
    images = torch.rand(16, 1, 32, 32)
    target = images.mean(dim=(1, 2, 3))[:, None]
    model = VAERegressor(32, latent=4)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = vae_loss(model(images), images, target, beta=0.1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_vae_size_must_be_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        VAERegressor(50)
