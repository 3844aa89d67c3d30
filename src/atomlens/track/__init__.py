"""Track atoms through an image series: drift removal, global linking, motion features.

- ``track``: per-frame detections (or a stack, located first) to trajectories with trackpy's
  column names (``frame``, ``particle``, ``y``, ``x`` [px], ``y_A``, ``x_A`` [Å],
  ``confidence``). The package itself is callable: ``atomlens.track(stack, pixel_size=0.1)``
  is ``track.track(...)``.
- ``trajectory_features``, ``msd``, ``ensemble_diffusion``: per-trajectory displacement,
  speed, mean squared displacement and diffusion coefficient with its uncertainty.
- ``drift_corrected``: a tracks table's positions with the drift removed.
- ``estimate_drift``: the drift of every frame from the detections alone.
- ``events``: behaviour recognition (hops, vacancy creation and migration, adatoms arriving
  and leaving, adatom clusters forming and merging) against the lattice sites found in the
  tracks (``lattice_sites``); ``site_features``: residence times, hop rates and directions.
- ``neighbour_graphs``, ``bond_changes``, ``coordination_changes``: per-frame first-shell
  graphs of the tracked atoms and how they change.

What the verb refuses is :mod:`atomlens.track.checks`; the linking stages are
:mod:`atomlens.track.link`.
"""

from atomlens._lazy import make_callable
from atomlens.track.drift import estimate_drift
from atomlens.track.events import EVENT_KINDS, events
from atomlens.track.features import (
    drift_corrected,
    ensemble_diffusion,
    msd,
    site_features,
    trajectory_features,
)
from atomlens.track.relations import bond_changes, coordination_changes, neighbour_graphs
from atomlens.track.sites import lattice_sites
from atomlens.track.track import COLUMNS, column_spacing, track

__all__ = [
    "COLUMNS",
    "EVENT_KINDS",
    "bond_changes",
    "column_spacing",
    "coordination_changes",
    "drift_corrected",
    "ensemble_diffusion",
    "estimate_drift",
    "events",
    "lattice_sites",
    "msd",
    "neighbour_graphs",
    "site_features",
    "track",
    "trajectory_features",
]


make_callable(__name__, track)
