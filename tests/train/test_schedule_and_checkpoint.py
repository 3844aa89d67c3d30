"""Budgets, the learning-rate schedule and checkpoints."""

import itertools
import math

import numpy as np
import pytest
import torch

from atomlens.train import Budget, warmup_cosine
from atomlens.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def test_budget_fraction_takes_whichever_limit_comes_first():
    assert Budget(minutes=2).fraction(seconds=60, step=10**6) == pytest.approx(0.5)
    assert Budget(minutes=2, steps=100).fraction(seconds=60, step=75) == pytest.approx(0.75)
    for bad in ({}, {"minutes": 0}, {"minutes": math.nan}, {"steps": 0}):
        with pytest.raises(ValueError):
            Budget(**bad)


def test_warmup_then_cosine_down_to_the_floor():
    assert warmup_cosine(0.0) == 0.005  # the floor
    assert warmup_cosine(0.03) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.03)))
    assert warmup_cosine(0.5) == pytest.approx(0.5)
    values = [warmup_cosine(f) for f in np.linspace(0.03, 1.0, 50)]
    assert all(a >= b for a, b in itertools.pairwise(values))  # decreasing


def test_checkpoint_round_trip_keeps_tensors_numbers_and_the_random_state(tmp_path):
    rng = np.random.default_rng(7)
    rng.random(3)
    model = torch.nn.Linear(2, 1)
    state = Checkpoint(
        model=model.state_dict(),
        average=model.state_dict(),
        optimiser=torch.optim.AdamW(model.parameters()).state_dict(),
        step=12,
        seconds=3.5,
        rng=rng.bit_generator.state,
        log=[{"step": 12, "loss": 0.5}],
    )
    path = save_checkpoint(tmp_path / "run.pt", state)
    loaded = load_checkpoint(path)
    torch.testing.assert_close(loaded.model["weight"], model.weight.detach())
    assert (loaded.step, loaded.seconds, loaded.log) == (12, 3.5, [{"step": 12, "loss": 0.5}])
    again = np.random.default_rng(0)
    again.bit_generator.state = loaded.rng
    np.testing.assert_array_equal(again.random(4), rng.random(4))
    (tmp_path / "foreign.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an atomlens training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="resume=False"):
        load_checkpoint(tmp_path / "missing.pt")


def test_device_choice_refuses_what_is_not_there():
    from atomlens.train.distributed import setup

    assert setup("cpu").device == torch.device("cpu") and not setup("cpu").active
    with pytest.raises(ValueError, match="Unknown device 'bogus'"):
        setup("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            setup("cuda")
