"""What ``atomlens train`` and ``atomlens.train`` refuse, before the work and in one line.

Each test is a failure the fuzz suite (tests/fuzz/test_fuzz_train.py) found: a value that crashed
the process, ran without end, overwrote a user's file, or ended in an internal error.
"""

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from atomlens.calibrate.training import build_network, make_chunk
from atomlens.cli import main
from atomlens.cli import train as train_command
from atomlens.core.validation import ParameterError, SizeLimitError
from atomlens.data import RONCHIGRAM_PRIORS
from atomlens.train import (
    ExampleBank,
    TrainingDivergedError,
    TrainingSettings,
    fit_streaming,
    generate_bank,
)
from atomlens.train.distributed import resolve_device


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A bank of 2 simulated examples and a validation bank of 2."""
    folder = tmp_path_factory.mktemp("refusals") / "bank"
    generate_bank(folder, lambda seed: make_chunk(seed, chunk_size=2), [0], progress=False)
    generate_bank(folder / "validation", lambda seed: make_chunk(seed, chunk_size=2), [500000],
                  progress=False)  # fmt: skip
    return folder


def _fit(bank, output, *words):
    return ["train", "calibrate", "fit", "--bank", str(bank), "-o", str(output), "--steps", "1",
            "--width", "2", "--batch", "2", "--threads", "1", *words]  # fmt: skip


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("atomlens train: error: "), err
    return lines[0]


# the parser builds without torch


def test_building_the_parser_imports_no_torch():
    # the train command's parser imported atomlens.data (torch, scipy) for the --prior names
    code = (
        "import sys, types, argparse, atomlens\n"
        "package = types.ModuleType('atomlens.cli')\n"
        "package.__path__ = [atomlens.__path__[0] + '/cli']\n"
        "sys.modules['atomlens.cli'] = package\n"
        "from atomlens.cli import train\n"
        "train.add_parser(argparse.ArgumentParser().add_subparsers())\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_prior_choices_are_the_sampler_priors():
    assert train_command.PRIORS == tuple(sorted(RONCHIGRAM_PRIORS))


def test_the_specimen_choices_are_the_bank_specimens():
    from atomlens.calibrate.training import SPECIMENS

    assert train_command.SPECIMENS == tuple(SPECIMENS)


# values that crashed the process or never ended


def test_a_huge_thread_count_is_refused_before_torch_sees_it(bank, tmp_path, capsys):
    # torch.set_num_threads(2**31 - 1) made the OpenMP runtime abort the whole process
    assert main(_fit(bank, tmp_path / "model", "--threads", str(2**31 - 1))) == 2
    assert "--threads must lie in [1, " in _one_line(capsys)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch", "1000000000", "--batch-size (batch size) must lie in [1, 4096]"),  # was OOM
        ("--lr", "inf", "--lr (peak learning rate) must be a finite number"),  # was exit 1
        ("--lr", "1000", "--lr (peak learning rate) must lie in (0, 1]"),
        ("--steps", str(2**63), "--steps (step budget) must lie in [1, 1e+09]"),
        ("--minutes", "1e300", "--minutes (wall-clock budget) must lie in (0, 1e+06] min"),
        ("--seed", str(2**70), "--seed (random seed) must lie in [0, "),  # was "Overflow..."
        ("--device", "meta", "Device 'meta' is not supported"),  # was exit 1
        ("--width", "257", "--width (network base width) must lie in [1, 256]"),
        ("--log-every", "0", "--log-every (interval) must lie in [1, 1e+09] steps"),
    ],
)
def test_fit_settings_are_refused_before_the_work(bank, tmp_path, capsys, flag, value, message):
    start = time.perf_counter()
    assert main(_fit(bank, tmp_path / "model", flag, value)) == 2
    assert message in _one_line(capsys)
    assert time.perf_counter() - start < 5 and not (tmp_path / "model").exists()


def test_a_batch_over_the_memory_limit_is_refused(bank, monkeypatch):
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "0.01")
    settings = TrainingSettings(minutes=None, steps=1, batch_size=4096)
    with pytest.raises(SizeLimitError, match="a batch of 4096 examples"):
        fit_streaming(build_network(1), None, ExampleBank(bank), settings, progress=False)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--chunk-size", "10000000", "canonical grids would take 343 GiB"),  # ran for hours
        ("--chunks", "1000000000", "--chunks (number of items) must lie in [1, 1e+07]"),  # OOM
        ("--device", "meta", "Device 'meta' is not supported"),  # was an internal error
        ("--device", "cuda:-1", "Unknown device 'cuda:-1'"),
        ("--seed", str(2**63), "--seed (random seed) must lie in [0, "),
    ],
)
def test_generate_settings_are_refused_before_the_work(tmp_path, capsys, flag, value, message):
    argv = ["train", "calibrate", "generate", "--bank", str(tmp_path / "bank"), "--chunks", "1",
            "--chunk-size", "1", flag, value]  # fmt: skip
    start = time.perf_counter()
    assert main(argv) == 2
    assert message in _one_line(capsys)
    assert time.perf_counter() - start < 5 and not (tmp_path / "bank").exists()


def test_a_device_is_a_cpu_or_an_existing_gpu():
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("meta", "mps", "xla", "", "gpu", "cuda:-1"):
        with pytest.raises(ValueError, match=r"(?i)device"):
            resolve_device(bad)


# files the user had


def test_an_existing_checkpoint_is_replaced_only_with_overwrite(bank, tmp_path, capsys):
    # --checkpoint notes.txt replaced the user's file with a checkpoint
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's file")
    assert main(_fit(bank, tmp_path / "model", "--checkpoint", str(notes))) == 2
    assert "pass --resume to continue from it, --overwrite to replace it" in _one_line(capsys)
    assert notes.read_text() == "the user's file" and not (tmp_path / "model").exists()


def test_the_checkpoint_may_not_be_the_card(bank, tmp_path, capsys):
    card = tmp_path / "card.md"
    card.write_text("# my model\n")
    argv = _fit(bank, tmp_path / "model", "--card", str(card), "--checkpoint", str(card))
    assert main([*argv, "--overwrite"]) == 2
    assert "would replace the input" in _one_line(capsys)
    assert card.read_text() == "# my model\n"


def test_the_checkpoint_may_not_be_a_bank_chunk(bank, tmp_path, capsys):
    chunk = bank / "chunk_000000.npz"
    before = chunk.read_bytes()
    argv = _fit(bank, tmp_path / "model", "--checkpoint", str(chunk), "--overwrite")
    assert main(argv) == 2
    assert "would replace the input" in _one_line(capsys)
    assert chunk.read_bytes() == before


@pytest.mark.parametrize("which", ["-o", "--checkpoint"])
def test_an_output_inside_a_file_is_refused_before_the_work(bank, tmp_path, capsys, which):
    # -o notes.txt/model failed only after the training, with "[Errno 20] Not a directory"
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's file")
    inside = notes / "x"
    extra = ["--checkpoint", str(inside)] if which == "--checkpoint" else []
    output = inside if which == "-o" else tmp_path / "model"
    start = time.perf_counter()
    assert main([*_fit(bank, output), *extra]) == 2
    assert f"{notes} is a file, so nothing can be made in it" in _one_line(capsys)
    assert time.perf_counter() - start < 5 and notes.read_text() == "the user's file"


def test_generate_refuses_a_bank_that_is_a_file_before_the_work(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's file")
    for target, message in ((notes, "is a file; a bank is a folder"),
                            (notes / "bank", "so no bank folder can be made in it")):  # fmt: skip
        argv = ["train", "calibrate", "generate", "--bank", str(target), "--chunks", "1",
                "--chunk-size", "1"]  # fmt: skip
        assert main(argv) == 2
        assert message in _one_line(capsys)
    assert notes.read_text() == "the user's file"


# damaged inputs


def test_a_checkpoint_of_another_width_is_refused_in_one_line(bank, tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert main(_fit(bank, tmp_path / "a", "--checkpoint", str(checkpoint))) == 0
    capsys.readouterr()
    argv = _fit(bank, tmp_path / "b", "--checkpoint", str(checkpoint), "--resume", "--width", "4")
    assert main(argv) == 2  # was an internal error with a many-line traceback
    line = _one_line(capsys)
    assert "does not fit this model" in line and "size mismatch" in line


def test_a_damaged_chunk_is_named(bank, tmp_path):
    damaged = tmp_path / "bank"
    damaged.mkdir()
    (damaged / "chunk_000000.npz").write_bytes(b"not a chunk")
    with pytest.raises(ValueError, match=r"chunk_000000.npz is not a readable bank chunk"):
        ExampleBank(damaged)
    np.savez(damaged / "chunk_000000.npz", grids=np.full((2, 96, 96), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        ExampleBank(damaged)


def test_a_bank_of_another_task_is_refused_before_training(tmp_path, capsys):
    other = tmp_path / "bank"
    generate_bank(other, lambda seed: {"images": np.ones((2, 8, 8))}, [0], progress=False)
    generate_bank(other / "validation", lambda seed: {"images": np.ones((2, 8, 8))}, [1],
                  progress=False)  # fmt: skip
    assert main(_fit(other, tmp_path / "model")) == 2
    assert "not this task's 'grids' and 'coefficients'" in _one_line(capsys)


class _Diverging:
    """A task whose loss is NaN from the first step."""

    def loss(self, model, batch, rng, device):
        return sum(p.sum() for p in model.parameters()) * math.nan, {}

    def validate(self, model, arrays):
        return {}


def test_a_diverging_training_is_a_value_error(bank):
    settings = TrainingSettings(minutes=None, steps=2, batch_size=1)
    with pytest.raises(TrainingDivergedError, match="lower learning rate") as error:
        fit_streaming(build_network(1), _Diverging(), ExampleBank(bank), settings, progress=False)
    assert isinstance(error.value, ValueError) and isinstance(error.value, FloatingPointError)


def test_settings_are_checked_at_the_library_boundary():
    for changes in ({"lr": math.inf}, {"ema": 1.0}, {"seed": -1}, {"checkpoint_every": 0},
                    {"minutes": math.nan}, {"batch_size": 4097}):  # fmt: skip
        with pytest.raises(ParameterError):
            TrainingSettings(**({"minutes": None, "steps": 1} | changes))
    with pytest.raises(ParameterError, match="width="):
        build_network(0)
    with pytest.raises(ParameterError, match="chunk_size="):
        make_chunk(0, chunk_size=0)
    assert Path(__file__).name == "test_refusals.py"
