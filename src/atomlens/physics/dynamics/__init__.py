"""Atoms moving through an image series, with ground-truth trajectories and events.

Modules
-------
models
    ``DynamicsModel`` (the rates and amplitudes) and ``simulate_series`` (moves the atoms);
    ``TWO_D_THICKNESS`` [Å], ``AUTO_HOP_FACTOR``.
trajectories
    ``Series``: the frames' atoms with tracks, events and drift; ``EVENT_KINDS``.
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.dynamics.models import (
        AUTO_HOP_FACTOR,
        TWO_D_THICKNESS,
        DynamicsModel,
        simulate_series,
    )
    from atomlens.physics.dynamics.trajectories import EVENT_KINDS, Series

__all__ = [
    "AUTO_HOP_FACTOR",
    "EVENT_KINDS",
    "TWO_D_THICKNESS",
    "DynamicsModel",
    "Series",
    "simulate_series",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.dynamics.models": (
            "AUTO_HOP_FACTOR",
            "TWO_D_THICKNESS",
            "DynamicsModel",
            "simulate_series",
        ),
        "atomlens.physics.dynamics.trajectories": (
            "EVENT_KINDS",
            "Series",
        ),
    },
)
