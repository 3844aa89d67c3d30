"""What training the segmentation networks needs from the locate task, for ``atomlens.train``.

- :func:`make_chunk`: one bank chunk of network-input crops and their label maps from
  :class:`~atomlens.data.ImageSampler` with ``realism=True`` (pixel sizes 0.05-0.6 Å, amorphous
  layers and regions, thickness gradients, probe tails, the detector chains or shot noise down
  to a few electrons per column). Each image is prepared exactly as the verb prepares it
  (polarity, background, resampling to :data:`~atomlens.locate.network.CANONICAL_SPACING`,
  scaling), at the true column spacing times a random factor in [0.85, 1.18] so the network
  tolerates an estimated spacing; the structure tokens of the drawn material go beside it.
- :class:`SegmentationTraining`: the loss of a batch (random flips and quarter turns; BCE + Dice;
  for the structure-conditioned model the contrastive term and the "unknown structure" token
  for a share of the batch) and the validation metrics (F1 of the candidates on the crops).
- :func:`save_segmentor`: the model folder with its config and card.

The command is ``atomlens train locate generate|fit`` (:mod:`atomlens.cli.train_locate`).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from atomlens.core.validation import check_parameter
from atomlens.data.samplers import ImageSampler
from atomlens.locate.network import (
    ARCHITECTURES,
    CANONICAL_SPACING,
    CLASSES,
    column_candidates,
    label_maps,
    nearest_distance,
    network_input,
    segmentation_loss,
    structure_tokens,
    visible_columns,
)
from atomlens.locate.preprocess import columns_are_dark, subtract_background
from atomlens.metrics import detection_scores
from atomlens.nn.segmentation import contrastive_loss
from atomlens.train._ranges import check_setting
from atomlens.train.bank import ExampleBank
from atomlens.train.streaming import StreamingRun
from atomlens.zoo import save_model

__all__ = [
    "TASK",
    "SegmentationTraining",
    "apparent_positions",
    "check_examples",
    "chunk_modality",
    "make_chunk",
    "save_segmentor",
]

#: The ``task`` a segmentation model folder declares in its config.
TASK = "column-segmentation"
#: Crop side at canonical scale [px] and the most crops taken from one image.
CROP = 64
CROPS_PER_IMAGE = 4
#: Chunk seed modulo 5 -> modality (HAADF three times out of five, the issue's main target).
CHUNK_MODALITIES = ("haadf", "haadf", "haadf", "abf", "hrtem")
#: Shot-noise dose range [e-/px]: from about 10 e- per column at 0.1 Å/px to thousands.
SHOT_DOSE = (0.02, 200.0)
#: The default least probability of a candidate, and the levels ``save_segmentor`` tries.
LEVEL = 0.5
LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: The spacing the labels assume when an image shows fewer than 3 crystal columns [Å].
DEFAULT_SPACING_A = 2.5


def chunk_modality(seed: int) -> tuple[str, str]:
    """The modality and the distortions ("realistic" or "shot") of chunk ``seed``."""
    return CHUNK_MODALITIES[seed % 5], ("realistic", "shot")[(seed // 5) % 2]


#: The STEM scan distortions whose records shift the content of rows (y and x) or columns (x).
ROW_SHIFTS = ("Drift", "ScanJitter")
COLUMN_SHIFTS = ("FlyBack", "ScanSpeed")
#: The share of detector lag's centroid delay by which the main lobe of a column moves (measured
#: on Gaussian columns of 1.5 px for tau 0.5-3 px; the exponential tail moves the centroid more).
LAG_PEAK_SHARE = 0.75


def apparent_positions(table: pd.DataFrame, metadata: Mapping[str, Any]) -> pd.DataFrame:
    """The columns where the distorted image shows them: ``y``, ``x`` moved by the content
    shifts the scan distortions recorded (per row in y and x, per column in x, each [px]) and
    by the delay of detector lag along x: the centroid of ``out[x] = a out[x-1] + (1-a) in[x]``
    moves by a / (1 - a) px, the peak of a column about 0.75 of that (:data:`LAG_PEAK_SHARE`).

    Labels must sit where the image shows a column: the network finds columns, and the verb
    refines them on the image; undoing scan distortions is the job of restore and analyze.
    ``metadata`` is a :class:`~atomlens.physics.imaging.images.SimulatedImage`'s.
    """
    records: Sequence[tuple[str, Mapping[str, Any]]] = metadata.get("distortion_record") or []
    if not records or not len(table):
        return table
    lag = 0.0
    for step in (metadata.get("distortions") or {}).get("steps", []):
        if step.get("name") == "DetectorLag" and step.get("tau_px", 0) > 0:
            a = math.exp(-1.0 / step["tau_px"])
            lag += LAG_PEAK_SHARE * a / (1 - a)
    rows_y = rows_x = columns_x = 0.0
    for name, record in records:
        if name in ROW_SHIFTS:
            rows_y = rows_y + np.asarray(record["shifts_y"], float)
            rows_x = rows_x + np.asarray(record["shifts_x"], float)
        elif name in COLUMN_SHIFTS:
            columns_x = columns_x + np.asarray(record["shifts_x"], float)

    def shift(values: Any, at: np.ndarray) -> np.ndarray:
        if np.ndim(values) == 0:
            return np.full(len(at), float(values))
        return np.interp(at, np.arange(len(values)), values)

    y, x = table["y"].to_numpy(float), table["x"].to_numpy(float)
    row = y + shift(rows_y, y)
    row = y + shift(rows_y, row)  # the row that shows the column (one fixed-point step)
    moved_x = x + shift(rows_x, row) + shift(columns_x, x) + lag
    return table.assign(y=row, x=moved_x)


def _structure_key(record: Mapping[str, Any]) -> tuple[str | None, tuple[int, ...] | None]:
    """The material name and zone axis of a ``random_structure`` record (None: unknown)."""
    if record.get("kind") == "nanoparticle":
        particle = record.get("nanoparticle", {})
        return particle.get("element"), tuple(particle.get("zone_axis", (0, 0, 1)))
    material = record.get("material")
    zone = record.get("zone_axis")
    return material, None if zone is None else tuple(zone)


def _tokens_of(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    material, zone = _structure_key(record)
    try:
        tokens, mask = structure_tokens(material, zone)
    except (ValueError, KeyError):  # a material the library cannot orient: unknown structure
        material = None
        tokens, mask = structure_tokens(None)
    group = zlib.crc32(f"{material}{zone}".encode()) & 0x7FFFFFFF
    return tokens, mask, group


def _crops(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[int, int]]:
    rows, cols = shape
    count = min(CROPS_PER_IMAGE, max(1, round(rows * cols / CROP**2)))
    starts = rng.integers(0, [max(1, rows - CROP + 1), max(1, cols - CROP + 1)], size=(count, 2))
    return [(int(y), int(x)) for y, x in starts]


def _padded(array: np.ndarray) -> np.ndarray:
    rows, cols = array.shape[-2:]
    pad = [(0, 0)] * (array.ndim - 2) + [(0, max(0, CROP - rows)), (0, max(0, CROP - cols))]
    return np.pad(array, pad)


def make_examples(sampler: ImageSampler, count: int, seed: int) -> dict[str, np.ndarray]:
    """Crops of ``count`` images of the sampler's stream ``seed`` (see the module docstring)."""
    rng = np.random.default_rng([seed, 7])
    modality = sampler.modality
    inputs, targets, tokens, masks, groups, spacings = [], [], [], [], [], []
    for index in range(count):
        sample = sampler.sample(index, seed)
        truth = visible_columns(sample.atoms, modality)
        truth = apparent_positions(truth, sample.metadata)
        true_spacing = nearest_distance(truth[["y", "x"]].to_numpy())
        if not math.isfinite(true_spacing) or true_spacing < 2.0:
            true_spacing = DEFAULT_SPACING_A / sample.pixel_size
        spacing = true_spacing * math.exp(rng.uniform(math.log(0.85), math.log(1.18)))
        image = sample.image.astype(np.float64)
        dark = modality == "abf" or (modality == "hrtem" and columns_are_dark(image, spacing))
        flat = subtract_background(-image if dark else image, spacing)
        canonical, factors = network_input(flat, spacing)
        maps = label_maps(truth, canonical.shape, factors)
        structure, mask, group = _tokens_of(sample.metadata["structure"])
        for y, x in _crops(canonical.shape, rng):
            inputs.append(_padded(canonical[y : y + CROP, x : x + CROP]))
            targets.append(_padded(maps[:, y : y + CROP, x : x + CROP]))
            tokens.append(structure)
            masks.append(mask)
            groups.append(group)
            spacings.append(spacing)
    return {
        "inputs": np.stack(inputs)[:, None].astype(np.float16),
        "targets": np.round(np.stack(targets) * 255).astype(np.uint8),
        "tokens": np.stack(tokens).astype(np.float16),
        "token_mask": np.stack(masks),
        "group": np.asarray(groups, np.int64),
        "spacing_px": np.asarray(spacings, np.float32),
    }


