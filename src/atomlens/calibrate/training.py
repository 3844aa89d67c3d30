"""What training the aberration estimator needs from the calibrate task, for ``atomlens.train``.

- :func:`simulate_examples`: Ronchigrams from :class:`~atomlens.data.RonchigramSampler`, through
  this task's preprocessing, as (canonical grids, true coefficients): training, validation and test
  sets (they differ only in their seeds).
- :func:`make_chunk`: one bank chunk of such examples.
- :class:`EstimatorTraining`: the loss of a batch (one of the grid's 8 symmetries per batch, the
  sign-free Laplace loss) and the validation metrics, as :func:`atomlens.train.fit_streaming`
  asks.
- :func:`save_estimator`, :func:`recalibrate`: fit the uncertainty factors on validation data and
  write the model folder.

The command is ``atomlens train calibrate generate|fit|recalibrate`` (:mod:`atomlens.cli.train`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from atomlens.calibrate.metrics import error_summary, resolve_sign
from atomlens.calibrate.network import (
    OUTPUTS,
    SCALES,
    laplace_sigma,
    network_input,
    predict_grids,
    sign_free_loss,
)
from atomlens.calibrate.preprocess import CANONICAL_SIZE, canonical_grid, ronchigram_input
from atomlens.calibrate.symmetry import (
    COEFFICIENTS,
    ELEMENTS,
    transform_coefficients,
    transform_grids,
)
from atomlens.core.validation import check_parameter, check_size
from atomlens.data.ronchigrams import RONCHIGRAM_PRIORS, RonchigramSampler
from atomlens.io import atomic_write
from atomlens.nn import ResNet18Regressor
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.train._ranges import check_setting
from atomlens.train.bank import ExampleBank
from atomlens.train.distributed import resolve_device
from atomlens.train.streaming import StreamingRun
from atomlens.zoo import load_model, save_model
from atomlens.zoo.registry import CONFIG

__all__ = [
    "TASK",
    "EstimatorTraining",
    "build_network",
    "check_examples",
    "coefficient_array",
    "make_chunk",
    "recalibrate",
    "save_estimator",
    "sigma_factors",
    "simulate_examples",
    "validation_summary",
]

#: The ``task`` a model folder of this estimator declares in its config.
TASK = "ronchigram-aberrations"


def coefficient_array(aberrations: list[Aberrations] | tuple[Aberrations, ...]) -> np.ndarray:
    """(N, 8) Cartesian coefficients ordered as :data:`COEFFICIENTS` [Å]."""
    return np.array([[a.to_cartesian()[k] for k in COEFFICIENTS] for a in aberrations])


def simulate_examples(
    count: int,
    seed: int,
    sampler: RonchigramSampler | None = None,
    *,
    device: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy Ronchigrams resampled to the canonical grid, with their aberrations.

    Groups ``0, 1, ...`` of ``sampler`` with this seed, the last one cut to ``count``: the same
    seed and count give the same set.

    Returns
    -------
    grids : ndarray of shape (count, 96, 96), float32
        Canonical grids, centred on the bright-field disc found in each image (as at inference).
    coefficients : ndarray of shape (count, 8), float64
        The true coefficients [Å], ordered as :data:`COEFFICIENTS`.
    """
    count = check_parameter("count", count)
    check_examples_size(count, "the simulated examples (count=)")
    sampler = sampler or RonchigramSampler()
    grids, coefficients = [], []
    bar = tqdm(total=count, desc="simulating Ronchigrams", unit="img", disable=not progress)
    for index, start in enumerate(range(0, count, sampler.group)):
        size = min(sampler.group, count - start)
        item = sampler.sample(index, seed, size=size, device=device)
        for counts in item.counts:
            ronchigram = ronchigram_input(
                counts,
                energy=item.energy,
                semiangle=item.semiangle,
                angular_sampling=item.angular_sampling,
            )
            grids.append(canonical_grid(ronchigram))
        coefficients.append(coefficient_array(item.aberrations))
        bar.update(size)
    bar.close()
    return np.stack(grids), np.concatenate(coefficients)


#: Amorphous specimens of the bank (``make_chunk(specimen=)``): :class:`RonchigramSampler`
#: settings. "independent" places atoms independently (the first shipped model's training);
#: "hard-core" keeps them 0.3-0.6 mean spacings apart (0.65-1.29 Å for carbon, whose nearest
#: neighbours sit at 1.4-1.5 Å in a real film) and draws films up to 30 nm thick.
SPECIMENS: dict[str, dict[str, Any]] = {
    "independent": {},
    "hard-core": {"hard_core": (0.3, 0.6), "amorphous_thickness": (20.0, 300.0)},
}


