"""The enhance training recipe: bank chunks, the real domain, a short run end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atomlens import cli
from atomlens.enhance import enhance
from atomlens.enhance.network import build_network
from atomlens.enhance.preprocess import PATCH
from atomlens.enhance.training import (
    EnhancementTraining,
    LossWeights,
    affine_psnr,
    check_examples,
    load_real_images,
    make_chunk,
)
from atomlens.io import write_tiff
from atomlens.zoo import load_model


def _lattice_counts(size: int = 160, period: float = 10.0, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[:size, :size] + 0.5
    clean = 20 + 100 * np.cos(np.pi * y / period) ** 8 * np.cos(np.pi * x / period) ** 8
    return np.random.default_rng(seed).poisson(clean).astype(np.float32)


def test_a_chunk_holds_canonical_patches_of_both_kinds():
    chunk = make_chunk(7, chunk_size=3)
    assert chunk["clean"].shape == chunk["noisy"].shape == (3, 1, PATCH, PATCH)
    assert chunk["clean"].dtype == np.float16
    assert np.all((chunk["spacing_px"] > 1.3) & (chunk["spacing_px"] < 48))
    # each patch is normalised: median 0 within its image, spread about 1
    assert np.abs(np.median(chunk["clean"].astype(np.float32))) < 0.5
    again = make_chunk(7, chunk_size=3)
    assert np.array_equal(chunk["clean"], again["clean"])  # item i of stream 7, always


def test_real_images_are_read_at_the_canonical_scale(tmp_path):
    path = write_tiff(tmp_path / "real.tif", _lattice_counts(), pixel_size=0.2)
    (image,) = load_real_images([path])
    assert image.shape == (128, 128)  # 160 px with columns 10 px apart -> 8 px apart
    with pytest.raises(ValueError, match="at least one"):
        load_real_images([])
    flat = write_tiff(tmp_path / "noise.tif", np.random.default_rng(1).normal(size=(96, 96)))
    with pytest.raises(ValueError, match="no lattice"):
        load_real_images([flat])


def test_one_step_of_the_loss_trains_generators_and_critics():
    real = load_real_images_from_array(_lattice_counts())
    task = EnhancementTraining(real)
    pair = build_network("compact")
    batch = {"clean": make_chunk(3, chunk_size=2)["clean"]}
    loss, parts = task.loss(pair, batch, np.random.default_rng(0), torch.device("cpu"))
    assert torch.isfinite(loss)
    expected = {"adversarial", "cycle", "identity", "lowpass", "frequency", "characteristic"}
    assert expected | {"critic"} == set(parts)
    loss.backward()
    assert pair.to_clean.tail.weight.grad.abs().sum() > 0
    assert task.critics is not None


def load_real_images_from_array(image: np.ndarray) -> list[np.ndarray]:
    from atomlens.enhance.training import _canonical_normalised

    return [_canonical_normalised(image, 10.0)]


def test_real_patches_are_flipped_copies_of_the_images():
    image = np.arange(70 * 90, dtype=np.float32).reshape(70, 90)
    task = EnhancementTraining([image])
    patches = task.real_batch(5, np.random.default_rng(0))
    assert patches.shape == (5, 1, PATCH, PATCH)
    for patch in patches[:, 0]:
        rows = np.diff(patch, axis=1)
        assert np.all(np.abs(rows) == 1)  # neighbours along x differ by 1: a crop, maybe flipped


def test_bad_settings_and_banks_are_refused():
    with pytest.raises(ValueError, match="cycle"):
        LossWeights(cycle=-1)
    with pytest.raises(ValueError, match="at least 64"):
        EnhancementTraining([np.zeros((32, 32))])
    with pytest.raises(ValueError, match="not an enhance bank"):
        check_examples({"inputs": np.zeros((1, 1, 8, 8))}, "BANK")


def test_affine_psnr_ignores_contrast_and_offset():
    target = np.random.default_rng(0).random((2, 16, 16))
    assert np.all(affine_psnr(3 * target + 7, target) > 100)
    noisy = target + 0.1 * np.random.default_rng(1).normal(size=target.shape)
    assert np.all(affine_psnr(noisy, target) < 30)


def test_a_short_training_run_end_to_end(tmp_path):
    """generate -> fit (with a real image file) -> the model folder -> enhance with it."""
    bank = tmp_path / "bank"
    assert cli.main(["train", "enhance", "generate", "--bank", str(bank), "--chunks", "1",
                     "--chunk-size", "4"]) == 0  # fmt: skip
    assert cli.main(["train", "enhance", "generate", "--bank", str(bank / "validation"),
                     "--seed", "500000", "--chunks", "1", "--chunk-size", "2"]) == 0  # fmt: skip
    real = write_tiff(tmp_path / "real.tif", _lattice_counts(), pixel_size=0.2)
    model = tmp_path / "model"
    assert cli.main(["train", "enhance", "fit", "--bank", str(bank), "--real", str(real),
                     "--steps", "3", "--batch", "2", "-o", str(model)]) == 0  # fmt: skip
    _, config = load_model(model)
    assert config["task"] == "image-enhancement" and config["modalities"] == ["haadf"]
    assert config["real_training_files"] == ["real.tif"]
    assert set(config["validation"]) == {"psnr_input", "psnr", "lowpass"}
    assert (model / "training_log.json").is_file()
    image = _lattice_counts(seed=5)
    out = enhance(image, model=model, check_lattice=False)
    assert out.shape == image.shape and np.isfinite(out).all()
