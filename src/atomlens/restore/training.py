"""What training the restoration network needs from the restore task, for ``atomlens.train``.

- :func:`make_chunk`: one bank chunk of (distorted, undistorted) image pairs from
  :class:`~atomlens.data.ImageSampler`, both scaled by the distorted image's robust scaling
  (:func:`~atomlens.restore.preprocess.normalise`): the network learns to map any count level and
  offset to the expected counts of the undistorted image (:func:`expected_counts`).
- :class:`RestorationTraining`: the loss of a batch (a random vertical flip per batch, which
  keeps the fast-scan direction; L1 plus the contrast-adaptive L1; an optional relativistic
  PatchGAN term) and the validation metrics (PSNR of input and output against the target).
- :func:`save_restorer`: the model folder with its config and card.

The command is ``atomlens train restore generate|fit`` (:mod:`atomlens.cli.train`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atomlens.core.validation import check_parameter
from atomlens.data.samplers import ImageSampler
from atomlens.nn import PatchDiscriminator, relativistic_losses
from atomlens.restore.network import ARCHITECTURES, restoration_loss
from atomlens.restore.preprocess import expected_counts, normalise
from atomlens.train._ranges import check_setting
from atomlens.train.bank import ExampleBank
from atomlens.train.streaming import StreamingRun
from atomlens.zoo import save_model

__all__ = [
    "TASK",
    "RestorationTraining",
    "check_examples",
    "make_chunk",
    "psnr_db",
    "save_restorer",
    "simulate_pairs",
]

#: The ``task`` a restoration model folder declares in its config.
TASK = "image-restoration"
#: A normalised value is clipped to this magnitude (a zinger at 1e6 times the spread).
NORMALISED_LIMIT = 50.0


def simulate_pairs(
    sampler: ImageSampler, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` normalised (distorted, target) pairs of the sampler's stream ``seed``.

    Returns
    -------
    inputs, targets : ndarray (count, 1, size, size), float32
        The distorted image and the expected counts of the undistorted image, both scaled by
        the distorted image's robust scaling.
    pixel_sizes : ndarray (count,)
        [Å].
    """
    inputs, targets, pixel_sizes = [], [], []
    for index in range(count):
        sample = sampler.sample(index, seed)
        scaling = normalise(sample.image)
        target = expected_counts(sample.image, sample.clean)
        inputs.append(np.clip(scaling.apply(sample.image), -NORMALISED_LIMIT, NORMALISED_LIMIT))
        targets.append(np.clip(scaling.apply(target), -NORMALISED_LIMIT, NORMALISED_LIMIT))
        pixel_sizes.append(sample.pixel_size)
    return (
        np.stack(inputs)[:, None].astype(np.float32),
        np.stack(targets)[:, None].astype(np.float32),
        np.asarray(pixel_sizes),
    )


