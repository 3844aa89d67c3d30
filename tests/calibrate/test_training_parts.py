"""Simulation of training examples, the network input, loss and error measures."""

import numpy as np
import pytest
import torch

from atomlens.calibrate.metrics import error_summary, resolve_sign
from atomlens.calibrate.network import (
    OUTPUTS,
    SCALES,
    decode,
    network_input,
    sign_free_loss,
)
from atomlens.calibrate.training import simulate_examples
from atomlens.data import RonchigramSampler

SAMPLER = RonchigramSampler(group=4)


@pytest.fixture(scope="module")
def examples():
    return simulate_examples(8, 3, SAMPLER)


def test_examples_are_reproducible_canonical_grids_with_true_coefficients(examples):
    grids, coefficients = examples
    assert grids.shape == (8, 96, 96) and grids.dtype == np.float32
    assert coefficients.shape == (8, 8)
    again, same = simulate_examples(8, 3, SAMPLER)
    np.testing.assert_array_equal(grids, again)
    np.testing.assert_array_equal(coefficients, same)
    other, _ = simulate_examples(8, 4, SAMPLER)
    assert not np.array_equal(grids, other)
    ranges = SAMPLER.ranges
    assert np.all(np.abs(coefficients[:, 0]) <= ranges["C10"][1])
    assert np.all(np.hypot(coefficients[:, 1], coefficients[:, 2]) <= ranges["C12"][1] + 1e-9)
    assert np.all(np.abs(coefficients[:, 7]) <= ranges["C30"][1])
    # normalised to mean 1 inside 0.9 semi-angles of the disc centre, dark far outside it
    axis = (np.arange(96) - 47.5) * 2 * 1.25 / 96
    radius = np.hypot(axis[:, None], axis[None, :])
    assert grids[:, radius < 0.9].mean() == pytest.approx(1.0, abs=0.05)
    assert grids[:, radius > 1.15].mean() < 0.1


def test_network_input_has_signal_and_radius_channels(examples):
    x = network_input(examples[0])
    assert x.shape == (8, 2, 96, 96) and x.dtype == torch.float32
    assert float(x[:, 1].min()) == pytest.approx(-1.0, abs=0.01)  # r^2 - 1 at the centre
    with pytest.raises(ValueError, match="canonical grids"):
        network_input(np.zeros((96, 96)))


def test_regression_loss_ignores_the_overall_sign_and_the_sign_head_learns_it():
    torch.manual_seed(0)
    output = torch.randn(16, OUTPUTS)
    target = torch.randn(16, 8)
    plus, parts_plus = sign_free_loss(output, target, sign_weight=0.0)
    minus, parts_minus = sign_free_loss(output, -target, sign_weight=0.0)
    assert plus.item() == pytest.approx(minus.item())
    # the sign labels are complementary, so the accuracies add up to one
    assert parts_plus["sign_accuracy"] + parts_minus["sign_accuracy"] == pytest.approx(1.0)
    # a perfect mean with the sign logit confidently right gives a small loss
    perfect = torch.cat([target, torch.full((16, 8), -5.0), torch.full((16, 1), 10.0)], dim=1)
    loss, parts = sign_free_loss(perfect, target)
    assert parts["sign_accuracy"] == 1.0 and loss.item() < -30


def test_decode_returns_angstrom_and_probabilities():
    output = torch.zeros(2, OUTPUTS)
    output[:, 0] = 1.0  # C10 = 1 scale unit
    decoded = decode(output)
    assert decoded["mean"][0, 0] == pytest.approx(SCALES[0])
    np.testing.assert_allclose(decoded["scale"], np.broadcast_to(SCALES, (2, 8)))
    np.testing.assert_allclose(decoded["p_plus"], 0.5)


def test_error_summary_on_known_errors():
    truth = np.zeros((4, 8))
    truth[:, 0] = [100.0, -200.0, 300.0, -400.0]
    truth[:, 1] = 50.0
    mean = truth.copy()
    mean[:, 0] += 10.0  # 1 nm error in C10
    mean[:, 2] += 30.0  # 3 nm error in C12b
    mean[1] *= -1  # wrong overall sign for one item
    sigma = np.full((4, 8), 20.0)
    summary = error_summary(mean, sigma, truth)
    assert summary["sign_accuracy"] == 0.75
    assert summary["mae_C10_nm_sign_resolved"] == pytest.approx(1.0)
    assert summary["vector_mae_C12_nm_sign_resolved"] == pytest.approx(3.0)
    assert summary["mae_C10_nm"] > 10  # the wrong sign costs 2 |C10| on that item
    assert summary["coverage_1sigma_C10"] == 1.0 and summary["coverage_1sigma_C12b"] == 0.0
    assert summary["slope_C10_sign_resolved"] == pytest.approx(1.0, abs=0.02)  # +-1 nm errors
    scaled = truth.copy()
    scaled[:, 0] *= 1.15
    assert error_summary(scaled, sigma, truth)["slope_C10_sign_resolved"] == pytest.approx(1.15)
    np.testing.assert_array_equal(resolve_sign(mean, truth, np.ones(8)), [1, -1, 1, 1])
