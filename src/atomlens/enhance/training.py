"""What training the unpaired enhancement pair needs from the enhance task, for ``atomlens.train``.

- :func:`make_chunk`: one bank chunk of simulated patches at the canonical scale: ``clean`` (the
  clean domain the generators learn to reach) and, for validation only, ``noisy`` (the same
  patch through the realistic detector chain).
- :func:`load_real_images`: the experimental domain: microscope files read with
  :func:`atomlens.io.read`, each resampled to the canonical scale from its own column spacing.
  They are never paired with a simulation.
- :class:`EnhancementTraining`: the CycleGAN loss of a batch (least-squares adversarial terms
  from two PatchGAN critics that live here, the atom-mask-weighted cycle loss, identity,
  low-pass fidelity, frequency consistency and the characteristic-function term) and the
  validation metrics on simulated pairs.
- :func:`save_enhancer`: the model folder with its config and card.

The command is ``atomlens train enhance generate|fit`` (:mod:`atomlens.cli.train_enhance`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atomlens.core.validation import check_parameter
from atomlens.data.samplers import ImageSampler
from atomlens.enhance.network import (
    ARCHITECTURES,
    atom_mask,
    blur,
    characteristic_loss,
    frequency_loss,
    lowpass_loss,
    masked_l1,
)
from atomlens.enhance.preprocess import CANONICAL_SPACING, MAX_FACTOR, PATCH, to_canonical
from atomlens.locate import estimate_spacing
from atomlens.nn import PatchDiscriminator, least_squares_losses
from atomlens.restore import normalise
from atomlens.train._ranges import check_setting
from atomlens.train.bank import ExampleBank
from atomlens.train.streaming import StreamingRun
from atomlens.zoo import save_model

__all__ = [
    "TASK",
    "EnhancementTraining",
    "LossWeights",
    "affine_psnr",
    "check_examples",
    "load_real_images",
    "make_chunk",
    "save_enhancer",
]

#: The ``task`` an enhancement model folder declares in its config.
TASK = "image-enhancement"
#: A normalised value is clipped to this magnitude.
NORMALISED_LIMIT = 20.0
#: Pixel sizes of the simulated images [Å]: with the sampler's materials, columns 3-16 px apart.
PIXEL_SIZE = (0.12, 0.45)


def _canonical_normalised(image: np.ndarray, spacing: float) -> np.ndarray:
    canonical, _ = to_canonical(image, spacing)
    scaled = normalise(canonical).apply(canonical)
    return np.clip(scaled, -NORMALISED_LIMIT, NORMALISED_LIMIT).astype(np.float32)


def make_chunk(
    seed: int,
    *,
    modality: str = "haadf",
    chunk_size: int = 64,
    size: int = 128,
    pixel_size: tuple[float, float] = PIXEL_SIZE,
) -> dict[str, np.ndarray]:
    """One bank chunk of ``chunk_size`` canonical-scale simulated patches.

    Each image of :class:`~atomlens.data.ImageSampler` (``realism=True``, the modality's
    realistic detector chain) whose clean version shows a lattice is resampled so that its
    columns lie 8 px apart (spacing from :func:`atomlens.locate.estimate_spacing` on the clean
    image) and one random 64 x 64 patch is cut; images without a lattice, or too small after
    resampling, are skipped.

    Returns
    -------
    dict
        ``clean``, ``noisy``: (n, 1, 64, 64) float16, each normalised by its own robust
        scaling; ``spacing_px`` (n,) [px of the simulated image]; ``modality``; ``sampler``.
    """
    seed = check_setting("seed", seed)
    chunk_size = check_parameter("chunk_size", chunk_size, kind="count")
    sampler = ImageSampler(modality=modality, size=size, pixel_size=pixel_size, realism=True)
    clean, noisy, spacings = [], [], []
    index = 0
    while len(clean) < chunk_size and index < 8 * chunk_size:
        sample = sampler.sample(index, seed)
        index += 1
        spacing = estimate_spacing(sample.clean)
        factor = CANONICAL_SPACING / spacing if np.isfinite(spacing) else 0.0
        if not 1 / MAX_FACTOR <= factor <= MAX_FACTOR or min(sample.clean.shape) * factor < PATCH:
            continue
        a = _canonical_normalised(sample.clean, spacing)
        b = _canonical_normalised(sample.image, spacing)
        rng = np.random.default_rng([seed, index, 1])
        y, x = (int(rng.integers(0, n - PATCH + 1)) for n in a.shape)
        clean.append(a[y : y + PATCH, x : x + PATCH])
        noisy.append(b[y : y + PATCH, x : x + PATCH])
        spacings.append(spacing)
    if not clean:
        raise ValueError(f"Chunk {seed}: no simulated image showed a lattice.")
    return {
        "clean": np.stack(clean)[:, None].astype(np.float16),
        "noisy": np.stack(noisy)[:, None].astype(np.float16),
        "spacing_px": np.asarray(spacings, np.float32),
        "modality": np.array(modality),
        "sampler": np.array(json.dumps(sampler.describe())),
    }


def load_real_images(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """The experimental domain: each file's image (every frame of a stack) at the canonical
    scale, normalised. Its column spacing is estimated from the image itself.

    Raises
    ------
    ValueError
        No files; a file whose image shows no lattice, or is smaller than one 64 px patch at
        the canonical scale.
    """
    from atomlens.io import read

    if not paths:
        raise ValueError("Training enhancement needs at least one real image file.")
    images = []
    for path in paths:
        data = np.asarray(read(path).data, dtype=np.float32)
        for frame in data.reshape(-1, *data.shape[-2:]):
            spacing = estimate_spacing(frame)
            if not np.isfinite(spacing):
                raise ValueError(f"{path}: the image shows no lattice to set its scale from.")
            canonical = _canonical_normalised(frame, spacing)
            if min(canonical.shape) < PATCH:
                raise ValueError(
                    f"{path}: {canonical.shape} px at the canonical scale (columns "
                    f"{spacing:.1f} px apart in the file) is smaller than one {PATCH} px patch."
                )
            images.append(canonical)
    return images


def affine_psnr(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR [dB] of each (n, ...) output after its best affine map a * output + b onto the
    target (peak = the target's range): the score of an image whose contrast is not calibrated."""
    out = np.asarray(output, np.float64).reshape(len(output), -1)
    tgt = np.asarray(target, np.float64).reshape(len(target), -1)
    scores = np.empty(len(out))
    for i, (o, t) in enumerate(zip(out, tgt, strict=True)):
        design = np.stack([o, np.ones_like(o)], 1)
        fit = design @ np.linalg.lstsq(design, t, rcond=None)[0]
        mse = max(float(np.mean((fit - t) ** 2)), 1e-30)
        scores[i] = 10 * np.log10(max(float(np.ptp(t)), 1e-12) ** 2 / mse)
    return scores


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms of :class:`EnhancementTraining` (thesis 003, chapters 3 and 4).

    adversarial : least-squares GAN terms of both generators
    cycle : the cycle L1 of both domains, atom regions weighted ``1 + atoms`` (the
        experimental domain's after a 1 px blur)
    atoms : extra weight of atom regions in the cycle loss (chapter 4's mask-weighted loss)
    identity : a clean patch through the clean generator stays as it is
    lowpass : each translation keeps the image blurred below the column spacing (positions)
    frequency : log-amplitude spectra of each patch and its cycle reconstruction alike
    characteristic : characteristic function of the enhanced pixel values like the clean ones
    """

    adversarial: float = 1.0
    cycle: float = 10.0
    atoms: float = 4.0
    identity: float = 5.0
    lowpass: float = 10.0
    frequency: float = 1.0
    characteristic: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= 100:
                raise ValueError(f"{name}=... must lie in [0, 100], got {value!r}.")


class EnhancementTraining:
    """The enhance task's loss and validation for :func:`atomlens.train.fit_streaming`.

    The bank holds the clean simulated domain; the experimental domain is ``real_images``
    (:func:`load_real_images`), from which each batch draws as many random 64 px patches
    (flipped at random along either axis, which keeps the fast-scan direction). The two
    critics and their optimiser live here and take one step per batch.

    Parameters
    ----------
    real_images : list of ndarray
        Canonical-scale, normalised experimental images, each at least 64 px on a side.
    weights : LossWeights
    """

    def __init__(self, real_images: Sequence[np.ndarray], weights: LossWeights | None = None):
        if not real_images or min(min(image.shape) for image in real_images) < PATCH:
            raise ValueError(f"real_images must be images of at least {PATCH} px on a side.")
        self.real_images = [np.asarray(image, np.float32) for image in real_images]
        areas = np.array([image.size for image in self.real_images], np.float64)
        self.chances = areas / areas.sum()
        self.weights = weights or LossWeights()
        self.critics: torch.nn.ModuleDict | None = None
        self.critic_optimiser: torch.optim.Optimizer | None = None

    def real_batch(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` random experimental patches (count, 1, 64, 64), float32."""
        patches = []
        for which in rng.choice(len(self.real_images), size=count, p=self.chances):
            image = self.real_images[which]
            y, x = (int(rng.integers(0, n - PATCH + 1)) for n in image.shape)
            patch = image[y : y + PATCH, x : x + PATCH]
            if rng.uniform() < 0.5:
                patch = patch[::-1]
            if rng.uniform() < 0.5:
                patch = patch[:, ::-1]
            patches.append(patch)
        return np.stack(patches)[:, None].copy()

    def _critics(self, device: torch.device) -> torch.nn.ModuleDict:
        if self.critics is None:
            self.critics = torch.nn.ModuleDict(
                {"clean": PatchDiscriminator(), "experiment": PatchDiscriminator()}
            ).to(device)
            self.critic_optimiser = torch.optim.AdamW(
                self.critics.parameters(), lr=2e-4, betas=(0.5, 0.999)
            )
        return self.critics

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The generators' loss of one batch (the critics step inside)."""
        pair = getattr(model, "module", model)  # DistributedDataParallel wraps it
        w = self.weights
        clean = torch.from_numpy(batch["clean"].astype(np.float32)).to(device)
        if rng.uniform() < 0.5:
            clean = clean.flip(-1)
        real = torch.from_numpy(self.real_batch(len(clean), rng)).to(device)

        enhanced = pair.to_clean(real)
        degraded = pair.to_experiment(clean)
        critics = self._critics(device)
        critic_loss = least_squares_losses(
            critics["clean"](clean), critics["clean"](enhanced.detach())
        ) + least_squares_losses(
            critics["experiment"](real), critics["experiment"](degraded.detach())
        )
        self.critic_optimiser.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimiser.step()

        back_real = blur(pair.to_experiment(enhanced), 1.0)
        back_clean = pair.to_clean(degraded)
        terms = {
            "adversarial": least_squares_losses(None, critics["clean"](enhanced))
            + least_squares_losses(None, critics["experiment"](degraded)),
            # the experimental cycle is compared after a 1 px blur: shot noise is no
            # information a clean image can keep, so the cycle asks back only for the structure
            "cycle": masked_l1(back_real, blur(real, 1.0), atom_mask(enhanced), w.atoms)
            + masked_l1(back_clean, clean, atom_mask(clean), w.atoms),
            "identity": (pair.to_clean(clean) - clean).abs().mean(),
            "lowpass": lowpass_loss(enhanced, real) + lowpass_loss(degraded, clean),
            "frequency": frequency_loss(back_real, blur(real, 1.0))
            + frequency_loss(back_clean, clean),
            "characteristic": characteristic_loss(enhanced, clean),
        }
        loss = sum(getattr(w, name) * value for name, value in terms.items())
        parts = {name: float(value.detach()) for name, value in terms.items()}
        return loss, parts | {"critic": float(critic_loss.detach())}

    @torch.no_grad()
    def validate(
        self, model: torch.nn.Module, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Affine-fitted PSNR [dB] of the noisy simulated patches and of their enhancement
        against the clean ones, and the low-pass shift of the enhancement (normalised units)."""
        pair = getattr(model, "module", model)
        device = next(pair.parameters()).device
        noisy = arrays["noisy"].astype(np.float32)
        clean = arrays["clean"].astype(np.float32)
        outputs = []
        for i in range(0, len(noisy), 16):
            outputs.append(pair.to_clean(torch.from_numpy(noisy[i : i + 16]).to(device)).cpu())
        enhanced = torch.cat(outputs)
        return {
            "psnr_input": float(np.mean(affine_psnr(noisy, clean))),
            "psnr": float(np.mean(affine_psnr(enhanced.numpy(), clean))),
            "lowpass": float(lowpass_loss(enhanced, torch.from_numpy(noisy))),
        }


def save_enhancer(
    run: StreamingRun,
    output: str | Path,
    *,
    size: str,
    bank: ExampleBank,
    validation: Mapping[str, np.ndarray],
    real_files: Sequence[str | Path],
    weights: LossWeights,
    modality: str,
    card: str | None = None,
    overwrite: bool = False,
) -> dict[str, float]:
    """Write the model folder (weights, config, card, training log); returns validation metrics."""
    metrics = EnhancementTraining([np.zeros((PATCH, PATCH))]).validate(run.model, validation)
    extra: dict[str, Any] = {
        "task": TASK,
        "size": size,
        "modalities": [modality],
        "canonical_spacing_px": CANONICAL_SPACING,
        "normalisation": "median and 0.5-99.5 percentile spread of the canonical-scale input",
        "output": "the clean-domain image, in the input's units through the input's scaling "
        "(contrast not calibrated: use restore for expected counts)",
        "real_training_files": [Path(p).name for p in real_files],
        "loss_weights": asdict(weights),
        "simulated_examples": len(bank),
        "training": run.describe(),
        "validation": {k: round(v, 4) for k, v in metrics.items()},
    }
    card = card or "# Unpaired enhancement generators (CycleGAN, thesis 003)\n"
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
    """Refuse a bank that is not of this task: ``clean`` and ``noisy`` (n, 1, 64, 64) alike."""
    missing = {"clean", "noisy"} - set(arrays)
    if missing:
        raise ValueError(
            f"{where} holds no {', '.join(sorted(missing))}: it is not an enhance bank (make "
            "one with 'atomlens train enhance generate')."
        )
    clean, noisy = arrays["clean"], arrays["noisy"]
    if clean.ndim != 4 or clean.shape[1] != 1 or clean.shape != noisy.shape:
        raise ValueError(
            f"{where}: clean {clean.shape} and noisy {noisy.shape} must both be (n, 1, h, w)."
        )