def make_chunk(
    seed: int,
    *,
    prior: str = "broad",
    chunk_size: int = 512,
    device: str | None = None,
    specimen: str = "independent",
) -> dict[str, np.ndarray]:
    """One bank chunk: ``grids`` (float16), ``coefficients`` [Å], the ``prior``'s and the
    ``specimen``'s names.

    Parameters
    ----------
    seed : int
        The chunk's seed, in [0, 2^63).
    prior : str
        A name of :data:`~atomlens.data.RONCHIGRAM_PRIORS`.
    chunk_size : int
        Ronchigrams in the chunk, in [1, 1e7] (``PARAMETERS["count"]``); the chunk's arrays
        must fit the array size limit (``ATOMLENS_MAX_ARRAY_GB``).
    device : str, optional
        Torch device of the simulation: "cpu", "cuda", "cuda:N"; None or "auto" take a GPU
        when there is one.
    specimen : str
        A name of :data:`SPECIMENS`.

    Raises
    ------
    ValueError
        Any of them invalid (:class:`~atomlens.core.validation.ParameterError`,
        :class:`~atomlens.core.validation.SizeLimitError`), checked before any work.
    """
    seed = check_setting("seed", seed)
    chunk_size = check_parameter("chunk_size", chunk_size, kind="count")
    check_examples_size(chunk_size, "a bank chunk (chunk_size=)")
    if not isinstance(prior, str) or prior not in RONCHIGRAM_PRIORS:
        raise ValueError(f"Unknown prior {prior!r}; choose from {sorted(RONCHIGRAM_PRIORS)}.")
    if not isinstance(specimen, str) or specimen not in SPECIMENS:
        raise ValueError(f"Unknown specimen {specimen!r}; choose from {sorted(SPECIMENS)}.")
    device = None if device in (None, "auto") else str(resolve_device(device))
    sampler = RonchigramSampler(ranges=dict(RONCHIGRAM_PRIORS[prior]), **SPECIMENS[specimen])
    grids, coefficients = simulate_examples(chunk_size, seed, sampler, device=device)
    return {
        "grids": grids.astype(np.float16),
        "coefficients": coefficients,
        "prior": np.array(prior),
        "specimen": np.array(specimen),
    }


def check_examples_size(count: int, what: str) -> None:
    """Refuse, before simulating, ``count`` examples whose grids exceed the array size limit."""
    check_size(f"{what}: {count} canonical grids", (count, CANONICAL_SIZE, CANONICAL_SIZE))


