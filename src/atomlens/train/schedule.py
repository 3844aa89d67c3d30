"""Training budgets (wall-clock minutes or steps) and the learning-rate schedule over them.

A budget in minutes makes a run's length independent of the machine: the same command trains for
85 minutes on a laptop core or on a GPU, and the schedule (warm-up, then cosine decay) is a
function of the fraction of the budget spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atomlens.train._ranges import check_setting

__all__ = ["Budget", "warmup_cosine"]


@dataclass(frozen=True)
class Budget:
    """When training stops: after ``minutes`` of wall-clock time or ``steps`` optimiser steps.

    Parameters
    ----------
    minutes : float, optional
        Wall-clock budget [min], in (0, 1e6].
    steps : int, optional
        Step budget, in [1, 1e9]. With both, whichever runs out first ends training.

    Raises
    ------
    ValueError
        Neither given; :class:`~atomlens.core.validation.ParameterError` for a value outside
        its range.

    Examples
    --------
    >>> Budget(steps=100).fraction(seconds=0.0, step=25)
    0.25
    """

    minutes: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.minutes is None and self.steps is None:
            raise ValueError("A training budget needs minutes, steps or both.")
        if self.minutes is not None:  # (0, 1e6] min and [1, 1e9] steps: atomlens.train._ranges
            object.__setattr__(self, "minutes", check_setting("minutes", self.minutes))
        if self.steps is not None:
            object.__setattr__(self, "steps", check_setting("steps", self.steps))

    def fraction(self, seconds: float, step: int) -> float:
        """Share of the budget spent after ``seconds`` [s] and ``step`` steps (may exceed 1)."""
        parts = []
        if self.minutes is not None:
            parts.append(seconds / (60 * self.minutes))
        if self.steps is not None:
            parts.append(step / self.steps)
        return max(parts)


def warmup_cosine(fraction: float, *, warmup: float = 0.03, floor: float = 0.005) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` of the budget, then cosine to 0.

    The factor never drops below ``floor``.

    Examples
    --------
    >>> round(warmup_cosine(0.015), 3), round(warmup_cosine(0.5), 3), warmup_cosine(1.0)
    (0.5, 0.5, 0.005)
    """
    if fraction < warmup:
        factor = fraction / warmup
    else:
        factor = 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))
    return max(factor, floor)
