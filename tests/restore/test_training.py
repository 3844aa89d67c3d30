"""The restore task's training recipe, end to end at toy scale."""

import json

import numpy as np
import pytest
import torch

from atomlens.cli import main
from atomlens.nn import CGRDN
from atomlens.restore import load_restorer
from atomlens.restore.training import (
    RestorationTraining,
    check_examples,
    make_chunk,
    psnr_db,
    save_restorer,
)
from atomlens.train import ExampleBank, TrainingSettings, fit_streaming, write_chunk
from atomlens.zoo import load_model

TINY = {"channels": 8, "groups": 2, "blocks": 1, "layers": 2, "growth": 4, "downscale": 2}


@pytest.fixture(scope="module")
def chunk():
    return make_chunk(3, modality="mixed", chunk_size=3, size=32)


def test_a_chunk_holds_normalised_pairs_of_one_stream(chunk):
    assert chunk["inputs"].shape == chunk["targets"].shape == (3, 1, 32, 32)
    assert chunk["inputs"].dtype == np.float16
    assert np.isfinite(chunk["targets"].astype(np.float32)).all()
    assert np.all((chunk["pixel_size"] >= 0.05) & (chunk["pixel_size"] <= 0.6))
    # the input is scaled to median 0: its median is near 0, and the target tracks the input
    inputs = chunk["inputs"].astype(np.float32)
    assert np.abs(np.median(inputs.reshape(3, -1), axis=1)).max() < 0.02
    again = make_chunk(3, modality="mixed", chunk_size=3, size=32)
    assert np.array_equal(again["inputs"], chunk["inputs"])


def test_a_restore_bank_is_recognised(chunk):
    check_examples(chunk, "chunk")
    with pytest.raises(ValueError, match="not a restore bank"):
        check_examples({"grids": chunk["inputs"]}, "a calibrate bank")


def test_psnr_of_a_known_error():
    target = np.zeros((1, 10, 10))
    target[0, 0, 0] = 1.0
    assert psnr_db(target + 0.1, target)[0] == pytest.approx(20.0)


def test_fit_save_and_load_round_trip(tmp_path, chunk):
    write_chunk(tmp_path / "bank", 0, chunk)
    bank = ExampleBank(tmp_path / "bank")
    settings = TrainingSettings(minutes=None, steps=4, batch_size=2, log_every=2,
                                validate_every=2)  # fmt: skip
    task = RestorationTraining(adversarial=0.1)
    validation = bank.arrays()
    run = fit_streaming(CGRDN(**TINY), task, bank, settings, validation=validation, progress=False)
    assert run.steps == 4 and "psnr" in run.log[-1] and "critic" in run.log[-1]
    assert task.critic is not None
    with pytest.raises(KeyError):  # the tiny network is not one of the named sizes
        save_restorer(run, tmp_path / "model", size="tiny", bank=bank, validation=validation,
                      modalities=["mixed"])  # fmt: skip


def test_bad_training_settings_are_refused():
    with pytest.raises(ValueError, match="adversarial"):
        RestorationTraining(adversarial=2)
    with pytest.raises(ValueError, match="adaptive"):
        RestorationTraining(adaptive=-1)


def test_train_restore_commands_make_a_loadable_model(tmp_path):
    bank = tmp_path / "bank"
    common = ["--chunk-size", "2", "--size", "32", "--threads", "1"]
    assert (
        main(["train", "restore", "generate", "--bank", str(bank), "--chunks", "1", *common]) == 0
    )
    assert main(["train", "restore", "generate", "--bank", str(bank / "validation"), "--seed",
                 "500000", "--chunks", "1", *common]) == 0  # fmt: skip
    model = tmp_path / "model"
    assert main(["train", "restore", "fit", "--bank", str(bank), "-o", str(model), "--minutes",
                 "1", "--steps", "2", "--batch", "2", "--threads", "1"]) == 0  # fmt: skip
    network, config = load_model(model)
    assert config["task"] == "image-restoration" and config["size"] == "compact"
    assert "psnr" in config["validation"]
    restorer = load_restorer(model)
    tiles = np.random.default_rng(0).normal(size=(1, 40, 40)).astype(np.float32)
    assert restorer(tiles).shape == (1, 40, 40)
    assert isinstance(network, torch.nn.Module)


def test_generate_shot_noise_pairs_and_fine_tune_a_model(tmp_path):
    """--distortions shot --dose sets the sampler; --init starts from a model's weights."""
    bank = tmp_path / "bank"
    common = ["--chunk-size", "2", "--size", "32", "--threads", "1"]
    assert main(["train", "restore", "generate", "--bank", str(bank), "--chunks", "1",
                 "--distortions", "shot", "--dose", "0.1,0.2", *common]) == 0  # fmt: skip
    sampler = json.loads(str(np.load(next(bank.glob("chunk_*.npz")))["sampler"]))
    assert sampler["distortions"] == "shot" and sampler["dose_per_pixel"] == [0.1, 0.2]
    assert main(["train", "restore", "generate", "--bank", str(bank / "validation"), "--seed",
                 "500000", "--chunks", "1", "--dose", "1,5", *common]) == 0  # fmt: skip
    chunk = next((bank / "validation").glob("chunk_*.npz"))
    validation = json.loads(str(np.load(chunk)["sampler"]))
    assert validation["chain_dose_per_pixel"] == [1.0, 5.0]
    tuned = tmp_path / "tuned"
    assert main(["train", "restore", "fit", "--bank", str(bank), "-o", str(tuned), "--init",
                 "restore-compact", "--minutes", "1", "--steps", "1", "--batch", "2",
                 "--lr", "1e-9", "--threads", "1"]) == 0  # fmt: skip
    shipped, _ = load_model("restore-compact")
    network, _ = load_model(tuned)
    # a learning rate of 1e-9 leaves the shipped weights where they were: fine-tuning starts there
    for a, b in zip(shipped.parameters(), network.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    wrong = ["--init", "restore-compact", "--network", "full", "--steps", "1"]
    assert main(["train", "restore", "fit", "--bank", str(bank), "-o", str(tmp_path / "x"),
                 *wrong]) == 2  # fmt: skip
