"""The optimiser step every atomlens training shares, and epoch training over a DataLoader.

:func:`optimise` is the one place where a loss becomes a weight update (finite-loss check,
backward, step); :func:`fit` runs it for epochs over a re-iterable of batches (the paper-000
reproduction), :func:`atomlens.train.fit_streaming` within a time budget over a growing bank.
``fit`` knows nothing about tasks: a ``step`` callable turns (model, batch) into a scalar loss and
a dict of metrics, so regressors, VAEs and segmenters share it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

Step = Callable[[torch.nn.Module, object], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class History:
    """Per-epoch means of the training and validation metrics, and the learning rate."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def last(self, key: str) -> float:
        """The last epoch's value of a metric."""
        return self.epochs[-1][key]


class TrainingDivergedError(FloatingPointError, ValueError):
    """The loss became NaN or infinite: the settings (a learning rate too high) made training
    diverge. A ``ValueError`` too, so the command reports it in one line as refused settings."""


def optimise(loss: torch.Tensor, optimiser: torch.optim.Optimizer, *, where: str = "") -> None:
    """One optimiser step on ``loss``: refuse a non-finite loss, backpropagate, step.

    Raises
    ------
    TrainingDivergedError
        A ``FloatingPointError`` (and ``ValueError``), if the loss is NaN or infinite (``where``
        says at which step or epoch).
    """
    if not torch.isfinite(loss):
        raise TrainingDivergedError(
            f"The loss became {loss.item()} in {where or 'training'}: the training diverged; "
            "a lower learning rate (lr=) usually helps."
        )
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def _mean_metrics(
    model: torch.nn.Module, step: Step, batches: Iterable, prefix: str
) -> dict[str, float]:
    totals: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for batch in batches:
            loss, metrics = step(model, batch)
            for key, value in {"loss": loss.item(), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
    return {f"{prefix}{k}": v / max(count, 1) for k, v in totals.items()}


def fit(
    model: torch.nn.Module,
    step: Step,
    train_batches: Iterable,
    *,
    epochs: int,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    validation_batches: Iterable | None = None,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> History:
    """Train for a number of epochs.

    Parameters
    ----------
    model : torch.nn.Module
    step : callable
        ``step(model, batch) -> (loss tensor, {name: value})``; it moves the batch to the device.
    train_batches : iterable
        Re-iterated every epoch (a DataLoader).
    epochs : int
    optimiser : torch.optim.Optimizer
    scheduler : LRScheduler, optional
        Stepped once per epoch (e.g. StepLR(step_size=10, gamma=0.1), as paper 000).
    validation_batches : iterable, optional
        Evaluated after each epoch in eval mode without gradients; metrics get a ``val_`` prefix.
    log_path : str or Path, optional
        Appends one JSON line per epoch.
    progress : bool

    Returns
    -------
    History
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    history = History()
    for epoch in range(epochs):
        model.train()
        start, totals, count = time.perf_counter(), {}, 0
        bar = tqdm(
            train_batches, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
        )
        for batch in bar:
            loss, metrics = step(model, batch)
            optimise(loss, optimiser, where=f"epoch {epoch + 1}")
            for key, value in {"loss": loss.item(), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
            bar.set_postfix(loss=f"{loss.item():.4g}")
        record = {"epoch": epoch + 1, "lr": optimiser.param_groups[0]["lr"]}
        record |= {k: v / max(count, 1) for k, v in totals.items()}
        if validation_batches is not None:
            model.eval()
            record |= _mean_metrics(model, step, validation_batches, "val_")
        record["seconds"] = time.perf_counter() - start
        if scheduler is not None:
            scheduler.step()
        history.epochs.append(record)
        if log_path is not None:
            with open(log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
    return history
