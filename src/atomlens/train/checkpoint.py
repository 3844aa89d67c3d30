"""Checkpoints of a running training: weights, average, optimiser, step, clock and random state.

A checkpoint lets an interrupted run continue where it stopped (``--resume``). It is written to a
temporary file and renamed into place, so a crash while saving leaves the previous one intact, and
it is read with ``torch.load(weights_only=True)``: plain tensors and numbers, no pickled code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from atomlens.io import atomic_write

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]


@dataclass
class Checkpoint:
    """What a training run needs to continue.

    Attributes
    ----------
    model, average, optimiser : dict
        State dicts of the trained model, its exponential average and the optimiser.
    step : int
        Optimiser steps taken.
    seconds : float
        Training time spent [s] (the clock of a time budget continues from it).
    rng : dict
        ``numpy.random.Generator.bit_generator.state`` of the batch sampler.
    log : list of dict
        The training log so far.
    """

    model: dict[str, Any]
    average: dict[str, Any]
    optimiser: dict[str, Any]
    step: int
    seconds: float
    rng: dict[str, Any]
    log: list[dict[str, Any]]


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write a checkpoint atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda temporary: torch.save(vars(checkpoint), temporary), True)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors land on the CPU).

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    ValueError
        If the file is not an atomlens training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}; train with resume=False to start one.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a foreign or damaged file
        raise ValueError(f"{path} is not a readable atomlens checkpoint: {error}") from error
    fields = set(Checkpoint.__dataclass_fields__)
    if not isinstance(state, dict) or set(state) != fields:
        raise ValueError(f"{path} is not an atomlens training checkpoint.")
    return Checkpoint(**state)