def make_chunk(
    seed: int,
    *,
    images: int = 32,
    size: int = 128,
    pixel_size: tuple[float, float] = (0.05, 0.6),
) -> dict[str, np.ndarray]:
    """One bank chunk from ``images`` images of ``size`` px (modality and distortions from the
    seed, :func:`chunk_modality`): ``inputs`` (n, 1, 64, 64) float16, ``targets`` (n, 2, 64,
    64) uint8 (x 255), ``tokens``, ``token_mask``, ``group``, ``spacing_px`` and ``modality``."""
    seed = check_setting("seed", seed)
    images = check_parameter("chunk_size", images, kind="count")
    modality, distortions = chunk_modality(seed)
    sampler = ImageSampler(
        modality=modality,
        size=size,
        pixel_size=pixel_size,
        distortions=distortions,
        dose_per_pixel=SHOT_DOSE,
        realism=True,
    )
    arrays: dict[str, np.ndarray] = make_examples(sampler, images, seed)
    arrays["modality"] = np.array(modality)
    arrays["sampler"] = np.array(json.dumps(sampler.describe()))
    return arrays


class SegmentationTraining:
    """The locate task's loss and validation for :func:`atomlens.train.fit_streaming`.

    Parameters
    ----------
    contrastive : float
        Weight of the image-structure contrastive term (conditioned model only).
    unknown : float
        Share of the examples whose structure tokens are replaced by the "unknown structure"
        token (conditioned model only), so that it also works without a structure.
    """

    def __init__(self, contrastive: float = 0.1, unknown: float = 0.15):
        if not 0 <= contrastive <= 10:
            raise ValueError(f"contrastive=... must lie in [0, 10], got {contrastive!r}.")
        if not 0 <= unknown <= 1:
            raise ValueError(f"unknown=... must lie in [0, 1], got {unknown!r}.")
        self.contrastive = float(contrastive)
        self.unknown = float(unknown)

    @staticmethod
    def _tensors(batch: Mapping[str, np.ndarray], device: torch.device) -> tuple[torch.Tensor, ...]:
        inputs = torch.from_numpy(batch["inputs"].astype(np.float32)).to(device)
        targets = torch.from_numpy(batch["targets"].astype(np.float32) / 255).to(device)
        tokens = torch.from_numpy(batch["tokens"].astype(np.float32)).to(device)
        mask = torch.from_numpy(np.asarray(batch["token_mask"], bool)).to(device)
        return inputs, targets, tokens, mask

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """BCE + Dice (+ contrastive) of one batch, with a random flip and quarter turn."""
        inputs, targets, tokens, mask = self._tensors(batch, device)
        turns = int(rng.integers(4))
        inputs, targets = inputs.rot90(turns, (-2, -1)), targets.rot90(turns, (-2, -1))
        if rng.uniform() < 0.5:
            inputs, targets = inputs.flip(-1), targets.flip(-1)
        groups = torch.from_numpy(np.asarray(batch["group"], np.int64)).to(device)
        conditioned = getattr(_unwrap(model), "structure_features", 0) > 0
        if conditioned and self.unknown > 0:
            unknown = torch.from_numpy(rng.uniform(size=len(inputs)) < self.unknown).to(device)
            blank = torch.zeros_like(tokens[0])
            blank_mask = torch.ones_like(mask[0])
            blank_mask[0] = False
            tokens = torch.where(unknown[:, None, None], blank, tokens)
            mask = torch.where(unknown[:, None], blank_mask, mask)
            groups = torch.where(unknown, -1 - torch.arange(len(groups), device=device), groups)
        logits = model(inputs, tokens, mask)
        loss, parts = segmentation_loss(logits, targets)
        if conditioned and self.contrastive > 0:
            image, structure = _unwrap(model).embeddings()
            term = contrastive_loss(image, structure, groups)
            loss = loss + self.contrastive * term
            parts["contrastive"] = float(term.detach())
        return loss, parts

    @torch.no_grad()
    def validate(
        self,
        model: torch.nn.Module,
        arrays: Mapping[str, np.ndarray],
        levels: Sequence[float] = (LEVEL,),
    ) -> dict[str, float]:
        """Mean F1 of the column candidates against the label maxima of every crop (at each
        probability level, ``f1_<level>``; ``f1`` at the first), and the loss."""
        device = next(model.parameters()).device
        f1: dict[float, list[float]] = {level: [] for level in levels}
        losses = []
        for start in range(0, len(arrays["inputs"]), 32):
            part = {k: v[start : start + 32] for k, v in arrays.items() if np.ndim(v) > 0}
            inputs, targets, tokens, mask = self._tensors(part, device)
            logits = model(inputs, tokens, mask)
            losses.append(float(segmentation_loss(logits, targets)[0]))
            maps = torch.sigmoid(logits).cpu().numpy()
            truth = targets.cpu().numpy()
            for found, label in zip(maps, truth, strict=True):
                for level in levels:
                    f1[level].append(_crop_f1(found, label, level))
        metrics = {f"f1_{level:g}": float(np.nanmean(values)) for level, values in f1.items()}
        return {"f1": metrics[f"f1_{levels[0]:g}"], **metrics, "loss": float(np.mean(losses))}


