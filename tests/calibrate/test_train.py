"""The training command end to end on a tiny bank: generate, fit, recalibrate, estimate."""

import json

import numpy as np
import pytest

from atomlens.calibrate import estimate, load_estimator
from atomlens.calibrate.train import bank_priors, load_bank, main


def test_generate_fit_recalibrate_and_use_a_model(tmp_path):
    bank = tmp_path / "bank"
    main(["generate", "--bank", str(bank), "--seed", "0", "--chunks", "1", "--chunk-size", "8"])
    main(["generate", "--bank", str(bank), "--seed", "1000", "--chunks", "1", "--chunk-size",
          "8", "--prior", "corrected"])  # fmt: skip
    main(["generate", "--bank", str(bank / "validation"), "--seed", "500000", "--chunks", "1",
          "--chunk-size", "8"])  # fmt: skip
    grids, truth = load_bank(bank)
    assert grids.shape == (16, 96, 96) and truth.shape == (16, 8)
    assert bank_priors(bank) == {"broad": 8, "corrected": 8}
    corrected = np.load(bank / "chunk_001000.npz")["coefficients"]
    assert np.all(np.abs(corrected[:, 7]) <= 2e4)  # the corrected prior's C30 range [Å]

    model = tmp_path / "model"
    main(["fit", "--bank", str(bank), "--output", str(model), "--minutes", "0.05", "--batch", "4",
          "--log-every", "1", "--validate-every", "2", "--reload-every", "2"])  # fmt: skip
    config = json.loads((model / "config.json").read_text())
    assert config["task"] == "ronchigram-aberrations" and config["training"]["steps"] >= 1
    assert config["examples_per_prior"] == {"broad": 8, "corrected": 8}
    main(["recalibrate", "--model", str(model), "--bank", str(bank / "validation")])
    refit = json.loads((model / "config.json").read_text())
    assert refit["sha256"] == config["sha256"] and len(refit["sigma_factors"]) == 8

    load_estimator.cache_clear()
    # a canonical grid is itself a Ronchigram sampled at 2.5 x 30 / 96 = 0.78125 mrad per pixel
    result = estimate(grids[0].astype(np.float32), energy=200e3, semiangle=30.0,
                      angular_sampling=0.78125, model=str(model))  # fmt: skip
    assert result.values.shape == (8,) and np.all(result.sigma > 0)


def test_fit_without_a_bank_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate step"):
        main(["fit", "--bank", str(tmp_path), "--output", str(tmp_path / "m"), "--minutes", "0.01"])
