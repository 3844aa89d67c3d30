"""The training command end to end on a tiny bank: generate, fit, resume, recalibrate, estimate."""

import json

import numpy as np
import pytest
import torch

from atomlens.calibrate import estimate, load_estimator
from atomlens.calibrate.network import SCALES, predict_grids
from atomlens.calibrate.training import SPECIMENS, make_chunk, simulate_examples
from atomlens.cli import main
from atomlens.data import RONCHIGRAM_PRIORS, RonchigramSampler
from atomlens.train import ExampleBank
from atomlens.zoo import load_model


def _train(*args):
    assert main(["train", "calibrate", *map(str, args), "--threads", "1"]) == 0


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    bank = tmp_path_factory.mktemp("train") / "bank"
    _train("generate", "--bank", bank, "--seed", 0, "--chunks", 1, "--chunk-size", 8)
    _train(
        "generate",
        "--bank",
        bank,
        "--seed",
        1000,
        "--chunks",
        1,
        "--chunk-size",
        8,
        "--prior",
        "corrected",
    )
    _train(
        "generate",
        "--bank",
        bank / "validation",
        "--seed",
        500000,
        "--chunks",
        1,
        "--chunk-size",
        8,
    )
    return bank


def test_generate_writes_the_sampler_examples_of_each_seed_and_prior(bank):
    arrays = ExampleBank(bank).arrays()
    assert arrays["grids"].shape == (16, 96, 96) and arrays["coefficients"].shape == (16, 8)
    assert ExampleBank(bank).count_by("prior", "broad") == {"broad": 8, "corrected": 8}
    # chunk 1000 is exactly what the corrected prior's sampler draws from seed 1000
    corrected = RonchigramSampler(ranges=dict(RONCHIGRAM_PRIORS["corrected"]))
    grids, truth = simulate_examples(8, 1000, corrected)
    with np.load(bank / "chunk_001000.npz") as chunk:
        np.testing.assert_array_equal(chunk["coefficients"], truth)
        np.testing.assert_array_equal(chunk["grids"], grids.astype(np.float16))
    assert np.all(np.abs(truth[:, 7]) <= 2e4)  # the corrected prior's C30 range [Å]


def test_fit_resume_recalibrate_and_use_a_model(bank, tmp_path, capsys):
    model = tmp_path / "model"
    checkpoint = tmp_path / "run.pt"
    common = [
        "--bank",
        bank,
        "--batch",
        4,
        "--log-every",
        1,
        "--validate-every",
        2,
        "--refresh-every",
        2,
        "--checkpoint",
        checkpoint,
        "--minutes",
        5,
    ]
    _train("fit", *common, "--steps", 3, "-o", model)
    records = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"step"')
    ]
    assert [r["step"] for r in records] == [1, 2, 3] and "sign_accuracy" in records[1]
    config = json.loads((model / "config.json").read_text())
    assert config["task"] == "ronchigram-aberrations" and config["training"]["steps"] == 3
    assert config["training"]["settings"]["minutes"] == 5 and config["training"]["minutes"] < 5
    assert config["examples_per_prior"] == {"broad": 8, "corrected": 8}
    assert config["distribution"]["energy_eV"] == 200e3

    # an existing model is never replaced silently; --resume continues the same run
    refused = ["train", "calibrate", "fit", *map(str, common), "--steps", "5", "-o", str(model)]
    assert main(refused) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    _train("fit", *common, "--steps", 5, "--resume", "-o", model, "--overwrite")
    resumed = json.loads((model / "config.json").read_text())
    assert resumed["training"]["steps"] == 5
    log = json.loads((model / "training_log.json").read_text())
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]

    # recalibrate: the sigma factors are mean(|error| / Laplace scale) on the validation bank
    _train("recalibrate", "--model", model, "--bank", bank / "validation")
    refit = json.loads((model / "config.json").read_text())
    assert refit["sha256"] == resumed["sha256"]
    network, _ = load_model(model)
    validation = ExampleBank(bank / "validation").arrays()
    decoded = predict_grids(network, validation["grids"])
    truth = validation["coefficients"]
    plus = (np.abs(decoded["mean"] - truth) / SCALES).sum(axis=1)
    minus = (np.abs(decoded["mean"] + truth) / SCALES).sum(axis=1)
    best = np.where(plus <= minus, 1.0, -1.0)[:, None]
    expected = (np.abs(decoded["mean"] - best * truth) / decoded["scale"]).mean(axis=0)
    np.testing.assert_allclose(refit["sigma_factors"], expected.round(4), atol=1e-4)

    load_estimator.cache_clear()
    # a canonical grid is itself a Ronchigram sampled at 2.5 x 30 / 96 = 0.78125 mrad per pixel
    grid = ExampleBank(bank).arrays()["grids"][0].astype(np.float32)
    result = estimate(
        grid, energy=200e3, semiangle=30.0, angular_sampling=0.78125, model=str(model)
    )
    assert result.values.shape == (8,) and np.all(np.isfinite(result.values))
    assert np.all(result.sigma > 0)


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("m", ["--minutes", "0.01"], "generate the bank first"),
        ("m", ["--width", "100000"], "--width"),
        ("m", ["--resume"], "--checkpoint"),
        (".", ["--overwrite"], "would replace the input"),
        ("m", ["--init", "ronchigram-vae"], "not a 'ronchigram-aberrations' network"),
        ("m", ["--init", "ronchigram-aberrations", "--width", "8"], "of width 16"),
        ("m", ["--init", "no-such-model"], "No model 'no-such-model'"),
    ],
)
def test_fit_refusals_name_the_problem(tmp_path, capsys, output, extra, message):
    command = ["train", "calibrate", "fit", "--bank", str(tmp_path), "-o", str(tmp_path / output)]
    assert main([*command, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_generate_hard_core_specimens(tmp_path):
    bank = tmp_path / "bank"
    _train("generate", "--bank", bank, "--seed", 7, "--chunks", 1, "--chunk-size", 4,
           "--specimen", "hard-core")  # fmt: skip
    assert ExampleBank(bank).count_by("specimen", "independent") == {"hard-core": 4}
    with np.load(bank / "chunk_000007.npz") as chunk:
        grids = chunk["grids"]
    sampler = RonchigramSampler(**SPECIMENS["hard-core"])
    assert sampler.hard_core == (0.3, 0.6) and sampler.amorphous_thickness[1] == 300.0
    np.testing.assert_array_equal(grids, simulate_examples(4, 7, sampler)[0].astype(np.float16))
    with pytest.raises(ValueError, match="Unknown specimen"):
        make_chunk(7, chunk_size=4, specimen="crystal")


def test_fit_starts_from_the_weights_of_init(bank, tmp_path):
    common = ["--bank", bank, "--batch", 4, "--steps", 1, "--minutes", 5, "--lr", 1e-9]
    _train("fit", *common, "-o", tmp_path / "fresh")
    _train("fit", *common, "--init", "ronchigram-aberrations", "-o", tmp_path / "tuned")
    shipped = load_model("ronchigram-aberrations")[0].state_dict()
    fresh = load_model(tmp_path / "fresh")[0].state_dict()
    tuned = load_model(tmp_path / "tuned")[0].state_dict()
    key = "stem.0.weight" if "stem.0.weight" in shipped else next(iter(shipped))
    torch.testing.assert_close(tuned[key], shipped[key], atol=1e-6, rtol=0)
    assert not torch.allclose(fresh[key], shipped[key])
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["training"]["settings"]["initial_weights"] == "ronchigram-aberrations"
