"""Exponential moving average of a model's weights: the model that is evaluated and shipped."""

from __future__ import annotations

import copy

import torch

__all__ = ["ExponentialAverage", "unwrap"]


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    return getattr(model, "module", model)


class ExponentialAverage:
    """Keeps ``average = decay * average + (1 - decay) * weights`` after every step.

    Integer buffers (batch-norm step counters) are copied, not averaged.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (a DDP wrapper is unwrapped); it is copied.
    decay : float
        In [0, 1); 0.998 averages over about the last 500 steps.

    Examples
    --------
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.zeros_(model.weight)
    >>> average = ExponentialAverage(model, decay=0.5)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> average.update(model)
    >>> float(average.model.weight)
    0.5
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"The EMA decay must lie in [0, 1), got {decay}.")
        self.model = copy.deepcopy(unwrap(model)).eval()
        self.decay = decay
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards the model's current weights."""
        for mine, theirs in zip(
            self.model.state_dict().values(), unwrap(model).state_dict().values(), strict=True
        ):
            if mine.dtype.is_floating_point:
                mine.mul_(self.decay).add_(theirs, alpha=1 - self.decay)
            else:
                mine.copy_(theirs)
