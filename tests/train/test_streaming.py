"""The streaming trainer: learns, resumes exactly, and trains the same under torchrun (DDP)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from atomlens.train import ExampleBank, TrainingSettings, fit_streaming, generate_bank


class LineTask:
    """Fit y = 3 x + 1 with a Linear(1, 1): the answer is known."""

    def loss(self, model, batch, rng, device):
        x = torch.as_tensor(batch["x"], dtype=torch.float32, device=device)
        y = torch.as_tensor(batch["y"], dtype=torch.float32, device=device)
        loss = torch.nn.functional.mse_loss(model(x)[:, 0], y)
        return loss, {"mse": loss.item()}

    def validate(self, model, arrays):
        with torch.no_grad():
            x = torch.as_tensor(arrays["x"], dtype=torch.float32)
            error = model(x)[:, 0].numpy() - arrays["y"]
        return {"rmse": float(np.sqrt(np.mean(error**2)))}


def _line_chunk(seed):
    x = np.random.default_rng(seed).uniform(-1, 1, (64, 1))
    return {"x": x, "y": 3 * x[:, 0] + 1}


@pytest.fixture
def bank(tmp_path):
    generate_bank(tmp_path / "bank", _line_chunk, range(4), progress=False)
    generate_bank(tmp_path / "bank" / "validation", _line_chunk, [500], progress=False)
    return tmp_path / "bank"


def _settings(**changes):
    base = dict(
        minutes=None,
        steps=200,
        batch_size=16,
        lr=0.1,
        ema=0.9,
        warmup=0.05,
        log_every=50,
        validate_every=100,
        refresh_every=100,
        checkpoint_every=70,
    )
    return TrainingSettings(**(base | changes))


def test_fit_streaming_learns_a_known_line_and_logs_validation(bank):
    torch.manual_seed(0)
    records = []
    validation = ExampleBank(bank / "validation").arrays()
    untrained = torch.nn.Linear(1, 1)
    assert LineTask().validate(untrained, validation)["rmse"] > 1.0
    run = fit_streaming(
        untrained,
        LineTask(),
        ExampleBank(bank),
        _settings(),
        validation=validation,
        progress=False,
        on_record=records.append,
    )
    assert run.steps == 200 and run.examples == 256
    assert float(run.model.weight) == pytest.approx(3.0, abs=0.05)
    assert float(run.model.bias) == pytest.approx(1.0, abs=0.05)
    assert [r["step"] for r in records] == [50, 100, 150, 200]
    assert "rmse" in records[1] and "rmse" not in records[0]
    assert records[-1]["rmse"] < 0.05


def test_a_resumed_run_equals_an_uninterrupted_one(bank, tmp_path):
    def run(settings, **kwargs):
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1)
        return fit_streaming(
            model, LineTask(), ExampleBank(bank), settings, progress=False, **kwargs
        )

    straight = run(_settings(steps=140))

    def interrupt(record):
        if record["step"] == 100:  # after the checkpoint of step 70
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(_settings(steps=140), checkpoint=tmp_path / "run.pt", on_record=interrupt)
    resumed = run(_settings(steps=140), checkpoint=tmp_path / "run.pt", resume=True)
    assert resumed.steps == 140

    def untimed(log):
        return [{k: v for k, v in record.items() if k != "minutes"} for record in log]

    assert untimed(resumed.log) == untimed(straight.log)
    torch.testing.assert_close(resumed.model.weight, straight.model.weight, rtol=0, atol=0)
    torch.testing.assert_close(resumed.model.bias, straight.model.bias, rtol=0, atol=0)
    with pytest.raises(ValueError, match="checkpoint path"):
        run(_settings(), resume=True)


def test_settings_refuse_an_impossible_run():
    with pytest.raises(ValueError, match="budget"):
        TrainingSettings(minutes=None, steps=None)
    with pytest.raises(ValueError, match="batch_size"):
        TrainingSettings(batch_size=0)


DDP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    sys.path.insert(0, sys.argv[2])
    from test_streaming import LineTask
    from atomlens.train import ExampleBank, TrainingSettings, fit_streaming
    from atomlens.train.distributed import setup

    torch.set_num_threads(1)
    distributed = setup("cpu")
    torch.manual_seed(0)
    run = fit_streaming(torch.nn.Linear(1, 1), LineTask(), ExampleBank(sys.argv[1]),
                        TrainingSettings(minutes=None, steps=200, batch_size=8, lr=0.1, ema=0.5,
                                         log_every=50), distributed=distributed, progress=False)
    result = json.dumps({"rank": distributed.rank, "world": distributed.world_size,
                      "weight": float(run.model.weight), "bias": float(run.model.bias),
                      "steps": run.steps, "records": len(run.log)})
    open(f"{sys.argv[3]}/rank{distributed.rank}.json", "w").write(result)
    distributed.close()
    """
)


@pytest.mark.slow
def test_two_processes_under_torchrun_train_one_model(bank, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29533",
            str(script),
            str(bank),
            str(Path(__file__).parent),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank*.json"))]
    assert sorted(r["rank"] for r in lines) == [0, 1] and {r["world"] for r in lines} == {2}
    assert {r["steps"] for r in lines} == {200}  # rank 0's clock stops both together
    zero, one = sorted(lines, key=lambda r: r["rank"])
    # DDP keeps the replicas identical; only rank 0 logs
    assert zero["weight"] == one["weight"] and zero["bias"] == one["bias"]
    assert zero["records"] == 4 and one["records"] == 0
    assert zero["weight"] == pytest.approx(3.0, abs=0.1)