def level_sweep(model: torch.nn.Module, arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Validation metrics with the F1 of the candidates at every level of :data:`LEVELS`.

    The crop F1 falls as the level rises because crops at a few electrons per column dominate
    it, where a low level finds more; on whole images at 50 e-/column and more the default
    :data:`LEVEL` does better (docs/locate.md), so the sweep is recorded, not used to choose.
    """
    others = tuple(level for level in LEVELS if level != LEVEL)
    return SegmentationTraining().validate(model, arrays, levels=(LEVEL, *others))


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _crop_f1(maps: np.ndarray, labels: np.ndarray, level: float = 0.5) -> float:
    """F1 of the candidates of ``maps`` (probability >= ``level``) against the label maxima
    (>= 0.9), matched within 3 px."""
    truth, _ = column_candidates(labels, (1.0, 1.0), level=0.9)
    found, _ = column_candidates(maps, (1.0, 1.0), level=level)
    if not len(truth) and not len(found):
        return math.nan
    return detection_scores(found, truth, CANONICAL_SPACING * 0.375)["f1"]


def save_segmentor(
    run: StreamingRun,
    output: str | Path,
    *,
    kind: str,
    bank: ExampleBank,
    validation: Mapping[str, np.ndarray],
    card: str | None = None,
    overwrite: bool = False,
) -> dict[str, float]:
    """Write the model folder (weights, config, card, training log); returns validation metrics.

    The config's ``level`` (the least probability of a candidate) is :data:`LEVEL`; the
    validation metrics hold the F1 at every level of :data:`LEVELS` (:func:`level_sweep`).
    """
    level, metrics = LEVEL, level_sweep(run.model, validation)
    extra: dict[str, Any] = {
        "task": TASK,
        "kind": kind,
        "level": level,
        "classes": list(CLASSES),
        "canonical_spacing_px": CANONICAL_SPACING,
        "input": "columns-bright, background-free image resampled to the canonical spacing, "
        "median 0 and 0.5-99.5 percentile spread 1 (locate.network.network_input)",
        "examples_per_modality": bank.count_by("modality", default="mixed"),
        "training": run.describe(),
        "validation": {k: round(v, 4) for k, v in metrics.items()},
    }
    card = card or "# Column segmentation network (U-Net)\n"
    save_model(
        run.model,
        output,
        arguments=dict(ARCHITECTURES[kind]),
        card=card,
        extra=extra,
        log=run.log,
        overwrite=overwrite,
    )
    return metrics


def check_examples(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Refuse a bank that is not of this task."""
    missing = {"inputs", "targets", "tokens", "token_mask", "group"} - set(arrays)
    if missing:
        raise ValueError(
            f"{where} holds no {', '.join(sorted(missing))}: it is not a locate bank (make one "
            "with 'atomlens train locate generate')."
        )
    inputs, targets = arrays["inputs"], arrays["targets"]
    if inputs.ndim != 4 or inputs.shape[1] != 1 or targets.shape[1] != len(CLASSES):
        raise ValueError(
            f"{where}: inputs {inputs.shape} must be (n, 1, h, w) and targets {targets.shape} "
            f"(n, {len(CLASSES)}, h, w)."
        )