def check_examples(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Refuse bank examples that are not this task's: ``grids`` (N, 96, 96), ``coefficients``
    (N, 8) (the bank itself refuses NaN and damaged chunks).

    Raises
    ------
    ValueError
        Naming ``where`` (the bank folder) and what is wrong.
    """
    grids, truth = arrays.get("grids"), arrays.get("coefficients")
    shape = (CANONICAL_SIZE, CANONICAL_SIZE)
    if grids is None or truth is None:
        raise ValueError(
            f"{where} holds arrays {sorted(arrays)}, not this task's 'grids' and 'coefficients'; "
            "generate it with make_chunk (atomlens train calibrate generate)."
        )
    if grids.ndim != 3 or grids.shape[1:] != shape or truth.shape != (len(grids), 8):
        raise ValueError(
            f"{where}: grids {grids.shape} and coefficients {truth.shape} are not (N, "
            f"{shape[0]}, {shape[1]}) and (N, 8) canonical grids and coefficients."
        )


def build_network(width: int = 16) -> ResNet18Regressor:
    """The estimator network: ResNet18 of base ``width`` on the 2-channel canonical grid.

    Parameters
    ----------
    width : int
        Channels of the first stage, in [1, 256] (memory grows with its square).
    """
    width = check_setting("width", width)
    return ResNet18Regressor(OUTPUTS, in_channels=2, width=width)


def validation_summary(
    decoded: Mapping[str, np.ndarray],
    truth: np.ndarray,
    sigma_factor: np.ndarray | None = None,
) -> dict[str, float]:
    """Errors of single-image estimates: the sign head picks +-mean."""
    sign = np.where(decoded["p_plus"] >= 0.5, 1.0, -1.0)[:, None]
    sigma = laplace_sigma(decoded["scale"], 1.0 if sigma_factor is None else sigma_factor)
    return error_summary(sign * decoded["mean"], sigma, truth)


def sigma_factors(decoded: Mapping[str, np.ndarray], truth: np.ndarray) -> np.ndarray:
    """Per coefficient, the factor on the Laplace scale that makes it the maximum-likelihood one.

    For a Laplace distribution the ML scale is the mean absolute error, so the factor is
    mean(|error| / scale) over a validation set (errors after resolving the sign).
    """
    best = resolve_sign(decoded["mean"], truth, SCALES)[:, None]
    return (np.abs(decoded["mean"] - best * truth) / decoded["scale"]).mean(axis=0)


class EstimatorTraining:
    """The estimator's loss and validation for :func:`atomlens.train.fit_streaming`.

    Every batch is seen through one of the 8 symmetries of the square grid (drawn per batch), with
    the coefficients transformed exactly to match: free, exact data augmentation.
    """

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sign-free Laplace loss plus the sign head's cross-entropy on a transformed batch."""
        turns, transpose = ELEMENTS[rng.integers(len(ELEMENTS))]
        grids = transform_grids(batch["grids"].astype(np.float32), turns, transpose)
        target = transform_coefficients(batch["coefficients"], turns, transpose) / SCALES
        output = model(network_input(np.ascontiguousarray(grids)).to(device))
        return sign_free_loss(output, torch.as_tensor(target, dtype=torch.float32, device=device))

    def validate(
        self, model: torch.nn.Module, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Single-image errors on validation grids (uncalibrated sigma columns left out)."""
        decoded = predict_grids(model, arrays["grids"])
        summary = validation_summary(decoded, arrays["coefficients"])
        return {k: v for k, v in summary.items() if "sigma_" not in k}


def save_estimator(
    run: StreamingRun,
    output: str | Path,
    *,
    bank: ExampleBank,
    validation: Mapping[str, np.ndarray],
    width: int,
    card: str | None = None,
    overwrite: bool = False,
) -> dict[str, float]:
    """Fit the sigma factors on the whole validation set and write the model folder.

    Writes ``model.safetensors``, ``config.json`` (task, units, scales, sigma factors, the
    sampler, the priors and examples per prior, training facts, validation errors),
    ``README.md`` (``card``) and ``training_log.json``. Returns the validation summary.
    """
    decoded = predict_grids(run.model, validation["grids"])
    factors = sigma_factors(decoded, validation["coefficients"])
    summary = validation_summary(decoded, validation["coefficients"], factors)
    extra: dict[str, Any] = {
        "task": TASK,
        "coefficients": list(COEFFICIENTS),
        "units": "Å (Cartesian C_nm a/b = C cos(m phi), C sin(m phi))",
        "scales_A": SCALES.tolist(),
        "sigma_factors": factors.round(4).tolist(),
        "distribution": RonchigramSampler().describe(),
        "specimens": {name: RonchigramSampler(**kw).describe() for name, kw in SPECIMENS.items()},
        "examples_per_specimen": bank.count_by("specimen", default="independent"),
        "priors_A": {n: {k: list(v) for k, v in r.items()} for n, r in RONCHIGRAM_PRIORS.items()},
        "examples_per_prior": bank.count_by("prior", default="broad"),
        "training": run.describe() | {"width": width},
        "validation": {k: round(v, 4) for k, v in summary.items()},
    }
    card = card or "# Ronchigram aberration estimator\n"
    arguments = {"outputs": OUTPUTS, "in_channels": 2, "width": width}
    save_model(
        run.model,
        output,
        arguments=arguments,
        card=card,
        extra=extra,
        log=run.log,
        overwrite=overwrite,
    )
    return summary


def recalibrate(model_folder: str | Path, validation: str | Path) -> dict[str, float]:
    """Refit the sigma factors of a trained model on a validation bank; rewrite its config.

    The weights (and their SHA-256) are untouched.
    """
    model_folder, validation = Path(model_folder), Path(validation)
    if not model_folder.is_dir():
        raise NotADirectoryError(f"{model_folder} is not a model folder (config.json, weights).")
    model, config = load_model(model_folder)
    if config.get("task") != TASK:
        raise ValueError(f"{model_folder} is not a {TASK} model (task {config.get('task')!r}).")
    arrays = ExampleBank(validation).arrays()
    check_examples(arrays, str(validation))
    truth = arrays["coefficients"]
    decoded = predict_grids(model, arrays["grids"])
    factors = sigma_factors(decoded, truth)
    summary = validation_summary(decoded, truth, factors)
    config["sigma_factors"] = factors.round(4).tolist()
    config["validation"] = {k: round(v, 4) for k, v in summary.items()} | {
        "examples": len(truth),
        "bank": validation.name,
    }
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(model_folder / CONFIG, lambda tmp: tmp.write_text(text), overwrite=True)
    return summary
