import json

import pytest
import torch

from atomlens.train import fit


def _problem():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    model = torch.nn.Linear(4, 1)

    def step(model, batch):
        inputs, target = batch
        loss = torch.nn.functional.l1_loss(model(inputs), target)
        return loss, {"mae": loss.item()}

    return model, step, batches


def test_fit_reduces_the_loss_and_logs_every_epoch(tmp_path):
    model, step, batches = _problem()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=10, gamma=0.1)
    log = tmp_path / "log.jsonl"
    history = fit(
        model,
        step,
        batches,
        epochs=12,
        optimiser=optimiser,
        scheduler=scheduler,
        validation_batches=batches[:1],
        log_path=log,
        progress=False,
    )
    assert history.epochs[-1]["loss"] < 0.2 * history.epochs[0]["loss"]
    assert "val_mae" in history.epochs[-1]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 12
    assert lines[9]["lr"] == pytest.approx(0.3) and lines[10]["lr"] == pytest.approx(0.03)


def test_fit_stops_on_a_non_finite_loss():
    model, _, batches = _problem()

    def step(model, batch):
        return model(batch[0]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="nan"):
        fit(
            model,
            step,
            batches,
            epochs=1,
            optimiser=torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False,
        )