def make_chunk(
    seed: int,
    *,
    modality: str = "mixed",
    chunk_size: int = 64,
    size: int = 128,
    pixel_size: tuple[float, float] = (0.05, 0.6),
    sampler_options: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """One bank chunk: ``inputs``, ``targets`` (float16, normalised), ``pixel_size`` [Å].

    Parameters
    ----------
    seed : int
        The chunk's seed (the sampler stream), in [0, 2^63).
    modality : str
        The sampler's modality.
    chunk_size : int
        Image pairs in the chunk.
    size : int
        Image size [px].
    pixel_size : (float, float)
        Range of the pixel size [Å].
    sampler_options : dict, optional
        More :class:`~atomlens.data.ImageSampler` fields (e.g. ``realism=True``).
    """
    seed = check_setting("seed", seed)
    chunk_size = check_parameter("chunk_size", chunk_size, kind="count")
    sampler = ImageSampler(
        modality=modality, size=size, pixel_size=pixel_size, **dict(sampler_options or {})
    )
    inputs, targets, pixel_sizes = simulate_pairs(sampler, chunk_size, seed)
    return {
        "inputs": inputs.astype(np.float16),
        "targets": targets.astype(np.float16),
        "pixel_size": pixel_sizes.astype(np.float32),
        "modality": np.array(modality),
        "sampler": np.array(json.dumps(sampler.describe())),
    }


def psnr_db(restored: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR of each image [dB], peak = its target's range (as ``metrics.psnr``), (N, ...) arrays."""
    restored = np.asarray(restored, np.float64).reshape(len(restored), -1)
    target = np.asarray(target, np.float64).reshape(len(target), -1)
    mse = np.mean((restored - target) ** 2, axis=1)
    span = target.max(axis=1) - target.min(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.maximum(span, 1e-12) ** 2 / np.maximum(mse, 1e-30))


class RestorationTraining:
    """The restore task's loss and validation for :func:`atomlens.train.fit_streaming`.

    Parameters
    ----------
    adaptive : float
        Weight of the contrast-adaptive L1 (:func:`restoration_loss`).
    adversarial : float
        Weight of the relativistic PatchGAN term; 0 trains without a discriminator. The
        discriminator and its optimiser live here and take one step per batch.
    """

    def __init__(self, adaptive: float = 0.5, adversarial: float = 0.0):
        if not 0 <= adaptive <= 10:
            raise ValueError(f"adaptive=... must lie in [0, 10], got {adaptive!r}.")
        self.adaptive = float(adaptive)
        if not 0 <= adversarial <= 1:
            raise ValueError(f"adversarial=... must lie in [0, 1], got {adversarial!r}.")
        self.adversarial = float(adversarial)
        self.critic: PatchDiscriminator | None = None
        self.critic_optimiser: torch.optim.Optimizer | None = None

    def _batch(
        self, batch: Mapping[str, np.ndarray], rng: np.random.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.from_numpy(batch["inputs"].astype(np.float32)).to(device)
        targets = torch.from_numpy(batch["targets"].astype(np.float32)).to(device)
        if rng.uniform() < 0.5:  # a vertical flip keeps the fast-scan direction (rows)
            inputs, targets = inputs.flip(-2), targets.flip(-2)
        return inputs, targets

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 + adaptive L1 (+ adversarial) of one batch."""
        inputs, targets = self._batch(batch, rng, device)
        restored = model(inputs)
        loss, parts = restoration_loss(restored, targets, adaptive=self.adaptive)
        if self.adversarial > 0:
            loss, parts = self._adversarial(restored, targets, loss, parts, device)
        return loss, parts

    def _adversarial(
        self,
        restored: torch.Tensor,
        targets: torch.Tensor,
        loss: torch.Tensor,
        parts: dict[str, float],
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if self.critic is None:
            self.critic = PatchDiscriminator().to(device)
            self.critic_optimiser = torch.optim.AdamW(
                self.critic.parameters(), lr=1e-4, betas=(0.5, 0.999)
            )
        critic_loss, _ = relativistic_losses(self.critic(targets), self.critic(restored.detach()))
        self.critic_optimiser.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimiser.step()
        _, generator_loss = relativistic_losses(self.critic(targets), self.critic(restored))
        parts = parts | {
            "critic": float(critic_loss.detach()),
            "generator": float(generator_loss.detach()),
        }
        return loss + self.adversarial * generator_loss, parts

    @torch.no_grad()
    def validate(
        self, model: torch.nn.Module, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Mean PSNR [dB] of the input and of the restored image against the target."""
        device = next(model.parameters()).device
        inputs = arrays["inputs"].astype(np.float32)
        targets = arrays["targets"].astype(np.float32)
        restored = np.concatenate(
            [
                model(torch.from_numpy(inputs[i : i + 16]).to(device)).cpu().numpy()
                for i in range(0, len(inputs), 16)
            ]
        )
        return {
            "psnr_input": float(np.mean(psnr_db(inputs, targets))),
            "psnr": float(np.mean(psnr_db(restored, targets))),
            "l1": float(np.mean(np.abs(restored - targets))),
        }


def save_restorer(
    run: StreamingRun,
    output: str | Path,
    *,
    size: str,
    bank: ExampleBank,
    validation: Mapping[str, np.ndarray],
    modalities: Sequence[str],
    card: str | None = None,
    overwrite: bool = False,
) -> dict[str, float]:
    """Write the model folder (weights, config, card, training log); returns validation metrics."""
    metrics = RestorationTraining().validate(run.model, validation)
    extra: dict[str, Any] = {
        "task": TASK,
        "size": size,
        "modalities": list(modalities),
        "normalisation": "median and 0.5-99.5 percentile spread of the input (restore.preprocess)",
        "output": "expected counts of the undistorted image, in the input's units",
        "examples_per_modality": bank.count_by("modality", default="mixed"),
        "training": run.describe(),
        "validation": {k: round(v, 4) for k, v in metrics.items()},
    }
    card = card or "# Image restoration network (CGRDN)\n"
    save_model(
        run.model,
        output,
        arguments=dict(ARCHITECTURES[size]),
        card=card,
        extra=extra,
        log=run.log,
        overwrite=overwrite,
    )
    return metrics


def check_examples(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Refuse a bank that is not of this task: ``inputs`` and ``targets`` (n, 1, h, w) alike."""
    missing = {"inputs", "targets"} - set(arrays)
    if missing:
        raise ValueError(
            f"{where} holds no {', '.join(sorted(missing))}: it is not a restore bank (make one "
            "with 'atomlens train restore generate')."
        )
    inputs, targets = arrays["inputs"], arrays["targets"]
    if inputs.ndim != 4 or inputs.shape[1] != 1 or inputs.shape != targets.shape:
        raise ValueError(
            f"{where}: inputs {inputs.shape} and targets {targets.shape} must both be "
            "(n, 1, h, w) image pairs."
        )
