"""What training the VAE of VAE-EM (paper 004) needs from the calibrate task (``atomlens.train``).

- :func:`make_chunk`: a bank chunk of the calibrate task's own schema (canonical ``grids``,
  ``coefficients``, ``prior``), drawn from the ``focus-astigmatism`` prior on amorphous specimens
  only: the specimens a calibration is taken on.
- :class:`VAETraining`: the VAE's loss (reconstruction of the Ronchigram's power spectrum plus
  beta x KL, :func:`atomlens.nn.vae_loss`) on grids seen through one of the 8 symmetries of the
  square per batch, and its validation, as :func:`atomlens.train.fit_streaming` asks.
- :func:`save_vae`: encode the bank, fit the simulator's map from aberrations to latent codes
  (:class:`~atomlens.calibrate.latent.LatentMap`, the prior mean of VAE-EM) and write the model
  folder; :func:`refit_map` fits the map of a trained VAE again on another bank.

The command is ``atomlens train calibrate vae-generate|vae-fit|vae-refit``
(:mod:`atomlens.cli.train`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atomlens.calibrate.latent import LatentMap, encode_grids
from atomlens.calibrate.spectra import SPECTRUM_SIZE, ronchigram_spectra
from atomlens.calibrate.symmetry import COEFFICIENTS, ELEMENTS, transform_grids
from atomlens.calibrate.training import check_examples_size, simulate_examples
from atomlens.core.validation import check_parameter
from atomlens.data.ronchigrams import RONCHIGRAM_PRIORS, RonchigramSampler
from atomlens.io import atomic_write
from atomlens.nn import VAERegressor, vae_loss
from atomlens.train._ranges import check_setting
from atomlens.train.bank import ExampleBank
from atomlens.train.distributed import resolve_device
from atomlens.train.streaming import StreamingRun
from atomlens.zoo import save_model
from atomlens.zoo.registry import CONFIG

__all__ = [
    "PRIOR",
    "TASK",
    "VAETraining",
    "build_vae",
    "fit_latent_map",
    "make_chunk",
    "refit_map",
    "sampler",
    "save_vae",
]

#: The ``task`` a model folder of the VAE declares in its config.
TASK = "ronchigram-vae"
#: The aberration prior of its training Ronchigrams (:data:`~atomlens.data.RONCHIGRAM_PRIORS`).
PRIOR = "focus-astigmatism"
#: Examples of the bank the latent map is fitted on (the first of the bank).
MAP_EXAMPLES = 50_000


def sampler() -> RonchigramSampler:
    """The training distribution: the ``focus-astigmatism`` prior, amorphous specimens only."""
    return RonchigramSampler(ranges=dict(RONCHIGRAM_PRIORS[PRIOR]), crystal_fraction=0.0)


def make_chunk(
    seed: int, *, chunk_size: int = 512, device: str | None = None
) -> dict[str, np.ndarray]:
    """One bank chunk: ``grids`` (float16), ``coefficients`` [Å] and the prior's name.

    Parameters
    ----------
    seed : int
        The chunk's seed, in [0, 2^63).
    chunk_size : int
        Ronchigrams in the chunk, in [1, 1e7].
    device : str, optional
        Torch device of the simulation; None or "auto" take a GPU when there is one.
    """
    seed = check_setting("seed", seed)
    chunk_size = check_parameter("chunk_size", chunk_size, kind="count")
    check_examples_size(chunk_size, "a bank chunk (chunk_size=)")
    device = None if device in (None, "auto") else str(resolve_device(device))
    grids, coefficients = simulate_examples(chunk_size, seed, sampler(), device=device)
    return {
        "grids": grids.astype(np.float16),
        "coefficients": coefficients,
        "prior": np.array(PRIOR),
    }


def build_vae(latent: int = 8) -> VAERegressor:
    """The VAE on 32 x 32 power spectra, ``latent`` in [2, 64] dimensions, no regression head."""
    if not isinstance(latent, int | np.integer) or not 2 <= latent <= 64:
        raise ValueError(f"latent must be an integer in [2, 64], got {latent!r}.")
    return VAERegressor(size=SPECTRUM_SIZE, latent=int(latent), outputs=0)


def _spectra_tensor(grids: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    spectra = ronchigram_spectra(np.asarray(grids, dtype=np.float32))
    return torch.as_tensor(spectra[:, None], device=device)


class VAETraining:
    """The VAE's loss and validation for :func:`atomlens.train.fit_streaming`.

    Parameters
    ----------
    beta : float
        Weight of the KL term (per spectrum pixel, as :func:`atomlens.nn.vae_loss` normalises).
    """

    def __init__(self, beta: float = 1.0):
        if not (np.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a positive number, got {beta!r}.")
        self.beta = float(beta)

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO of the batch's spectra, the grids turned by one symmetry of the square."""
        turns, transpose = ELEMENTS[rng.integers(len(ELEMENTS))]
        grids = transform_grids(batch["grids"].astype(np.float32), turns, transpose)
        spectra = _spectra_tensor(np.ascontiguousarray(grids), device)
        output = model(spectra)
        loss = vae_loss(output, spectra, spectra.new_zeros((len(spectra), 0)), beta=self.beta)
        return loss, {}

    def validate(
        self, model: torch.nn.Module, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Reconstruction MSE of the spectra and the mean KL per example [nats]."""
        with torch.no_grad():
            spectra = _spectra_tensor(arrays["grids"][:2048])
            _, reconstruction, mean, log_var = model(spectra)
            kl = -0.5 * torch.sum(1 + log_var - mean**2 - log_var.exp(), dim=1)
        return {
            "reconstruction_mse": float(torch.mean((reconstruction - spectra) ** 2)),
            "kl_nats": float(kl.mean()),
        }


def fit_latent_map(
    model: torch.nn.Module, bank: ExampleBank, validation: Mapping[str, np.ndarray]
) -> tuple[LatentMap, int, dict[str, float]]:
    """The simulator's code map fitted on (up to :data:`MAP_EXAMPLES` of) the bank, its noise
    and scores from the validation examples; also the number of examples it was fitted on."""
    count = min(len(bank), MAP_EXAMPLES)
    codes, coefficients = [], []
    for start in range(0, count, 4096):  # in parts: the spectra's windows take memory
        arrays = bank.take(np.arange(start, min(start + 4096, count)))
        codes.append(encode_grids(model, arrays["grids"]))
        coefficients.append(arrays["coefficients"])
    check_codes = encode_grids(model, validation["grids"])
    latent_map = LatentMap.fit(np.concatenate(coefficients), np.concatenate(codes))
    latent_map = latent_map.with_noise(validation["coefficients"], check_codes)
    return latent_map, count, latent_map.score(validation["coefficients"], check_codes)


def refit_map(model_folder: str | Path, bank: str | Path) -> dict[str, float]:
    """Refit the code map of a trained VAE on a bank (its validation set in BANK/validation);
    rewrite its config. The weights (and their SHA-256) are untouched."""
    from atomlens.calibrate.training import check_examples
    from atomlens.calibrate.vae_estimate import load_vae

    model_folder, bank = Path(model_folder), Path(bank)
    if not model_folder.is_dir():
        raise NotADirectoryError(f"{model_folder} is not a model folder (config.json, weights).")
    model, _, config = load_vae(str(model_folder))
    load_vae.cache_clear()
    examples = ExampleBank(bank)
    check_examples(examples.take(np.arange(1)), str(bank))
    validation = ExampleBank(bank / "validation").arrays()
    check_examples(validation, str(bank / "validation"))
    latent_map, count, metrics = fit_latent_map(model, examples, validation)
    config["latent_map"] = latent_map.to_dict()
    config["map_examples"] = count
    rounded = {k: round(v, 4) for k, v in metrics.items()}
    config["validation"] = config.get("validation", {}) | rounded
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(model_folder / CONFIG, lambda tmp: tmp.write_text(text), overwrite=True)
    return metrics


def save_vae(
    run: StreamingRun,
    output: str | Path,
    *,
    bank: ExampleBank,
    validation: Mapping[str, np.ndarray],
    latent: int,
    beta: float,
    card: str | None = None,
    overwrite: bool = False,
) -> dict[str, float]:
    """Fit the latent map on the bank, check it on the validation set, write the model folder.

    Writes ``model.safetensors`` (the VAE), ``config.json`` (task, the latent map's parameters,
    the sampler and prior, training facts, validation numbers), ``README.md`` (``card``) and
    ``training_log.json``. Returns the validation numbers.
    """
    model = run.model.eval()
    latent_map, count, metrics = fit_latent_map(model, bank, validation)
    metrics |= VAETraining(beta).validate(model, validation)
    extra: dict[str, Any] = {
        "task": TASK,
        "coefficients": list(COEFFICIENTS),
        "latent_map": latent_map.to_dict(),
        "distribution": sampler().describe(),
        "prior": PRIOR,
        "map_examples": count,
        "training": run.describe() | {"latent": latent, "beta": beta},
        "validation": {k: round(v, 4) for k, v in metrics.items()},
    }
    card = card or "# Ronchigram VAE for VAE-EM\n"
    save_model(
        model,
        output,
        arguments={"size": SPECTRUM_SIZE, "latent": latent, "outputs": 0},
        card=card,
        extra=extra,
        log=run.log,
        overwrite=overwrite,
    )
    return metrics
